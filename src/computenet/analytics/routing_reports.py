"""The routing report (issue 21 item 5): what the router's choices did. Per cluster a job runs on, or per
pair of clusters a job moved between, over the jobs submitted in each bucket:

* moved away from the router's first choice at submission (that cluster refused the job: failover),
  from the cheapest feasible placement, or from an owned one (the policy preferred a sooner start);
* re-routed after submission (pending long past its predicted start: services/jobs/reroute.py);
* what the chosen placement was quoted above the cheapest feasible one (``extra_quoted``: quotes are
  the most the job could cost, at its time limit, when it was routed; jobs lacking either are left out);
* how far the predicted start was from the actual one: median and 90th percentile of the absolute
  error, the median signed error (positive: later than predicted) and the share within an hour.

Each job's decision is the one stored with it (jobs.routing, as ``cnet job ID --why`` shows it).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ..messages import msg
from .periods import Period, ReportError
from .report_model import HOURS, Report, ratio
from .warehouse import Warehouse

DIMENSIONS = ("cluster", "pair")
TOTAL = "(all)"
REASONS = ("not_first", "not_cheapest", "not_owned", "rerouted")
COLUMNS = ["bucket", "dimension", "key", "jobs", "decided_jobs", *REASONS, "currency", "extra_quoted", "top_reason",
           "predicted_jobs", "start_error_p50_h", "start_error_p90_h", "start_late_p50_h", "predicted_within_1h"]


@dataclass
class _Job:
    cluster: str
    started: datetime | None
    predicted: datetime | None
    decided: bool = False
    moves: list[tuple[str, str, str]] = field(default_factory=list)  # (reason, from cluster, why)
    extra: Decimal | None = None  # chosen quote - cheapest quote, when moved from the cheapest


def routing(warehouse: Warehouse, period: Period, dimension: str = "cluster") -> Report:
    if dimension not in DIMENSIONS:
        raise ReportError(f"unknown dimension {dimension!r}: use one of {', '.join(DIMENSIONS)}")
    report = Report("routing", period, COLUMNS, currency=_currency(warehouse))
    columns = set(warehouse.columns("jobs"))
    decisions = "d.routing" if warehouse.decisions() else "NULL::VARCHAR"
    joined = "LEFT JOIN job_decisions d ON d.job_id = j.id" if decisions == "d.routing" else ""
    reroutes = "j.reroutes" if "reroutes" in columns else "0"
    predicted = "j.predicted_start" if "predicted_start" in columns else "NULL::TIMESTAMP"
    found = False
    for bucket in period.buckets():
        rows = warehouse.query(f"""
            SELECT c.name, {decisions}, {reroutes}, j.start_time, {predicted}
            FROM jobs j JOIN clusters c ON c.id = j.cluster_id {joined}
            WHERE j.submitted_at >= ? AND j.submitted_at < ? ORDER BY j.id""", [bucket.start, bucket.end])[1]
        jobs = [_read(*row) for row in rows]
        if not jobs:
            continue
        found = True
        groups: dict[str, list[_Job]] = defaultdict(list)
        for job in jobs:
            if dimension == "cluster":
                groups[job.cluster].append(job)
            else:
                for pair in dict.fromkeys(f"{source} -> {job.cluster}" for _, source, _ in job.moves):
                    groups[pair].append(job)
        for key in sorted(groups):
            report.rows.append(_row(bucket.label, dimension, key, groups[key], report.currency))
        if dimension == "cluster":
            report.rows.append(_row(bucket.label, dimension, TOTAL, jobs, report.currency))
    if not found:
        report.empty = msg("no job was submitted between %(first)s and %(last)s", first=period.first,
                           last=period.last)
        return report
    report.note(msg("a job counts in the bucket in which it was submitted, on the cluster it runs on now"))
    report.note(msg("extra_quoted: the chosen placement's quote minus the cheapest feasible one's (quotes are "
                    "the most a job could cost, at its time limit, when it was routed)"))
    if decisions == "NULL::VARCHAR" or any(r["decided_jobs"] < r["jobs"] for r in report.rows):
        report.note(msg("jobs without a stored routing decision (pinned to a cluster by dependency, direct "
                        "sbatch, older exports) count in jobs but in no move"))
    if dimension == "pair" and not report.rows:
        report.note(msg("no job moved away from its first, cheapest or owned choice"))
    return report


def _currency(warehouse: Warehouse) -> str | None:
    from .money_reports import currency_of

    return currency_of(warehouse)


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


def _hours(seconds: float | None) -> Decimal | None:
    return None if seconds is None else (Decimal(str(seconds)) / 3600).quantize(HOURS)
