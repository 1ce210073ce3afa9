"""Prices, contracts, job charges and how customers paid, for the synthetic year.

Amounts are exact integers (cents, price millionths) computed the way the
rating path computes them (billing/batch.rate_cents is rating.rate_usage for
integer inputs); only the job-to-tenant allocation looks at float list prices.
Prepaid projects are topped up before each month by enough to cover every
hold of the month; postpaid projects (selected enterprises) run on a credit
line and pay each month's bill on the 10th of the next (December's is still
open at the year's end).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np

from ..billing.batch import rate_cents
from . import seed_calibration as cal

MICRO = 1_000_000
PRODUCT_LINES = ("hpc", "industry", "ai")


@dataclass
class Network:
    clusters: tuple[cal.ClusterPlan, ...]
    partitions: tuple[cal.PartitionPlan, ...]
    cluster_of: np.ndarray  # per partition, index into clusters
    line_of: np.ndarray  # per partition, index into PRODUCT_LINES
    is_gpu: np.ndarray
    cores_per_gpu: np.ndarray
    core_price: list[Decimal]  # list prices per partition
    gpu_price: list[Decimal]


def network_plan() -> Network:
    names = [c.name for c in cal.CLUSTERS]
    parts = cal.PARTITIONS
    cluster_of = np.asarray([names.index(p.cluster) for p in parts])
    core, gpu = [], []
    for p in parts:
        c = cal.CLUSTERS[names.index(p.cluster)]
        core.append(c.core_price * (cal.INDUSTRY_PREMIUM if p.product_line == "industry" else 1))
        gpu.append(c.gpu_price if p.gpus_per_node else Decimal(0))
    return Network(cal.CLUSTERS, parts, cluster_of, np.asarray([PRODUCT_LINES.index(p.product_line) for p in parts]),
                   np.asarray([p.gpus_per_node > 0 for p in parts]),
                   np.asarray([p.cores_per_node // p.gpus_per_node if p.gpus_per_node else 0 for p in parts]),
                   core, gpu)


def choose_partitions(rng: np.random.Generator, net: Network, is_gpu: np.ndarray, segment: np.ndarray,
                      units: np.ndarray) -> np.ndarray:
    """GPU jobs on AI partitions; CPU jobs on industry or general partitions by their segment's habit.
    Within a product line, work is shared out by ``line_shares`` (``units``: unit-seconds per job)."""
    from .seed_jobs import allocate

    industry_p = np.asarray([cal.INDUSTRY_SHARE[s] for s in cal.SEGMENTS])[segment]
    line = np.where(is_gpu, PRODUCT_LINES.index("ai"),
                    np.where(rng.random(len(segment)) < industry_p, PRODUCT_LINES.index("industry"),
                             PRODUCT_LINES.index("hpc")))
    out = np.empty(len(segment), dtype=np.int64)
    for index in range(len(PRODUCT_LINES)):
        mine = np.flatnonzero(line == index)
        candidates = np.flatnonzero(net.line_of == index)
        shares = line_shares(net, candidates, float(units[mine].sum()) / 3600)
        out[mine] = candidates[allocate(units[mine], shares, rng)]
    return out


def line_shares(net: Network, candidates: np.ndarray, work_hours: float) -> np.ndarray:
    """Each partition's share of its product line's work. Owned capacity is bought in whole nodes
    and filled to its planned utilization (it costs the same idle or busy); leased
    partitions, paid per use, take the rest by their weights. At a large scale this is the
    weights; in a small year a partition's weight may be a fraction of a node."""
    hours = 8760
    weights = np.asarray([net.partitions[c].weight for c in candidates], dtype=np.float64)
    weights /= weights.sum()
    owned = np.asarray([net.clusters[net.cluster_of[c]].ownership == "owned" for c in candidates])
    if owned.all() or not owned.any() or work_hours <= 0:
        return weights
    shares = np.zeros(len(candidates))
    for k, c in enumerate(candidates):
        if owned[k]:
            plan = net.partitions[c]
            node_hours = (plan.gpus_per_node or plan.cores_per_node) * hours
            node_hours *= cal.planned_utilization(plan)
            nodes = max(1, round(work_hours * weights[k] / node_hours))
            shares[k] = nodes * node_hours / work_hours
    most = 1 - OWNED_LEAVES * weights[~owned].sum()
    if shares.sum() > most:
        shares *= most / shares.sum()
    shares[~owned] = weights[~owned] / weights[~owned].sum() * (1 - shares.sum())
    return shares


OWNED_LEAVES = 0.1  # in a tiny year, leased partitions keep at least this share of their weight


def list_amounts(net: Network, partition: np.ndarray, elapsed: np.ndarray, cores: np.ndarray,
                 gpus: np.ndarray) -> np.ndarray:
    """Approximate list-price amounts (float): only to share work out among tenants, never booked."""
    core = np.asarray([float(p) for p in net.core_price])[partition]
    gpu = np.asarray([float(p) for p in net.gpu_price])[partition]
    return np.where(net.is_gpu[partition], gpus * gpu, cores * core) * elapsed / 3600


def discounts(pop) -> np.ndarray:
    """Contract discount (percent, integer) per tenant: key accounts negotiate, education prices."""
    by_segment = np.asarray([int(cal.SEGMENT_DISCOUNT.get(s, 0)) for s in cal.SEGMENTS])
    return np.where(pop.key >= 0, int(cal.KEY_DISCOUNT), by_segment[pop.segment]).astype(np.int64)


def contract_price(listed: Decimal, discount: int) -> int:
    """Millionths, as pricebook.with_contract computes a discounted price."""
    price = (listed * (Decimal(100) - Decimal(int(discount))) / Decimal(100)).quantize(Decimal("0.000001"))
    return int(price * MICRO)


def job_money(net: Network, jobs: dict, discount: np.ndarray) -> dict:
    """Per job: prices (millionths), billed seconds, the charge and the hold (cents)."""
    part, tenant = jobs["partition"], jobs["tenant"]
    levels = np.unique(discount)
    core_table = np.asarray([[contract_price(p, d) for d in levels] for p in net.core_price], dtype=np.int64)
    gpu_table = np.asarray([[contract_price(p, d) for d in levels] for p in net.gpu_price], dtype=np.int64)
    level = np.searchsorted(levels, discount[tenant])
    core_micro, gpu_micro = core_table[part, level], gpu_table[part, level]
    gpu_part = net.is_gpu[part]
    # cpu partitions bill cores; gpu partitions bill cards (max_gpus_cores: cores come with the cards)
    core_units = np.where(gpu_part, 0, jobs["cores"])
    gpu_units = np.where(gpu_part, np.maximum(jobs["gpus"], jobs["cores"] // np.maximum(net.cores_per_gpu[part], 1)), 0)
    elapsed = jobs["elapsed"]
    charge = rate_cents(elapsed, core_units, gpu_units, core_micro, gpu_micro)
    hold = rate_cents(jobs["limit"] * 60, core_units, gpu_units, core_micro, gpu_micro)
    return dict(core_micro=core_micro, gpu_micro=gpu_micro, core_seconds=elapsed * core_units,
                gpu_seconds=elapsed * gpu_units, charge=charge, hold=np.maximum(hold, charge))


def month_starts(year: int) -> np.ndarray:
    return np.asarray([int(datetime(year + (m == 12), m % 12 + 1, 1, tzinfo=timezone.utc).timestamp())
                       for m in range(13)])


def postpaid_tenants(pop, tenant_revenue: np.ndarray) -> np.ndarray:
    """The largest enterprises, until they carry cal.POSTPAID_REVENUE_SHARE of revenue."""
    chosen = np.zeros(len(tenant_revenue), dtype=bool)
    total, target, carried = tenant_revenue.sum(), cal.POSTPAID_REVENUE_SHARE * tenant_revenue.sum(), 0
    enterprises = np.flatnonzero(pop.segment == cal.SEGMENTS.index("enterprise"))
    for t in enterprises[np.argsort(-tenant_revenue[enterprises], kind="stable")]:
        if total <= 0 or carried + tenant_revenue[t] / 2 > target:
            break
        chosen[t] = True
        carried += tenant_revenue[t]
    return chosen


def funding(rng: np.random.Generator, year: int, jobs: dict, money: dict, project_of_job: np.ndarray,
            postpaid_project: np.ndarray, projects: int) -> dict:
    """Top-ups (prepaid), monthly payments (postpaid) and credit lines, per project."""
    bounds = month_starts(year)
    m_submit = np.searchsorted(bounds, jobs["submit"], side="right") - 1
    m_settle = np.searchsorted(bounds, jobs["settled"], side="right") - 1
    shape = (projects, 12)
    held, charged, released = (np.zeros(shape, dtype=np.int64) for _ in range(3))
    np.add.at(held, (project_of_job, m_submit), money["hold"])
    np.add.at(charged, (project_of_job, m_settle), money["charge"])
    np.add.at(released, (project_of_job, m_settle), money["hold"])
    topup = np.zeros(shape, dtype=np.int64)
    for m in range(12):
        posted_before = topup[:, :m].sum(axis=1) - charged[:, :m].sum(axis=1)
        open_holds = held[:, :m].sum(axis=1) - released[:, :m].sum(axis=1)
        need = np.ceil((held[:, m] * 1.1 - (posted_before - open_holds)) / 10_000).astype(np.int64) * 10_000
        topup[:, m] = np.where((held[:, m] > 0) & ~postpaid_project, np.maximum(need, 0), 0)
    # top-ups come in the last three days before the month; payments on the 10th of the next month
    p, m = np.nonzero(topup)
    topup_at = bounds[m] - rng.integers(3600, 3 * 86_400, size=len(p))
    q, n = np.nonzero(charged[:, :11] * postpaid_project[:, None])
    pay_at = bounds[n + 1] + 9 * 86_400 + rng.integers(0, 8 * 3600, size=len(q))
    window = held + np.pad(held, ((0, 0), (1, 0)))[:, :12] + np.pad(held, ((0, 0), (2, 0)))[:, :12]
    credit = np.where(postpaid_project, np.ceil(window.max(axis=1) * 1.2 / 1_000_000).astype(np.int64) * 1_000_000, 0)
    return dict(topup_project=p, topup_month=m, topup_amount=topup[p, m], topup_at=topup_at,
                pay_project=q, pay_month=n, pay_amount=charged[q, n], pay_at=pay_at, credit=credit)
