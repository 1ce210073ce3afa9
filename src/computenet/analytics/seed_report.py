"""How close a synthetic year comes to the seed operator: target vs achieved for every figure
it is calibrated to, each with its tolerance and whether it is met.

The achieved figures are what the operator reports (analytics/reports.py) say about the
year, read from a Parquet copy of it; only the busiest instant of each partition is
worked out here, from the jobs' own start and end times (a check of the placement that
does not trust the placement's bookkeeping).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from ..messages import msg
from . import efficiency_reports, reports, seed_calibration as cal, seed_parquet
from .seed_placement import peak_use
from .seed_tables import SeedTables
from .warehouse import Warehouse

# tolerances, absolute (shares and ratios) unless said
SHARE_TOLERANCE = Decimal("0.01")  # segments' shares are met by construction, up to one job
TOP5_TOLERANCE = Decimal("0.015")  # revenue splits among tenants in whole jobs and contract discounts
INDIVIDUAL_TOLERANCE = Decimal("0.0013")  # under 0.2 % of revenue: a handful of small customers
PREPAID_TOLERANCE = Decimal("0.05")
MARGIN_TOLERANCE = Decimal("0.03")  # whole nodes: a small network is a few nodes off its plan
UTILIZATION_TOLERANCE = Decimal("0.05")
VOLUME_TOLERANCE = Decimal("0.005")  # relative: run times are whole seconds
PUBLISHED_MARGIN = Decimal("0.26")
PUBLISHED_CLOUD_MARGIN = Decimal("0.27")
CLOUD_LINES = ("hpc", "ai")  # the supercomputing cloud: general computing and AI (industry software is apart)
PREPAID_SHARE = 1 - Decimal(str(cal.POSTPAID_REVENUE_SHARE))  # "mostly prepaid": our choice
# the monitoring data (seed_monitoring.py): every COMPLETED job has a profile (a whole year of
# jobs draws the states' shares to well under a point); CPU efficiency weighted by core-hours and
# the findings' waste as a share of what the profiled jobs were charged are our choices from its
# per-application distributions (core-hours sit in well-scaled MPI runs at 80-95 %, a low tail of
# serial and idle runs pulls the mean down; the rules price only clear waste: cores under 20 %
# busy, cards under 40 %). A small year's waste swings with its few GPU jobs.
MONITORED_SHARE = Decimal(str(dict(cal.STATES)["COMPLETED"]))
MONITORED_TOLERANCE = Decimal("0.02")
CPU_EFFICIENCY = Decimal("0.78")
CPU_EFFICIENCY_TOLERANCE = Decimal("0.07")
WASTE_SHARE = Decimal("0.08")
WASTE_TOLERANCE = Decimal("0.04")


@dataclass(frozen=True)
class Figure:
    name: str  # a msg(): what is measured
    target: Decimal
    achieved: Decimal | None  # None: the reports could not say
    low: Decimal
    high: Decimal
    tolerance: str  # a msg(): the tolerance as a reader reads it
    unit: str = "share"  # share | hours

    @property
    def passed(self) -> bool:
        return self.achieved is not None and self.low <= self.achieved <= self.high


def _around(name, target: Decimal, achieved, tolerance: Decimal, unit: str = "share") -> Figure:
    shown = msg("± %(points)s points", points=_points(tolerance))
    return Figure(name, target, achieved, target - tolerance, target + tolerance, shown, unit)


def _points(share: Decimal) -> str:
    return f"{share * 100:.2f}".rstrip("0").rstrip(".")


def _volume(name, target: Decimal, achieved) -> Figure:
    return Figure(name, target, achieved, target * (1 - VOLUME_TOLERANCE), target * (1 + VOLUME_TOLERANCE),
                  msg("± %(percent)s %%", percent=_points(VOLUME_TOLERANCE)), "hours")


def _ratio(num: Decimal, den: Decimal) -> Decimal | None:
    return None if not den else num / den


def busiest_partition(data: SeedTables) -> Decimal:
    """The highest share of its cores or cards any partition runs at any instant, from the jobs."""
    jobs, parts = data.columns["jobs"], data.columns["partitions"]
    clusters = jobs["cluster_id"]
    names = np.asarray(jobs["partition"])
    worst = Decimal(0)
    for k in range(len(parts["id"])):
        mine = (clusters == parts["cluster_id"][k]) & (names == parts["name"][k])
        start, end = jobs["start_time"][mine], jobs["end_time"][mine]
        for units, per_node in ((jobs["cores"][mine], parts["cores_per_node"][k]),
                                (jobs["gpus"][mine], parts["gpus_per_node"][k])):
            capacity = int(parts["nodes"][k]) * int(per_node)
            peak = peak_use(start, end, units)
            if peak and not capacity:
                return Decimal("Infinity")
            if capacity:
                worst = max(worst, Decimal(peak) / capacity)
    return worst


def planned_owned_utilization(data: SeedTables) -> tuple[Decimal, Decimal]:
    """The utilization owned capacity was planned for (seed_calibration), over its cores and its
    cards: each partition's plan weighted by its size. This, with the costs, is what explains
    the margin."""
    nodes = data.columns["partitions"]["nodes"]
    owned = {c.name for c in cal.CLUSTERS if c.ownership == "owned"}
    sums = [Decimal(0)] * 4
    for plan, count in zip(cal.PARTITIONS, nodes):
        if plan.cluster not in owned:
            continue
        planned = Decimal(str(cal.planned_utilization(plan)))
        cores, cards = int(count) * plan.cores_per_node, int(count) * plan.gpus_per_node
        sums = [sums[0] + planned * cores, sums[1] + cores, sums[2] + planned * cards, sums[3] + cards]
    return (_ratio(sums[0], sums[1]) or Decimal(0)).quantize(Decimal("0.0001")), \
        (_ratio(sums[2], sums[3]) or Decimal(0)).quantize(Decimal("0.0001"))


def calibration(data: SeedTables) -> list[Figure]:
    """Every figure the year is calibrated to, as the operator reports compute it."""
    first, last = f"{data.year}-01-01", f"{data.year}-12-31"
    with tempfile.TemporaryDirectory(prefix="seed-calibration-") as folder:
        seed_parquet.write(data, folder)
        with Warehouse.from_parquet(folder) as warehouse:
            segments = {r["segment"]: r for r in reports.run("segments", warehouse, first, last, by="year").rows}
            top = reports.run("customers", warehouse, first, last, by="year", top=5).summary[0]
            revenue = {(r["dimension"], r["key"]): r
                       for r in reports.run("revenue", warehouse, first, last, by="year").rows}
            margin = reports.run("margin", warehouse, first, last, by="year").rows
            use = reports.run("utilization", warehouse, first, last, by="year").rows
            waste = next((r for r in reports.run("efficiency", warehouse, first, last, by="year").rows
                          if r["key"] == efficiency_reports.TOTAL), {})
    total = next(r for r in margin if r["level"] == "total")
    lines = [r for r in margin if r["level"] == "product_line" and r["name"] in CLOUD_LINES]
    cloud_revenue = sum((r["revenue"] for r in lines), Decimal(0))
    cloud_cost = None if any(r["cost"] is None for r in lines) else sum((r["cost"] for r in lines), Decimal(0))
    owned = next((r for r in use if r["level"] == "ownership" and r["name"] == "owned"), None)
    core_hours = sum((r["core_hours"] for r in use if r["level"] == "cluster"), Decimal(0))
    card_hours = sum((r["card_hours"] for r in use if r["level"] == "cluster"), Decimal(0))
    planned_cores, planned_cards = planned_owned_utilization(data)
    targets = data.extra.get("targets", {})
    figures = [
        _around(msg("university share of CPU core-hours"), Decimal("0.5816"),
                segments.get("university", {}).get("cpu_share"), SHARE_TOLERANCE),
        _around(msg("enterprise share of GPU card-hours"), Decimal("0.5041"),
                segments.get("enterprise", {}).get("gpu_share"), SHARE_TOLERANCE),
        _around(msg("top five customers' share of revenue"), Decimal(str(cal.TOP5_REVENUE_SHARE)),
                top.get("top_share"), TOP5_TOLERANCE),
        _around(msg("individuals' share of revenue"), Decimal("0.0007"),
                segments.get("individual", {}).get("revenue_share"), INDIVIDUAL_TOLERANCE),
        _around(msg("prepaid share of revenue (our choice: mostly prepaid)"), PREPAID_SHARE,
                revenue.get(("billing", "prepaid"), {}).get("share"), PREPAID_TOLERANCE),
        _around(msg("gross margin, all"), PUBLISHED_MARGIN, total["margin"], MARGIN_TOLERANCE),
        _around(msg("gross margin, supercomputing cloud (general and AI computing)"), PUBLISHED_CLOUD_MARGIN,
                None if cloud_cost is None else _ratio(cloud_revenue - cloud_cost, cloud_revenue),
                MARGIN_TOLERANCE),
        _around(msg("owned capacity: share of core-hours used (planned)"), planned_cores,
                owned and owned["core_utilization"], UTILIZATION_TOLERANCE),
        _around(msg("owned capacity: share of card-hours used (planned)"), planned_cards,
                owned and owned["card_utilization"], UTILIZATION_TOLERANCE),
    ]
    if targets:
        figures += [_volume(msg("core-hours delivered"), Decimal(str(round(targets["core_hours"], 3))), core_hours),
                    _volume(msg("card-hours delivered"), Decimal(str(round(targets["card_hours"], 3))), card_hours)]
    jobs = data.rows("jobs")
    figures += [
        _around(msg("share of jobs monitored (completed jobs with a profile)"), MONITORED_SHARE,
                _ratio(Decimal(waste.get("jobs", 0)), Decimal(jobs)), MONITORED_TOLERANCE),
        _around(msg("monitored jobs: CPU efficiency, weighted by core-hours (our choice)"), CPU_EFFICIENCY,
                waste.get("cpu_efficiency"), CPU_EFFICIENCY_TOLERANCE),
        _around(msg("monitored jobs: waste the efficiency findings priced, share of their charges (our choice)"),
                WASTE_SHARE, waste.get("waste_share"), WASTE_TOLERANCE),
    ]
    figures.append(Figure(msg("busiest partition at any instant: share of its cores or cards"), Decimal(1),
                          busiest_partition(data), Decimal(0), Decimal(1), msg("at most %(limit)s", limit="100 %")))
    return figures
