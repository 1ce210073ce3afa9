"""A synthetic operator year (``cnet seed-data``): tenants, users, clusters, jobs and their money.

``generate(spec)`` draws the whole year with numpy from one seed (same seed,
same data) and returns it as tables in their stored form (ids local from 1,
money in cents, prices in millionths, times in epoch seconds UTC); see
seed_tables.py for the tables and seed_db.py / seed_parquet.py for where they
are written. The mix is calibrated to the seed operator's published figures
(seed_calibration.py): segments' shares of CPU core-hours and GPU card-hours,
the top five customers' share of revenue, prepaid dominance; its volume is the
target (--scale of the seed operator's) at every size, the simulator's EASY engine
places every job on its partition (seed_placement.py: never more than a partition
has), and owned nodes are sized to their planned utilization, which with the costs
gives the published margins (seed_report.py prints target vs achieved).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import seed_calibration as cal
from . import seed_jobs, seed_money, seed_monitoring, seed_placement

MAX_JOBS = 200_000_000


class SeedError(ValueError):
    """Input the generator refuses, with the reason."""


@dataclass(frozen=True)
class SeedSpec:
    year: int
    jobs: int | None = None  # how many jobs; or
    scale: float | None = None  # a fraction of the seed operator's 2022 volume
    tenants: int = 300
    seed: int = 1

    def checked(self) -> "SeedSpec":
        if not isinstance(self.year, int) or not cal.FIRST_YEAR <= self.year <= cal.LAST_YEAR:
            raise SeedError(f"year {self.year!r} is out of range: use {cal.FIRST_YEAR} to {cal.LAST_YEAR} "
                            "(the years whose Spring Festival date is known)")
        if self.jobs is not None and self.scale is not None:
            raise SeedError("give --jobs or --scale, not both")
        if self.jobs is not None and not 1 <= self.jobs <= MAX_JOBS:
            raise SeedError(f"--jobs must be a positive count (at most {MAX_JOBS:,}), not {self.jobs}")
        if self.scale is not None and not 0 < self.scale <= 1:
            raise SeedError(f"--scale must be a fraction of the real volume in (0, 1], not {self.scale}")
        if self.tenants < 10:
            raise SeedError(f"--tenants must be at least 10 (five key accounts and the rest), not {self.tenants}")
        if self.seed < 0:
            raise SeedError(f"--seed must be a non-negative integer, not {self.seed}")
        return self

    @property
    def prefix(self) -> str:
        """Names of everything generated for the year start with it (how a year's seed data is found)."""
        return f"s{self.year}"

    def job_count(self) -> int:
        if self.jobs is not None:
            return self.jobs
        count = round(self.volume_scale() * jobs_at_full_scale())
        if count < 1 or count > MAX_JOBS:
            raise SeedError(f"--scale {self.scale} means {count:,} jobs: use 1 to {MAX_JOBS:,}")
        return count

    def volume_scale(self) -> float:
        """The year's volume as a fraction of the seed operator's: --scale, or what --jobs jobs
        of the average shape make (the default is DEFAULT_SCALE)."""
        if self.jobs is not None:
            return self.jobs / jobs_at_full_scale()
        return self.scale if self.scale is not None else DEFAULT_SCALE

    def targets(self) -> tuple[float, float]:
        """(core-hours, card-hours) the year delivers: the seed operator's times the scale.
        Core-hours count the cores GPU jobs hold, as the usage reports do."""
        scale = self.volume_scale()
        return scale * cal.REAL_CORE_HOURS_2022, scale * cal.REAL_CARD_HOURS_2022


# The default year: big enough that owned clusters come in whole nodes near their planned
# utilization (at 20,000 jobs the owned GPU cluster was one 8-card node, 4 % busy)
DEFAULT_SCALE = 0.005


def jobs_at_full_scale() -> float:
    """Jobs of the average shapes that make the seed operator's whole volume."""
    cores_per_card = max(p.cores_per_node // p.gpus_per_node for p in cal.PARTITIONS if p.gpus_per_node)
    cpu_core_hours = cal.REAL_CORE_HOURS_2022 - cores_per_card * cal.REAL_CARD_HOURS_2022
    return cpu_core_hours * 3600 / seed_jobs.mean_units("cpu") * (1 + gpu_job_ratio())


def fit_volume(size: np.ndarray, elapsed: np.ndarray, target_seconds: float, rounds: int = 8) -> np.ndarray:
    """Run times stretched (or shrunk) evenly so that size x elapsed adds up to the target: the
    caps on the largest jobs take volume away, most at small scales. Run times stay within
    the shortest and the 7-day limit; what the capped ones cannot take, the others do."""
    out = elapsed.astype(np.float64)
    if len(out) == 0 or target_seconds <= 0:
        return elapsed
    for _ in range(rounds):
        total = float((size * out).sum())
        if abs(total - target_seconds) <= 1e-6 * target_seconds:
            break
        free = (out < cal.MAX_RUNTIME_S) if total < target_seconds else (out > cal.MIN_RUNTIME_S)
        movable = float((size[free] * out[free]).sum())
        if movable <= 0:
            break
        out[free] *= 1 + (target_seconds - total) / movable
        np.clip(out, cal.MIN_RUNTIME_S, cal.MAX_RUNTIME_S, out=out)
    return np.round(out).astype(np.int64)


def gpu_job_ratio() -> float:
    """GPU jobs per CPU job so that card-hours / core-hours is the seed operator's (8.88 M / 2,596 M)."""
    volume = cal.REAL_CARD_HOURS_2022 / cal.REAL_CORE_HOURS_2022
    return volume * seed_jobs.mean_units("cpu") / seed_jobs.mean_units("gpu")


def largest_job(units: np.ndarray, kind: str) -> int:
    """The most cores (cards) one job may hold: all of the smallest partition it may run on, as
    sized for this volume. A small network (a demo year) has no room for a 1,024-core job."""
    hours = 8760 * 3600
    share = {p: (1 - _industry_share()) if p.product_line == "hpc" else _industry_share()
             for p in cal.PARTITIONS if not p.gpus_per_node}
    sizes = []
    for plan in cal.PARTITIONS:
        if bool(plan.gpus_per_node) != (kind == "gpu"):
            continue
        per_node = plan.gpus_per_node or plan.cores_per_node
        fraction = plan.weight * (1 if kind == "gpu" else share[plan])
        sizes.append(max(1, int(units.sum() * fraction / (cal.planned_utilization(plan) * per_node * hours))) * per_node)
    return min(sizes)


def shorten_largest(size: np.ndarray, elapsed: np.ndarray, most: float = 0.002) -> np.ndarray:
    """No job may be more than ``most`` of the year's work: in a small year one 7-day,
    1,024-core job would be a customer by itself. Never bites at a large scale."""
    limit = max(most * float((size * elapsed).sum()), 1.0)
    return np.maximum(np.minimum(elapsed, np.floor(limit / np.maximum(size, 1))), 1).astype(np.int64)


def _industry_share() -> float:
    return sum(cal.CPU_SHARE[s] * cal.INDUSTRY_SHARE[s] for s in cal.SEGMENTS)


def cpu_targets(network, gpu_segment: np.ndarray, card_seconds: np.ndarray, cpu_core_seconds: float) -> np.ndarray:
    """Core-seconds of CPU jobs per segment such that the segments' shares of *all* allocated
    core-hours (GPU jobs hold cores too, and usage counts them) are the published ones."""
    cores_per_card = int(network.cores_per_gpu[network.is_gpu][0])  # every AI partition: 64 cores, 8 cards
    gpu_cores = np.bincount(gpu_segment, weights=card_seconds * cores_per_card, minlength=len(cal.SEGMENTS))
    total = cpu_core_seconds + gpu_cores.sum()
    wanted = np.asarray([cal.CPU_SHARE[s] for s in cal.SEGMENTS]) * total - gpu_cores
    return np.maximum(wanted, 0)


@dataclass
class Population:
    """Tenants, their projects and users, by index (0-based here; ids are index + 1)."""

    segment: np.ndarray  # per tenant, index into cal.SEGMENTS
    key: np.ndarray  # per tenant: 0..4 for the five key accounts, -1 otherwise
    serial: np.ndarray  # per tenant: its number within its segment
    users_of: np.ndarray  # per tenant: how many users
    first_user: np.ndarray  # per tenant: index of its first user
    projects_of: np.ndarray
    first_project: np.ndarray
    project_of_user: np.ndarray  # per user: index into projects
    tenant_of_project: np.ndarray
    weight: np.ndarray = field(default_factory=lambda: np.zeros(0))  # tenants' relative size within segment


def population(rng: np.random.Generator, tenants: int) -> Population:
    counts = np.floor(np.asarray([cal.TENANT_MIX[s] for s in cal.SEGMENTS]) * tenants).astype(np.int64)
    for s in np.argsort([-cal.TENANT_MIX[s] for s in cal.SEGMENTS])[:tenants - counts.sum()]:
        counts[s] += 1  # largest first: the counts add up to --tenants
    counts = np.maximum(counts, 2)
    segment = np.repeat(np.arange(len(cal.SEGMENTS)), counts)
    serial = np.concatenate([np.arange(c) for c in counts])
    key = np.full(len(segment), -1)
    for k, (name, _) in enumerate(cal.KEY_ACCOUNTS):
        s = cal.SEGMENTS.index(name)
        key[np.flatnonzero((segment == s) & (key < 0))[0]] = k
    mean_users = np.asarray([cal.USERS_PER_TENANT[cal.SEGMENTS[s]] for s in segment], dtype=np.float64)
    users_of = 1 + rng.poisson(np.maximum(mean_users - 1, 0) * np.where(key >= 0, 3, 1))
    projects_of = np.where(segment == cal.SEGMENTS.index("individual"), 1, 1 + users_of // 6)
    first_user = np.concatenate([[0], np.cumsum(users_of)[:-1]])
    first_project = np.concatenate([[0], np.cumsum(projects_of)[:-1]])
    tenant_of_user = np.repeat(np.arange(len(segment)), users_of)
    within = np.arange(users_of.sum()) - first_user[tenant_of_user]
    project_of_user = first_project[tenant_of_user] + within % projects_of[tenant_of_user]
    weight = rng.lognormal(0, 1.2, size=len(segment))
    return Population(segment, key, serial, users_of, first_user, projects_of, first_project, project_of_user,
                      np.repeat(np.arange(len(segment)), projects_of), weight)


def tenant_targets(pop: Population, list_revenue_of_segment: np.ndarray, discount: np.ndarray) -> np.ndarray:
    """Each tenant's share of its segment's list-price work, so that the key accounts bring
    their share of the 16.7 % of net revenue and nobody else outgrows the smallest of them."""
    key_share = np.asarray([cal.TOP5_REVENUE_SHARE * part for _, part in cal.KEY_ACCOUNTS])
    net = 1 - discount.astype(np.float64) / 100
    is_key = pop.key >= 0
    cap = key_share.min() * 0.8
    share = np.zeros(len(pop.segment))
    total = float((list_revenue_of_segment * 0.9).sum())
    for _ in range(50):  # fixed point: net revenue depends on the weights, the weights on it
        for s in range(len(cal.SEGMENTS)):
            mine = pop.segment == s
            if list_revenue_of_segment[s] <= 0:
                continue
            keys = mine & is_key
            share[keys] = key_share[pop.key[keys]] * total / (net[keys] * list_revenue_of_segment[s])
            others = mine & ~is_key
            rest = max(1 - share[keys].sum(), 0)
            w = pop.weight[others] / pop.weight[others].sum() * rest
            limit = cap * total / (net[others] * list_revenue_of_segment[s])
            for _ in range(20):  # spread what is over the cap onto the others
                over = w > limit
                if not over.any():
                    break
                w[over] = limit[over]
                free = ~over
                if not free.any():
                    break
                w[free] *= (rest - w[over].sum()) / w[free].sum()
            if w.sum() < rest * 0.99:
                raise SeedError(f"{int(mine.sum())} {cal.SEGMENTS[s]} tenants are too few for the published "
                                "concentration (no customer but the top five above the fifth): use more --tenants")
            share[others] = w
        total = float(sum((share * net)[pop.segment == s].sum() * list_revenue_of_segment[s]
                          for s in range(len(cal.SEGMENTS))))
    return share


def generate(spec: SeedSpec, progress=None, placing=None):
    """The whole year, in stored-form tables (see seed_tables.SeedTables). ``progress(step)`` is
    called at each step; ``placing(jobs)`` as the EASY placement gets through jobs (the long part)."""
    from .seed_tables import build_tables, size_partitions

    spec = spec.checked()
    rng = np.random.default_rng(spec.seed)
    n = spec.job_count()
    n_gpu = int(round(n * gpu_job_ratio() / (1 + gpu_job_ratio())))
    n_gpu = min(max(n_gpu, 1 if n > 1 else 0), n)
    n_cpu = n - n_gpu
    step = progress or (lambda what: None)
    step("shapes")
    network = seed_money.network_plan()
    cores_per_card = int(network.cores_per_gpu[network.is_gpu].max())
    core_hours, card_hours = spec.targets()
    cores_cpu, elapsed_cpu = seed_jobs.cpu_shapes(rng, n_cpu)
    cards, elapsed_gpu = seed_jobs.gpu_shapes(rng, n_gpu)
    cores_cpu = np.minimum(cores_cpu, largest_job(cores_cpu * elapsed_cpu, "cpu"))
    cards = np.minimum(cards, largest_job(cards * elapsed_gpu, "gpu"))
    elapsed_cpu = shorten_largest(cores_cpu, elapsed_cpu)
    elapsed_gpu = shorten_largest(cards, elapsed_gpu)
    # the delivered volume is the target at every scale (the caps above took some away)
    elapsed_gpu = fit_volume(cards, elapsed_gpu, card_hours * 3600)
    cpu_target = core_hours * 3600 - float((cards * elapsed_gpu).sum()) * cores_per_card
    elapsed_cpu = fit_volume(cores_cpu, elapsed_cpu, cpu_target)
    is_gpu = np.concatenate([np.zeros(n_cpu, bool), np.ones(n_gpu, bool)])
    gpus = np.concatenate([np.zeros(n_cpu, np.int64), cards])
    elapsed = np.concatenate([elapsed_cpu, elapsed_gpu])
    units = np.where(is_gpu, gpus, np.concatenate([cores_cpu, np.zeros(n_gpu, np.int64)])) * elapsed
    step("segments")
    segment = np.empty(n, dtype=np.int64)
    segment[is_gpu] = seed_jobs.allocate(units[is_gpu], [cal.GPU_SHARE[s] for s in cal.SEGMENTS], rng)
    segment[~is_gpu] = seed_jobs.allocate(units[~is_gpu], cpu_targets(network, segment[is_gpu], units[is_gpu],
                                                                      units[~is_gpu].sum()), rng)
    partition = seed_money.choose_partitions(rng, network, is_gpu, segment, units)
    cores = np.where(is_gpu, gpus * network.cores_per_gpu[partition],
                     np.concatenate([cores_cpu, np.zeros(n_gpu, np.int64)]))
    list_amount = seed_money.list_amounts(network, partition, elapsed, cores, gpus)
    step("tenants")
    pop = population(rng, spec.tenants)
    discount = seed_money.discounts(pop)
    by_segment = np.bincount(segment, weights=list_amount, minlength=len(cal.SEGMENTS))
    share = tenant_targets(pop, by_segment, discount)
    tenant = np.empty(n, dtype=np.int64)
    for s in range(len(cal.SEGMENTS)):
        mine, members = np.flatnonzero(segment == s), np.flatnonzero(pop.segment == s)
        tenant[mine] = members[seed_jobs.allocate(list_amount[mine], share[members], rng)]
    # power users: a tenant's first users run most of its jobs
    user = pop.first_user[tenant] + np.floor(rng.random(n) ** 2.5 * pop.users_of[tenant]).astype(np.int64)
    step("times")
    submit = seed_jobs.submit_times(rng, spec.year, segment)
    submit, settle_delay = seed_jobs.run_times(rng, spec.year, submit, elapsed)
    state = seed_jobs.states(rng, n)
    limit = seed_jobs.time_limits(rng, elapsed, state)
    nodes = size_partitions(network, partition, cores, gpus, elapsed)
    step("placing jobs")
    shape = [(p.cores_per_node, p.gpus_per_node) for p in network.partitions]
    placed = seed_placement.place(submit, elapsed, limit * 60, cores, gpus, partition, nodes, shape,
                                  network.line_of, seed_jobs.year_bounds(spec.year), settle_delay, placing)
    submit, start, partition, nodes = placed.submit, placed.start, placed.partition, placed.nodes
    end = start + elapsed
    settled = end + settle_delay
    order = np.argsort(submit, kind="stable")  # job ids follow submission
    jobs = dict(submit=submit, start=start, end=end, settled=settled, elapsed=elapsed, cores=cores, gpus=gpus,
                partition=partition, user=user, tenant=tenant, state=state, limit=limit, is_gpu=is_gpu)
    jobs = {k: v[order] for k, v in jobs.items()}
    step("money")
    money = seed_money.job_money(network, jobs, discount)
    tables = build_tables(spec, network, pop, discount, jobs, money, rng, nodes)
    tables.extra["targets"] = dict(core_hours=core_hours, card_hours=card_hours)
    step("monitoring")
    tables.columns["job_profiles"], tables.times["job_profiles"] = seed_monitoring.profiles(tables, spec.seed)
    return tables
