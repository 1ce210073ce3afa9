"""The routing report's classification, done in DuckDB over the stored decisions, agrees with a plain
Python reading of each decision (the report's former implementation, kept here as the oracle) on random
decisions: candidates feasible or not, priced or not, owned or not, the choice among them or not, notes
of refused targets, re-routes, missing predictions. No database: a DuckDB warehouse made in memory."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import duckdb
from hypothesis import HealthCheck, given, settings, strategies as st

from computenet.analytics.periods import Period
from computenet.analytics.report_model import ratio
from computenet.analytics.routing_reports import REASONS, TOTAL, _hours, routing
from computenet.analytics.warehouse import Warehouse

CLUSTERS = ["own", "lease", "partner"]
START = datetime(2026, 3, 1)


# -- the oracle: one decision at a time, in Python ---------------------------------------------------

@dataclass
class _Job:
    cluster: str
    started: datetime | None
    predicted: datetime | None
    decided: bool = False
    moves: list[tuple[str, str, str]] = field(default_factory=list)
    extra: Decimal | None = None


def _read(cluster: str, decision, reroutes, started, predicted) -> _Job:
    job = _Job(cluster, started, predicted)
    try:
        decision = json.loads(decision) if isinstance(decision, str) else decision
    except ValueError:
        decision = None
    if not isinstance(decision, dict) or not decision.get("chosen"):
        if reroutes:
            job.moves.append(("rerouted", "?", "re-routed"))
        return job
    job.decided = True
    candidates = [c for c in decision.get("candidates") or () if isinstance(c, dict) and c.get("feasible")]
    chosen = next((c for c in candidates if f"{c.get('cluster')}/{c.get('partition')}" == decision["chosen"]), None)
    policy = decision.get("policy") or "?"
    won = _why(chosen)
    if candidates and chosen is not None and candidates[0] is not chosen:
        failed = next((n for n in decision.get("notes") or () if isinstance(n, str) and " failed" in n), "")
        job.moves.append(("not_first", candidates[0]["cluster"], failed.split(":")[0] or "failover"))
    priced = [c for c in candidates if _price(c) is not None]
    if chosen is not None and _price(chosen) is not None and priced:
        cheapest = min(priced, key=_price)
        if _price(cheapest) < _price(chosen):
            job.moves.append(("not_cheapest", cheapest["cluster"], f"{policy}: {won}"))
            job.extra = _price(chosen) - _price(cheapest)
    owned = [c for c in candidates if c.get("ownership") == "owned"]
    if chosen is not None and chosen.get("ownership") != "owned" and owned:
        job.moves.append(("not_owned", owned[0]["cluster"], f"{policy}: {won}"))
    if decision.get("rerouted_from") or reroutes:
        job.moves.append(("rerouted", decision.get("rerouted_from") or "?",
                          "pending past its predicted start"))
    return job


def _price(candidate: dict) -> Decimal | None:
    try:
        return None if candidate.get("price") is None else Decimal(str(candidate["price"]))
    except ArithmeticError:
        return None


def _why(candidate: dict | None) -> str:
    """The reason the policy gave for its choice: the explanation after its last colon."""
    text = (candidate or {}).get("explanation") or ""
    return text.rsplit(": ", 1)[-1] if text else "?"


def _row(label: str, dimension: str, key: str, jobs: list[_Job], currency: str | None) -> dict:
    source = key.split(" -> ")[0] if dimension == "pair" else None

    def moved(job: _Job, reason: str) -> bool:
        return any(r == reason and (source is None or s == source) for r, s, _ in job.moves)

    counts = {reason: sum(1 for j in jobs if moved(j, reason)) for reason in REASONS}
    extras = [j.extra for j in jobs if j.extra is not None and moved(j, "not_cheapest")]
    reasons = Counter(f"{r}: {why}" for j in jobs for r, s, why in j.moves if source is None or s == source)
    errors = [(j.started - j.predicted).total_seconds() for j in jobs if j.started and j.predicted]
    absolute = sorted(abs(e) for e in errors)
    return {"bucket": label, "dimension": dimension, "key": key, "jobs": len(jobs),
            "decided_jobs": sum(1 for j in jobs if j.decided), **counts, "currency": currency,
            "extra_quoted": sum(extras, Decimal("0.00")) if extras else None,
            "top_reason": min(reasons.items(), key=lambda item: (-item[1], item[0]))[0] if reasons else None,
            "predicted_jobs": len(errors), "start_error_p50_h": _hours(_quantile(absolute, 0.5)),
            "start_error_p90_h": _hours(_quantile(absolute, 0.9)),
            "start_late_p50_h": _hours(_quantile(sorted(errors), 0.5)),
            "predicted_within_1h": ratio(sum(1 for e in absolute if e <= 3600), len(absolute))}


def _quantile(ordered: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (DuckDB's quantile_cont, as the jobs report uses)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _reference(jobs: list[tuple[str, list[_Job]]], dimension: str) -> list[dict]:
    out = []
    for label, bucket_jobs in jobs:
        groups: dict[str, list[_Job]] = defaultdict(list)
        for job in bucket_jobs:
            if dimension == "cluster":
                groups[job.cluster].append(job)
            else:
                for pair in dict.fromkeys(f"{source} -> {job.cluster}" for _, source, _ in job.moves):
                    groups[pair].append(job)
        for key in sorted(groups):
            out.append(_row(label, dimension, key, groups[key], None))
        if dimension == "cluster" and bucket_jobs:
            out.append(_row(label, dimension, TOTAL, bucket_jobs, None))
    return out


# -- random decisions ------------------------------------------------------------------------------

candidate = st.fixed_dictionaries({
    "cluster": st.sampled_from(CLUSTERS), "partition": st.sampled_from(["cpu", "gpu"]),
    "feasible": st.sampled_from([True, True, True, False]),
    "price": st.one_of(st.none(), st.decimals(min_value=0, max_value=500, places=2).map(str),
                       st.integers(0, 500), st.just("n/a")),
    "ownership": st.sampled_from(["owned", "leased", "partner", None]),
    "explanation": st.sampled_from(["", "owned capacity: wait within 30 min", "cheapest: the lowest price",
                                    "the earliest predicted start"])})


@st.composite
def decision(draw):
    if draw(st.integers(0, 9)) == 0:
        return None  # pinned, direct sbatch, older rows
    candidates = draw(st.lists(candidate, max_size=4))
    feasible = [c for c in candidates if c["feasible"]]
    pick = draw(st.sampled_from(feasible)) if feasible and draw(st.integers(0, 5)) else None
    chosen = f"{pick['cluster']}/{pick['partition']}" if pick else draw(st.sampled_from(["", "gone/cpu"]))
    notes = draw(st.lists(st.sampled_from(["own/cpu failed: sbatch: error: Invalid account", "queue cached",
                                           "lease/gpu failed: timed out"]), max_size=2))
    out = {"policy": draw(st.sampled_from(["earliest_start", "cheapest", "", None])), "chosen": chosen,
           "notes": notes, "candidates": candidates}
    if draw(st.integers(0, 5)) == 0:
        out["rerouted_from"] = draw(st.sampled_from(CLUSTERS))
    return out


job = st.tuples(st.sampled_from(CLUSTERS), st.integers(0, 60 * 24 * 60), decision(), st.sampled_from([0, 0, 0, 0, 1, 2]),
                st.one_of(st.none(), st.integers(0, 7200)),
                st.one_of(st.none(), st.integers(-9000, 9000), st.sampled_from([-3600, 3600])))


def _warehouse(jobs) -> Warehouse:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE clusters (id INTEGER, name VARCHAR)")
    con.executemany("INSERT INTO clusters VALUES (?, ?)", list(enumerate(CLUSTERS, 1)))
    con.execute("CREATE TABLE ledger_accounts (code VARCHAR, currency VARCHAR)")
    con.execute("CREATE TABLE jobs (id INTEGER, cluster_id INTEGER, submitted_at TIMESTAMP, start_time TIMESTAMP, "
                "predicted_start TIMESTAMP, reroutes INTEGER)")
    con.execute("CREATE TABLE job_decisions (job_id INTEGER, routing VARCHAR)")
    for n, (cluster, minute, routed, reroutes, waited, error) in enumerate(jobs, 1):
        submitted = START + timedelta(minutes=minute)
        started = submitted + timedelta(seconds=waited) if waited is not None and waited >= 0 else None
        predicted = started - timedelta(seconds=error) if started is not None and error is not None else None
        con.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?)",
                    [n, CLUSTERS.index(cluster) + 1, submitted, started, predicted, reroutes])
        if routed is not None:
            con.execute("INSERT INTO job_decisions VALUES (?, ?)", [n, json.dumps(routed)])
    return Warehouse(con, "memory")


def _oracle(jobs, period: Period, dimension: str) -> list[dict]:
    buckets = []
    for bucket in period.buckets():
        chosen = []
        for cluster, minute, routed, reroutes, waited, error in jobs:
            submitted = START + timedelta(minutes=minute)
            if bucket.start <= submitted < bucket.end:
                started = submitted + timedelta(seconds=waited) if waited is not None and waited >= 0 else None
                predicted = started - timedelta(seconds=error) if started is not None and error is not None else None
                chosen.append(_read(cluster, json.dumps(routed) if routed is not None else None, reroutes,
                                    started, predicted))
        buckets.append((bucket.label, chosen))
    return _reference(buckets, dimension)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=st.lists(job, min_size=1, max_size=40), dimension=st.sampled_from(["cluster", "pair"]),
       by=st.sampled_from(["month", "day"]))
def test_the_report_in_duckdb_reads_every_decision_as_python_would(jobs, dimension, by):
    period = Period(START.date(), (START + timedelta(days=59)).date(), by)
    with _warehouse(jobs) as warehouse:
        report = routing(warehouse, period, dimension)
    expected = _oracle(jobs, period, dimension)
    assert [_exact(r) for r in report.rows] == [_exact(r) for r in expected]
    for got, want in zip(report.rows, expected):  # DuckDB's quantile interpolates in floating point
        for key in QUANTILES:
            assert (got[key] is None) == (want[key] is None)
            assert got[key] is None or abs(got[key] - want[key]) <= Decimal("0.001"), (key, got, want)


QUANTILES = ("start_error_p50_h", "start_error_p90_h", "start_late_p50_h")


def _exact(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in QUANTILES}
