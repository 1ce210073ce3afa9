"""What the synthetic operator year is calibrated to, and the shapes it is drawn from.

Published figures (seed: Paratera research report, 2024-04-21; copied in
tests/fixtures/analytics/seed-figures.json with provenance):
universities used 58.16 % of 2022's CPU core-hours (1,509.84 of ~2,596 million),
enterprises 50.41 % of the GPU card-hours (4,476,880 of ~8.88 million), the top
five customers brought 16.7 % of 2022's revenue, individuals 0.07 %, billing is
"mostly prepaid", selected enterprises are postpaid within a quota, enterprise
users are 24 % of users. Everything else here is our choice, said as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

SEGMENTS = ("university", "research_institute", "enterprise", "government", "individual")

# the seed operator's 2022 volume; --scale is a fraction of it
REAL_CORE_HOURS_2022 = 2_596_000_000
REAL_CARD_HOURS_2022 = 8_880_000

# share of CPU core-hours / GPU card-hours per segment. Published: university CPU
# 58.16 %, enterprise GPU 50.41 %; the rest is chosen so that individuals stay
# near the published 0.07 % of revenue.
CPU_SHARE = {"university": 0.5816, "research_institute": 0.2100, "enterprise": 0.1650, "government": 0.0427,
             "individual": 0.0007}
GPU_SHARE = {"university": 0.2800, "research_institute": 0.1600, "enterprise": 0.5041, "government": 0.0552,
             "individual": 0.0007}
TOP5_REVENUE_SHARE = 0.167
# the five key accounts (the top five customers) by segment, and their share of the 16.7 %
KEY_ACCOUNTS = (("university", 0.26), ("enterprise", 0.22), ("research_institute", 0.19), ("university", 0.17),
                ("enterprise", 0.16))
# "mostly prepaid": the largest enterprises are postpaid until they carry this share of revenue.
# 15 %: enterprises bring about a quarter of revenue, and only "selected" ones get a credit line.
POSTPAID_REVENUE_SHARE = 0.15

# tenants per segment (fractions) and users per tenant: enterprise users come out at ~24 % of users
TENANT_MIX = {"university": 0.30, "research_institute": 0.15, "enterprise": 0.40, "government": 0.05,
              "individual": 0.10}
USERS_PER_TENANT = {"university": 12, "research_institute": 8, "enterprise": 4, "government": 4, "individual": 1}
# contract discounts (percent): key accounts negotiate, universities get an education price
KEY_DISCOUNT = Decimal("18")
SEGMENT_DISCOUNT = {"university": Decimal("10"), "research_institute": Decimal("5")}
# share of a segment's CPU jobs that run on industry-cloud partitions (licensed CAE and the like)
INDUSTRY_SHARE = {"university": 0.05, "research_institute": 0.08, "enterprise": 0.45, "government": 0.20,
                  "individual": 0.02}

# Job shapes. CPU: the log2 size buckets averaged over the SDSC-SP2, HPC2N and KTH-SP2 traces
# (Parallel Workloads Archive), each trace processor taken as 4 cores of a 2022 node; runtime
# lognormal with the traces' median (~12 min) and spread (sigma 2.5-3.3), cut at the 7-day limit.
CPU_SIZE_BUCKETS = (0.32, 0.15, 0.14, 0.14, 0.12, 0.075, 0.04, 0.012, 0.003)  # 4, 8, ..., 1024 cores
CPU_CORES_PER_TRACE_PROC = 4
CPU_RUNTIME_MU, CPU_RUNTIME_SIGMA = 6.6, 2.7
# GPU: card counts of training and inference jobs (the Alibaba 2023 trace is 86 % single-GPU
# inference pods; a cloud that sells card-hours also runs multi-node training); runtime lognormal
GPU_SIZES = (1, 2, 4, 8, 16, 32)
GPU_SIZE_P = (0.55, 0.12, 0.12, 0.15, 0.045, 0.015)
GPU_RUNTIME_MU, GPU_RUNTIME_SIGMA = 8.0, 1.9
MAX_RUNTIME_S = 7 * 24 * 3600
MIN_RUNTIME_S = 30
STATES = (("COMPLETED", 0.88), ("FAILED", 0.06), ("CANCELLED", 0.04), ("TIMEOUT", 0.02))

# Seasonality: growth through the year (Dec about 1.5 x Jan, as a business growing ~50 % a
# year), weekends lower, the Spring Festival dip, university vacations, National Day week.
GROWTH_WITHIN_YEAR = 0.45
WEEKEND_FACTOR = 0.6
SPRING_FESTIVAL_FACTOR = 0.35  # from 7 days before to 10 days after New Year's Day
NATIONAL_DAY_FACTOR = 0.6  # 1-7 October
UNIVERSITY_VACATION_FACTOR = 0.7  # winter (around the festival) and summer (15 Jul - 31 Aug)
HOURLY = (2, 1, 1, 1, 1, 1, 2, 3, 6, 9, 10, 10, 7, 8, 10, 10, 9, 8, 6, 6, 6, 5, 4, 3)

# Chinese New Year's Day (first day of the first lunar month), Gregorian
SPRING_FESTIVAL = {
    2010: date(2010, 2, 14), 2011: date(2011, 2, 3), 2012: date(2012, 1, 23), 2013: date(2013, 2, 10),
    2014: date(2014, 1, 31), 2015: date(2015, 2, 19), 2016: date(2016, 2, 8), 2017: date(2017, 1, 28),
    2018: date(2018, 2, 16), 2019: date(2019, 2, 5), 2020: date(2020, 1, 25), 2021: date(2021, 2, 12),
    2022: date(2022, 2, 1), 2023: date(2023, 1, 22), 2024: date(2024, 2, 10), 2025: date(2025, 1, 29),
    2026: date(2026, 2, 17), 2027: date(2027, 2, 6), 2028: date(2028, 1, 26), 2029: date(2029, 2, 13),
    2030: date(2030, 2, 3), 2031: date(2031, 1, 23), 2032: date(2032, 2, 11), 2033: date(2033, 1, 31),
    2034: date(2034, 2, 19), 2035: date(2035, 2, 8),
}
FIRST_YEAR, LAST_YEAR = min(SPRING_FESTIVAL), max(SPRING_FESTIVAL)


@dataclass(frozen=True)
class PartitionPlan:
    cluster: str
    name: str
    product_line: str  # hpc | industry | ai
    weight: float  # share of its product line's work
    cores_per_node: int
    gpus_per_node: int = 0
    gpu_type: str | None = None
    utilization: float | None = None  # the busy share it is sized for, if not its cluster's


def planned_utilization(plan: "PartitionPlan") -> float:
    return plan.utilization or next(c.utilization for c in CLUSTERS if c.name == plan.cluster)


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    region: str
    ownership: str  # owned | leased
    utilization: float  # the average busy share the partitions are sized for
    core_price: Decimal  # list price per core-hour
    gpu_price: Decimal  # list price per card-hour
    cost_core_hour: Decimal  # what a used core-hour costs (lease price; owned: for reference)
    cost_gpu_hour: Decimal


# Prices near the seed operator's: 2,596 M core-hours x ~0.08 + 8.88 M card-hours x ~6.5 is about
# the 267 M CNY of 2022 supercomputing-cloud revenue. Owned capacity is planned ~60 % busy
# (idle owned nodes are what held 2022's margin at 26 %: with these costs and prices, the
# planned utilization is what gives the published margins), leased capacity ~75 % (bought as
# needed; busier, the December peak queues past the year's end). Leased costs are our choice.
CLUSTERS = (
    ClusterPlan("bj-hpc", "north", "owned", 0.64, Decimal("0.080"), Decimal("0"), Decimal("0.030"), Decimal("0")),
    ClusterPlan("sz-ai", "south", "owned", 0.64, Decimal("0.080"), Decimal("6.50"), Decimal("0.030"),
                Decimal("2.60")),
    ClusterPlan("wx-hpc", "east", "leased", 0.75, Decimal("0.075"), Decimal("0"), Decimal("0.048"), Decimal("0")),
    ClusterPlan("gz-mix", "south", "leased", 0.75, Decimal("0.085"), Decimal("7.20"), Decimal("0.054"),
                Decimal("5.00")),
    ClusterPlan("cd-ind", "west", "owned", 0.60, Decimal("0.080"), Decimal("0"), Decimal("0.032"), Decimal("0")),
)
INDUSTRY_PREMIUM = Decimal("1.2")  # industry-cloud core-hours come with licensed software
# licensed-software capacity waits for its few customers (and their licences): less busy, a lower
# margin than the supercomputing cloud's 27 %, which with it makes the operator's 26 % overall
INDUSTRY_UTILIZATION = 0.45
PARTITIONS = (
    PartitionPlan("bj-hpc", "cpu", "hpc", 0.40, 64),
    PartitionPlan("bj-hpc", "ind", "industry", 0.40, 64, utilization=INDUSTRY_UTILIZATION),
    PartitionPlan("wx-hpc", "cpu", "hpc", 0.35, 64),
    PartitionPlan("gz-mix", "cpu", "hpc", 0.10, 64),
    PartitionPlan("cd-ind", "cpu", "hpc", 0.15, 64),
    PartitionPlan("cd-ind", "ind", "industry", 0.60, 64, utilization=INDUSTRY_UTILIZATION),
    PartitionPlan("sz-ai", "gpu", "ai", 0.60, 64, 8, "a100"),
    PartitionPlan("gz-mix", "gpu", "ai", 0.40, 64, 8, "v100"),
)
# owned capacity costs (per node, the reports' cost model): purchase price written off over
# 5 years, average draw x PUE x power price, other opex per node-hour
OWNED_NODE_COSTS = {
    "cpu": dict(node_capex=Decimal("60000"), node_watts=650, node_opex_hour=Decimal("0.20")),
    "gpu": dict(node_capex=Decimal("700000"), node_watts=4500, node_opex_hour=Decimal("1.50")),
}
DEPRECIATION_YEARS = Decimal("5")
POWER_PRICE_KWH = Decimal("0.65")
PUE = Decimal("1.35")
