"""The money reports: revenue by dimension, gross margin, customer concentration, growth.

Revenue is the ledger's (see queries.py): net money moved into the revenue
accounts in the bucket. Every amount is Decimal; a ratio whose base is zero
or negative is None with a note, never a made-up number.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from . import growth as growth_math
from . import queries
from ..billing.ledger import money
from ..messages import msg
from .costs import Cost, cluster_models
from .periods import Period, ReportError, months_between
from .report_model import RATIO, Report, ratio
from .warehouse import Warehouse

DIMENSIONS = ("total", "product_line", "cluster", "segment", "customer", "billing")
NO_CLUSTER = "(no cluster)"  # storage and other revenue that no job carries


def _money(cents: int) -> Decimal:
    return money(int(cents))  # DuckDB sums come back as HUGEINT-sized ints


def currency_of(warehouse: Warehouse) -> str | None:
    """The revenue accounts' currency, where the ledger keeps one (a chart's money axis says it)."""
    found = sorted(c for (c,) in warehouse.query(
        "SELECT DISTINCT currency FROM ledger_accounts WHERE code = 'revenue'")[1] if c)
    return "/".join(found) or None


def _no_revenue(period: Period) -> str:
    return f"no revenue in the ledger between {period.first} and {period.last}"


def _keys(row: queries.RevenueRow, names: dict[int, str]) -> dict[str, str]:
    return {"total": "all", "product_line": row.product_line,
            "cluster": names.get(row.cluster_id, NO_CLUSTER) if row.cluster_id is not None else NO_CLUSTER,
            "segment": row.segment, "customer": row.customer, "billing": "postpaid" if row.postpaid else "prepaid"}


def revenue(warehouse: Warehouse, period: Period, dimension: str | None = None) -> Report:
    """Revenue per bucket by product line, cluster, segment, customer and prepaid/postpaid."""
    if dimension is not None and dimension not in DIMENSIONS:
        raise ReportError(f"unknown dimension {dimension!r}: use one of {', '.join(DIMENSIONS)}")
    report = Report("revenue", period, ["bucket", "dimension", "key", "revenue", "share"],
                    currency=currency_of(warehouse))
    rows = queries.revenue(warehouse, period)
    if not rows:
        report.empty = _no_revenue(period)
        return report
    names = {c["id"]: c["name"] for c in queries.clusters(warehouse)}
    sums: dict[tuple, int] = defaultdict(int)
    for row in rows:
        for dim, key in _keys(row, names).items():
            sums[(row.label, dim, key)] += int(row.cents)
    for bucket in period.buckets():
        total = sums.get((bucket.label, "total", "all"), 0)
        if total <= 0:
            report.note(msg("%(bucket)s: total revenue is %(total)s, so shares are undefined", bucket=bucket.label,
                             total=_money(total)))
        for dim in DIMENSIONS if dimension is None else ("total", dimension):
            for (label, d, key), cents in sorted(sums.items(), key=lambda kv: (kv[0][1], -kv[1], kv[0][2])):
                if label == bucket.label and d == dim:
                    report.rows.append({"bucket": label, "dimension": dim, "key": key, "revenue": _money(cents),
                                        "share": ratio(cents, total)})
    return report


def customers(warehouse: Warehouse, period: Period, top: int = 5) -> Report:
    """The top-N customers (tenants; an account without a tenant is its own customer) and their share."""
    if top < 1:
        raise ReportError(f"--top must be at least 1, not {top}")
    report = Report("customers", period, ["bucket", "rank", "customer", "segment", "revenue", "share",
                                          "cumulative_share"], currency=currency_of(warehouse))
    rows = queries.revenue(warehouse, period)
    if not rows:
        report.empty = _no_revenue(period)
        return report
    per: dict[str, dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        per[row.label][(row.customer, row.segment)] += int(row.cents)
    for bucket in period.buckets():
        ranked = sorted(per.get(bucket.label, {}).items(), key=lambda kv: (-kv[1], kv[0]))
        total = sum(cents for _, cents in ranked)
        running = 0
        for rank, ((name, segment), cents) in enumerate(ranked[:top], start=1):
            running += cents
            report.rows.append({"bucket": bucket.label, "rank": rank, "customer": name, "segment": segment,
                                "revenue": _money(cents), "share": ratio(cents, total),
                                "cumulative_share": ratio(running, total)})
        report.summary.append({"bucket": bucket.label, "customers": len(ranked), "revenue": _money(total),
                               "top": top, "top_share": ratio(running, total) if ranked else None})
        if ranked and total <= 0:
            report.note(msg("%(bucket)s: total revenue is %(total)s: concentration is undefined", bucket=bucket.label,
                             total=_money(total)))
        if len(ranked) < top and ranked:
            report.note(msg("%(bucket)s: only %(paid)s customers paid, fewer than the top %(top)s", bucket=bucket.label,
                             paid=len(ranked), top=top))
    return report


def _margin_row(label, level, name, ownership, revenue_cents: int, cost: Cost | None, reason: str | None) -> dict:
    income = _money(revenue_cents)
    amount = cost.amount if cost is not None else None
    why = reason or (cost.reason if cost is not None else None)
    if amount is not None and income <= 0:
        why = why or f"no revenue ({income}): margin undefined"
    return {"bucket": label, "level": level, "name": name, "ownership": ownership, "revenue": income,
            "cost": amount, "gross_profit": None if amount is None else income - amount,
            "margin": None if amount is None else ratio(income - amount, income) if income > 0 else None,
            "basis": cost.basis if cost is not None else "", "note": why or ""}


def margin(warehouse: Warehouse, period: Period) -> Report:
    """(revenue - cost of capacity) / revenue per cluster, product line and in all."""
    report = Report("margin", period, ["bucket", "level", "name", "ownership", "revenue", "cost", "gross_profit",
                                       "margin", "basis", "note"], currency=currency_of(warehouse))
    usage, money = queries.usage(warehouse, period), queries.revenue(warehouse, period)
    if not usage and not money:
        report.empty = f"no usage and no revenue between {period.first} and {period.last}"
        return report
    models = cluster_models(queries.clusters(warehouse), queries.partitions(warehouse))
    core_h, card_h = defaultdict(lambda: defaultdict(Decimal)), defaultdict(lambda: defaultdict(Decimal))
    for row in usage:
        core_h[(row.label, row.cluster_id)][row.product_line] += queries.core_hours(row.core_us)
        card_h[(row.label, row.cluster_id)][row.product_line] += queries.core_hours(row.card_us)
    by_cluster, by_line = defaultdict(int), defaultdict(int)
    for row in money:
        by_cluster[(row.label, row.cluster_id)] += int(row.cents)
        by_line[(row.label, row.product_line)] += int(row.cents)
    for bucket in period.buckets():
        line_cost: dict[str, Decimal] = defaultdict(Decimal)
        line_undefined: dict[str, str] = {}
        costs = []
        for model in sorted(models.values(), key=lambda m: m.name):
            key = (bucket.label, model.id)
            cost = (model.owned_cost(bucket.hours) if model.owned
                    else model.used_cost(core_h.get(key, {}), card_h.get(key, {})))
            costs.append(cost)
            lines = ({n for node in model.nodes.values() for n in node.lines} | set(core_h.get(key, {})))
            for line in lines:
                if cost.amount is None:
                    line_undefined[line] = cost.reason
                else:
                    line_cost[line] += cost.by_line.get(line, Decimal(0))
            report.rows.append(_margin_row(bucket.label, "cluster", model.name, model.ownership,
                                           by_cluster.get(key, 0), cost, None))
        for line in sorted({ln for (label, ln) in by_line if label == bucket.label} | set(line_cost)
                           | set(line_undefined)):
            reason = line_undefined.get(line)
            if line not in line_cost and reason is None:
                reason = f"no cluster capacity carries product line {line}: its cost is unknown"
            cost = None if reason else Cost(line_cost[line], basis="allocated from clusters")
            report.rows.append(_margin_row(bucket.label, "product_line", line, "", by_line.get((bucket.label, line), 0),
                                           cost, reason))
        undefined = next((c.reason for c in costs if c.amount is None), None)
        total = None if undefined else Cost(sum((c.amount for c in costs), Decimal(0)), basis="all clusters")
        revenue_all = sum(v for (label, _), v in by_cluster.items() if label == bucket.label)
        report.rows.append(_margin_row(bucket.label, "total", "all", "", revenue_all, total, undefined))
        if by_cluster.get((bucket.label, None)):
            report.note(msg("%(bucket)s: revenue no job carries (storage) is in the total and its product "
                            "line, with no capacity cost of its own", bucket=bucket.label))
    return report


def growth(warehouse: Warehouse, period: Period) -> Report:
    """Revenue per bucket, in all and per product line; year on year growth and CAGR."""
    if period.by == "day":
        raise ReportError("growth is year on year: group by month, quarter or year, not day")
    if not period.aligned():
        raise ReportError(f"growth compares whole {period.by}s: the period {period.first} to {period.last} "
                          f"starts or ends inside a {period.by}")
    report = Report("growth", period, ["bucket", "line", "revenue", "yoy", "yoy_note"],
                    currency=currency_of(warehouse))
    money = queries.revenue(warehouse, period)
    if not money:
        report.empty = _no_revenue(period)
        return report
    sums: dict[tuple, int] = defaultdict(int)
    for row in money:
        sums[(row.label, "all")] += int(row.cents)
        sums[(row.label, row.product_line)] += int(row.cents)
    buckets = period.buckets()
    for line in ["all"] + sorted({ln for (_, ln) in sums} - {"all"}):
        series = [(b, _money(sums[(b.label, line)]) if (b.label, line) in sums else None) for b in buckets]
        for i, (bucket, value) in enumerate(series):
            earlier = [(b, v) for b, v in series[:i] if months_between(b, bucket) == 12]
            if earlier and (earlier[0][1] is None or value is None):
                gap = earlier[0][0].label if earlier[0][1] is None else bucket.label
                rate, note = None, f"missing {period.by}: no revenue recorded in {gap}"
            elif earlier:
                change = growth_math.yoy(earlier[0][1], value)  # a zero base comes back undefined, with why
                rate, note = change.value, change.reason or ""
            else:
                rate, note = None, "the period holds no bucket a year earlier"
            report.rows.append({"bucket": bucket.label, "line": line, "revenue": value, "yoy": _fraction(rate),
                                "yoy_note": note})
        first, last = series[0], series[-1]
        years = Decimal(months_between(first[0], last[0])) / 12
        if years <= 0:
            report.summary.append({"line": line, "cagr": None, "from": first[0].label, "to": last[0].label,
                                   "note": "one bucket: CAGR needs two"})
            continue
        compound = growth_math.cagr(first[1], last[1], years)
        report.summary.append({"line": line, "cagr": _fraction(compound.value), "from": first[0].label,
                               "to": last[0].label, "years": years.normalize(), "note": compound.reason or ""})
    return report


def _fraction(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(RATIO)
