"""The application characteristics database: what ended, monitored jobs of each application did,
by application, user and cluster — typical efficiency, runtime distribution, memory per core, how
runtime scales with cores, and typical cost. App pages show it; routing can ask for a runtime."""

from __future__ import annotations

import statistics
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ...store.models import Cluster, JobProfile, User


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def characteristics(session: Session, app: str | None = None, by: str = "app", limit: int = 5000) -> list[dict]:
    """Aggregates over the newest ``limit`` profiles, grouped by app, or by app and user / cluster."""
    if by not in ("app", "user", "cluster"):
        raise ValueError(f"by must be app, user or cluster, not {by!r}")
    query = select(JobProfile).order_by(JobProfile.finished_at.desc()).limit(limit)
    if app:
        query = query.where(JobProfile.app == app)
    users = dict(session.execute(select(User.id, User.name)).all()) if by == "user" else {}
    clusters = dict(session.execute(select(Cluster.id, Cluster.name)).all()) if by == "cluster" else {}
    groups: dict[tuple, list[JobProfile]] = defaultdict(list)
    for row in session.scalars(query):
        key = (row.app,) + ((users.get(row.user_id),) if by == "user" else
                            (clusters.get(row.cluster_id),) if by == "cluster" else ())
        groups[key].append(row)
    out = []
    for key, rows in sorted(groups.items()):
        runtimes = [r.runtime_s for r in rows]
        effs = [r.cpu_efficiency for r in rows if r.cpu_efficiency is not None]
        gpu = [r.gpu_utilisation for r in rows if r.gpu_utilisation is not None]
        by_cores: dict[int, list[float]] = defaultdict(list)
        for r in rows:
            by_cores[r.cores].append(r.runtime_s)
        prices = sorted(r.price for r in rows)
        entry = {"app": key[0], "jobs": len(rows),
                 "runtime_s": {"p50": _pct(runtimes, 0.5), "p90": _pct(runtimes, 0.9), "max": max(runtimes)},
                 "cpu_efficiency_p50": statistics.median(effs) if effs else None,
                 "gpu_utilisation_p50": statistics.median(gpu) if gpu else None,
                 "memory_per_core_p50": statistics.median(r.peak_rss / max(r.cores, 1) for r in rows),
                 "runtime_by_cores": {str(c): statistics.median(v) for c, v in sorted(by_cores.items())},
                 "cost_p50": str(prices[len(prices) // 2]),
                 "wasted_total": str(sum((r.wasted for r in rows), Decimal("0")))}
        if by != "app":
            entry[by] = key[1]
        out.append(entry)
    return out


def typical_runtime_s(session: Session, app: str, cores: int | None = None) -> float | None:
    """The median runtime of the app's recent jobs (on that many cores, when known): None without history."""
    query = select(JobProfile.runtime_s).where(JobProfile.app == app)
    if cores:
        query = query.where(JobProfile.cores == cores)
    values = list(session.scalars(query.order_by(JobProfile.finished_at.desc()).limit(200)))
    return statistics.median(values) if values else None


MIN_RUNS = 3  # fewer runs than this say little about the next one


def typical_runtimes(session: Session, keys: set[tuple[str, int | None]], per_key: int = 200) -> dict:
    """Median runtimes for many (app, owner) keys in one query (owner None: anyone's runs), as
    {(app, owner, cores): s} and {(app, owner, None): s over all core counts}, each over its newest
    per_key runs; keys with fewer than MIN_RUNS runs are left out."""
    if not keys:
        return {}
    newest = JobProfile.finished_at.desc()
    ranks = [func.row_number().over(partition_by=parts, order_by=newest) for parts in (
        [JobProfile.app], [JobProfile.app, JobProfile.cores], [JobProfile.app, JobProfile.user_id],
        [JobProfile.app, JobProfile.user_id, JobProfile.cores])]
    ranked = (select(JobProfile.app, JobProfile.user_id, JobProfile.cores, JobProfile.runtime_s,
                     JobProfile.finished_at, *[r.label(f"r{i}") for i, r in enumerate(ranks)])
              .where(JobProfile.app.in_({app for app, _ in keys})).subquery())
    # only rows that are among the newest per_key of some bucket travel (the table may hold years of runs)
    rows = session.execute(select(ranked.c.app, ranked.c.user_id, ranked.c.cores, ranked.c.runtime_s)
                           .where(or_(*[ranked.c[f"r{i}"] <= per_key for i in range(len(ranks))]))
                           .order_by(ranked.c.finished_at.desc())).all()
    runs: dict[tuple, list[float]] = defaultdict(list)
    for app, user_id, cores, runtime in rows:
        for owner in (None, user_id):
            if (app, owner) in keys:
                for bucket in ((app, owner, None), (app, owner, cores)):
                    if len(runs[bucket]) < per_key:
                        runs[bucket].append(runtime)
    return {key: statistics.median(values) for key, values in runs.items() if len(values) >= MIN_RUNS}
