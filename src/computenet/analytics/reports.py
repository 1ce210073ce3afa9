"""Operator reports over a period: utilization, segment shares, users; and (money_reports.py)
revenue, margin, customer concentration, growth. All run on a Warehouse (DuckDB).

``run(name, warehouse, first, last, by, **options)`` is the one entry point
the CLI and the API use.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from ..billing.ledger import money as ledger_money
from ..messages import msg
from . import efficiency_reports, job_reports, money_reports, queries, routing_reports
from .costs import apply_settings, cluster_models
from .periods import Period, ReportError, make_period
from .report_model import Report, hours, ratio
from .warehouse import Warehouse

_UTILIZATION_COLUMNS = ["bucket", "level", "name", "ownership", "core_hours", "core_capacity", "core_utilization",
                        "card_hours", "card_capacity", "card_utilization"]


def _no_usage(period: Period) -> str:
    return (f"no usage records between {period.first} and {period.last}: no job ran, or accounting has not "
            "been read yet (nothing to measure)")


def utilization(warehouse: Warehouse, period: Period) -> Report:
    """Allocated core-hours and card-hours / capacity, per cluster, partition, and owned vs leased."""
    report = Report("utilization", period, _UTILIZATION_COLUMNS)
    usage = queries.usage(warehouse, period)
    if not usage:
        report.empty = _no_usage(period)
        return report
    models = cluster_models(queries.clusters(warehouse), queries.partitions(warehouse))
    parts = {(p["cluster_id"], p["name"]): p for p in queries.partitions(warehouse)}
    used: dict[tuple, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in usage:
        for key in (("cluster", row.cluster_id), ("partition", row.cluster_id, row.partition)):
            used[(row.label,) + key][0] += queries.core_hours(row.core_us)
            used[(row.label,) + key][1] += queries.core_hours(row.card_us)
    for bucket in period.buckets():
        by_ownership: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
        for model in sorted(models.values(), key=lambda m: m.name):
            cores, cards = used.get((bucket.label, "cluster", model.id), (Decimal(0), Decimal(0)))
            capacity = (model.cores * bucket.hours, model.gpus * bucket.hours)
            report.rows.append(_util_row(bucket.label, "cluster", model.name, model.ownership, cores, cards,
                                         *capacity))
            sums = by_ownership["owned" if model.owned else "leased"]
            for i, value in enumerate((cores, cards, *capacity)):
                sums[i] += value
            for (cluster_id, name), p in sorted(parts.items()):
                if cluster_id != model.id:
                    continue
                cores, cards = used.get((bucket.label, "partition", model.id, name), (Decimal(0), Decimal(0)))
                report.rows.append(_util_row(bucket.label, "partition", f"{model.name}/{name}", model.ownership,
                                             cores, cards, p["nodes"] * p["cores_per_node"] * bucket.hours,
                                             p["nodes"] * (p["gpus_per_node"] or 0) * bucket.hours))
        for ownership, (cores, cards, core_cap, card_cap) in sorted(by_ownership.items()):
            report.rows.append(_util_row(bucket.label, "ownership", ownership, ownership, cores, cards,
                                         core_cap, card_cap))
    unknown = {row.cluster_id for row in usage} - set(models)
    if unknown:
        report.note(msg("usage on clusters no longer in the clusters table (%(ids)s) is left out", ids=sorted(unknown)))
    if any(r["core_utilization"] is None and r["core_hours"] for r in report.rows):
        report.note(msg("core-hours on a partition or cluster with no known capacity: utilization undefined"))
    return report


def _util_row(label, level, name, ownership, cores, cards, core_cap, card_cap) -> dict:
    return {"bucket": label, "level": level, "name": name, "ownership": ownership,
            "core_hours": hours(cores), "core_capacity": hours(core_cap), "core_utilization": ratio(cores, core_cap),
            "card_hours": hours(cards), "card_capacity": hours(card_cap), "card_utilization": ratio(cards, card_cap)}


def segments(warehouse: Warehouse, period: Period) -> Report:
    """Each customer segment's share of CPU core-hours and GPU card-hours (and of revenue)."""
    report = Report("segments", period, ["bucket", "segment", "core_hours", "cpu_share", "card_hours", "gpu_share",
                                         "revenue", "revenue_share"], currency=money_reports.currency_of(warehouse))
    usage = queries.usage(warehouse, period)
    revenue = queries.revenue(warehouse, period)
    if not usage and not revenue:
        report.empty = f"no usage and no revenue between {period.first} and {period.last}"
        return report
    cores, cards, money = (defaultdict(Decimal) for _ in range(3))
    for row in usage:
        cores[(row.label, row.segment)] += queries.core_hours(row.core_us)
        cards[(row.label, row.segment)] += queries.core_hours(row.card_us)
    for row in revenue:
        money[(row.label, row.segment)] += ledger_money(int(row.cents))
    for bucket in period.buckets():
        names = sorted({s for (label, s) in (*cores, *money) if label == bucket.label})
        totals = [sum(v for (label, _), v in d.items() if label == bucket.label) for d in (cores, cards, money)]
        for name in names:
            key = (bucket.label, name)
            report.rows.append({"bucket": bucket.label, "segment": name, "core_hours": hours(cores[key]),
                                "cpu_share": ratio(cores[key], totals[0]), "card_hours": hours(cards[key]),
                                "gpu_share": ratio(cards[key], totals[1]), "revenue": money[key],
                                "revenue_share": ratio(money[key], totals[2])})
        if names and not totals[1]:
            report.note(msg("%(bucket)s: no card-hours were used, so GPU shares are undefined", bucket=bucket.label))
    return report


def users(warehouse: Warehouse, period: Period) -> Report:
    """Active users (ran a job in the bucket) and new users (created in it)."""
    report = Report("users", period, ["bucket", "active_users", "new_users"])
    active, new = queries.active_users(warehouse, period), queries.new_users(warehouse, period)
    if not active and not new:
        report.empty = f"no user ran a job or signed up between {period.first} and {period.last}"
        return report
    for bucket in period.buckets():
        report.rows.append({"bucket": bucket.label, "active_users": int(active.get(bucket.label, 0)),
                            "new_users": int(new.get(bucket.label, 0))})
    return report


REPORTS = {
    "utilization": utilization,
    "revenue": money_reports.revenue,
    "margin": money_reports.margin,
    "segments": segments,
    "customers": money_reports.customers,
    "users": users,
    "growth": money_reports.growth,
    "jobs": job_reports.jobs,
    "efficiency": efficiency_reports.efficiency,
    "routing": routing_reports.routing,
}


def check(name: str, first, last, by: str = "month"):
    """The report's period; ReportError names bad input (unknown report, bad dates or grouping)."""
    if name not in REPORTS:
        raise ReportError(f"unknown report {name!r}: use one of {', '.join(REPORTS)}")
    return make_period(first, last, by)


def run(name: str, warehouse: Warehouse, first, last, by: str = "month", **options) -> Report:
    """Build one report; ReportError names bad input (unknown report, bad dates or grouping)."""
    period = check(name, first, last, by)
    return REPORTS[name](warehouse, period, **options)


def operational_warehouse(database, settings=None, reports_only: bool = True) -> Warehouse:
    """The operational database as a warehouse, with the configured cluster costs applied
    (``reports_only``: just the columns reports read; an export wants them all)."""
    warehouse = Warehouse.from_database(database, reports_only=reports_only)
    if settings is not None:
        apply_settings(warehouse, settings)
    return warehouse
