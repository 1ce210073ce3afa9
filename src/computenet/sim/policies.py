"""Who sends an arriving job where, in the simulator.

``RouterPolicy`` is the live router (routing.Router with the live wait
prediction, routing.estimate.predict_wait) reading each simulated cluster
as squeue would show it. The others are the baselines it is judged against.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from decimal import Decimal

from ..domain.resources import ResourceRequest
from ..routing.easy import Need, QueuePlan
from ..routing.estimate import plan
from ..routing.model import Constraints, Target
from ..routing.router import Router
from .engine import ClusterState
from .trace import TraceJob


def _largest_fit(job: TraceJob, states: list[ClusterState]) -> int:
    fits = [i for i, s in enumerate(states) if s.fits(job)]
    return max(fits, key=lambda i: (states[i].spec.cores, -i))


@dataclass
class Static:
    """Each job stays on its home cluster: users belong to centres in proportion to the shares."""

    shares: list[float]
    name: str = "static"

    def choose(self, job: TraceJob, now: float, states: list[ClusterState]) -> int:
        total = sum(self.shares)
        point = (zlib.crc32(str(job.user if job.user >= 0 else job.id).encode()) % 10_000) / 10_000 * total
        home, acc = len(self.shares) - 1, 0.0
        for i, share in enumerate(self.shares):
            acc += share
            if point < acc:
                home = i
                break
        return home if states[home].fits(job) else _largest_fit(job, states)


@dataclass
class RoundRobin:
    name: str = "round_robin"
    _next: int = 0

    def choose(self, job: TraceJob, now: float, states: list[ClusterState]) -> int:
        for step in range(len(states)):
            i = (self._next + step) % len(states)
            if states[i].fits(job):
                self._next = i + 1
                return i
        return _largest_fit(job, states)


@dataclass
class LeastLoaded:
    name: str = "least_loaded"

    def choose(self, job: TraceJob, now: float, states: list[ClusterState]) -> int:
        fits = [i for i, s in enumerate(states) if s.fits(job)]
        return min(fits, key=lambda i: (states[i].load(), i))


@dataclass
class RouterPolicy:
    """The live router, unchanged: feasibility, price, predicted wait, a policy's ranking."""

    policy: str = "earliest_start"
    options: dict = field(default_factory=dict)
    name: str = ""
    decisions: int = 0
    # size-aware: of the clusters that start the job within this many seconds of the earliest,
    # the smallest (keeps the large cluster's room for the jobs only it can take); None: off
    sized_slack_s: float | None = None

    def __post_init__(self) -> None:
        self.router = Router(self.policy, self.options)
        self.name = self.name or self.policy
        self._plans: dict[str, tuple[int, float, QueuePlan]] = {}  # cluster -> (its version, made at, plan)

    def choose(self, job: TraceJob, now: float, states: list[ClusterState]) -> int:
        targets = [Target(s.spec.name, "batch", nodes=1, cores_per_node=s.spec.cores, mem_per_node_mb=1 << 40,
                          gpus_per_node=s.spec.gpus, is_default=True, ownership=s.spec.ownership,
                          region=s.spec.region, backfill=s.spec.backfill) for s in states]
        by_name = {s.spec.name: s for s in states}
        minutes = max(1, int(-(-job.estimate // 60)))
        res = ResourceRequest(cpus_per_task=min(job.cores, 100_000), gpus_per_node=job.gpus,
                              time_limit_minutes=minutes)

        def price(target: Target, _minutes: int) -> Decimal:
            spec = by_name[target.cluster].spec
            hours = Decimal(int(job.estimate)) / 3600
            return (spec.price_core_hour * job.cores + spec.price_gpu_hour * job.gpus) * hours

        def wait(target: Target, _minutes: int) -> float | None:
            state = by_name[target.cluster]
            made = self._plans.get(target.cluster)
            if made is None or made[0] != state.version:
                # the live prediction's plan of the queue as squeue shows it, kept until the queue changes
                made = (state.version, now, plan(target, state.queue_entries(now)))
                self._plans[target.cluster] = made
            since = now - made[1]
            start = made[2].start(Need(job.cores, job.gpus), job.estimate, at=since)
            return None if start is None else max(0.0, start - since)

        decision = self.router.route(res, targets, Constraints(), price, wait)
        self.decisions += 1
        chosen = decision.chosen
        if chosen is None:
            return _largest_fit(job, states)
        if self.sized_slack_s is not None and chosen.wait_s is not None:
            close = [c for c in decision.ranked
                     if c.wait_s is not None and c.wait_s <= chosen.wait_s + self.sized_slack_s]
            chosen = min(close, key=lambda c: (by_name[c.target.cluster].spec.cores, c.target.name))
        return next(i for i, s in enumerate(states) if s.spec.name == chosen.target.cluster)


def pooled(clusters) -> list:
    """One cluster of the same total size: the reference bound."""
    from .engine import SimCluster

    total = sum(c.cores for c in clusters)
    gpus = sum(c.gpus for c in clusters)
    owned = [c for c in clusters if c.ownership == "owned"] or clusters
    return [SimCluster("pooled", total, gpus, "owned", owned[0].price_core_hour, owned[0].cost_core_hour,
                       owned[0].price_gpu_hour, owned[0].cost_gpu_hour)]
