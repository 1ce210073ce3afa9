"""A discrete-event simulator of N clusters, each scheduling its queue with EASY
backfilling (routing.easy, the engine of the live wait prediction), fed by a
policy that picks a cluster per arriving job. Schedulers plan with the users'
time limits; jobs end after their real run times, never past their limits.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, Protocol

from ..clusters.base import QueueEntry
from ..domain.states import JobState
from ..routing.easy import Need, Pool, QueuePlan, Running, Waiting, predict_starts, schedule_pass
from .trace import Trace, TraceJob, replayed


@dataclass(frozen=True)
class SimCluster:
    name: str
    cores: int
    gpus: int = 0
    ownership: str = "owned"  # owned | leased | partner
    price_core_hour: Decimal = Decimal("0.10")  # what customers pay
    cost_core_hour: Decimal = Decimal("0.05")  # owned: per core of capacity per hour; else per used core-hour
    price_gpu_hour: Decimal = Decimal("0")
    cost_gpu_hour: Decimal = Decimal("0")
    region: str = ""
    backfill: bool = True


class ClusterState:
    def __init__(self, spec: SimCluster) -> None:
        self.spec = spec
        self.free = Pool(spec.cores, spec.gpus)
        self.running: dict[int, tuple[TraceJob, float, float]] = {}  # id -> (job, start, planned end)
        self.planned_ends: dict[int, tuple[float, Need]] = {}  # id -> (planned end, need): what EASY plans with
        self.queue: list[Waiting] = []
        self.queued_cores = 0
        self.busy_core_seconds = 0
        self.busy_gpu_seconds = 0
        self.jobs = 0
        self.version = 0  # bumped whenever what squeue would show changes (a plan of it goes stale)

    def fits(self, job: TraceJob) -> bool:
        return job.cores <= self.spec.cores and job.gpus <= self.spec.gpus

    def load(self) -> float:
        used = self.spec.cores - self.free.cores
        return (used + self.queued_cores) / self.spec.cores

    def enqueue(self, job: TraceJob) -> None:
        self.queue.append(Waiting(job, Need(job.cores, job.gpus), job.estimate, job.run))
        self.queued_cores += job.cores
        self.jobs += 1
        self.version += 1

    def schedule(self, now: float) -> list[TraceJob]:
        if not self.queue:
            return []
        started = schedule_pass(now, self.free, list(self.planned_ends.values()), self.queue, self.spec.backfill)
        jobs = []
        for w in started:
            job: TraceJob = w.key
            self.running[job.id] = (job, now, now + job.estimate)
            self.planned_ends[job.id] = (now + job.estimate, w.need)
            self.queued_cores -= job.cores
            jobs.append(job)
        if jobs:
            self.version += 1
        return jobs

    def finish(self, job: TraceJob) -> None:
        del self.running[job.id]
        del self.planned_ends[job.id]
        self.version += 1
        self.free.cores += job.cores
        self.free.gpus += job.gpus
        self.busy_core_seconds += int(job.cores * job.run)
        self.busy_gpu_seconds += int(job.gpus * job.run)

    def queue_entries(self, now: float) -> list[QueueEntry]:
        """This cluster as squeue would show it: what the live router reads."""
        entries = [QueueEntry(str(j.id), "batch", JobState.RUNNING, j.cores, 1, j.gpus, int(j.estimate),
                              int(now - start), 0) for j, start, _ in self.running.values()]
        entries += [QueueEntry(str(w.key.id), "batch", JobState.PENDING, w.need.cores, 1, w.need.gpus,
                               int(w.limit_s), 0, len(self.queue) - i) for i, w in enumerate(self.queue)]
        return entries


class Policy(Protocol):
    name: str

    def choose(self, job: TraceJob, now: float, states: list[ClusterState]) -> int: ...


@dataclass
class JobResult:
    job: TraceJob
    cluster: int
    start: float

    @property
    def wait(self) -> float:
        return self.start - self.job.submit

    @property
    def bounded_slowdown(self) -> float:
        return max(1.0, (self.wait + self.job.run) / max(self.job.run, 10.0))  # tau = 10 s


@dataclass
class SimResult:
    policy: str
    clusters: list[SimCluster]
    results: list[JobResult]
    busy_core_seconds: list[int]
    busy_gpu_seconds: list[int]
    span: float  # first submit to last end
    unrunnable: int = 0  # jobs larger than every cluster
    timeline: list[tuple[float, list[int]]] = field(default_factory=list)  # (time, busy cores per cluster)


@dataclass
class Rerouting:
    """Moving waiting jobs, as the live re-router does: a job moves (once) when another
    cluster would start it at least ``margin_s`` sooner, by the schedulers' plans."""

    every_s: float = 600.0
    margin_s: float = 600.0
    window: int = 16  # the first jobs of each queue (their EASY starts do not depend on later ones)
    moved: set = field(default_factory=set)
    moves: int = 0

    def run(self, now: float, states: list["ClusterState"]) -> set[int]:
        if not any(s.queue for s in states) or not any(s.free.cores > 0 for s in states):
            return set()
        touched: set[int] = set()
        plans: dict[int, QueuePlan] = {}
        for i, state in enumerate(states):
            if not state.queue:
                continue
            window = state.queue[:self.window]
            here = predict_starts(now, Pool(state.spec.cores, state.spec.gpus), _planned(state, now),
                                  [Waiting(w.key, w.need, w.limit_s) for w in window], backfill=state.spec.backfill)
            for w in window:
                job: TraceJob = w.key
                start_here = here.get(job, float("inf"))
                if job.id in self.moved or start_here - now <= self.margin_s:
                    continue
                best, best_start = None, start_here - self.margin_s
                for j, other in enumerate(states):
                    # a destination with a long queue of its own is no better: skip it cheaply
                    if j == i or not other.fits(job) or len(other.queue) > 2 * self.window:
                        continue
                    if j not in plans:
                        plans[j] = QueuePlan(now, Pool(other.spec.cores, other.spec.gpus), _planned(other, now),
                                             [Waiting(q.key, q.need, q.limit_s) for q in other.queue],
                                             backfill=other.spec.backfill)
                    start = plans[j].start(w.need, w.limit_s)
                    if start is not None and start < best_start:
                        best, best_start = j, start
                if best is None:
                    continue
                state.queue.remove(w)
                state.queued_cores -= job.cores
                states[best].queue.append(w)
                states[best].queued_cores += job.cores
                state.version += 1
                states[best].version += 1
                plans.pop(best, None)
                self.moved.add(job.id)
                self.moves += 1
                touched |= {i, best}
        return touched


def _planned(state: "ClusterState", now: float) -> list[Running]:
    """Running jobs as the scheduler sees them: ending at their limits."""
    return [Running(Need(j.cores, j.gpus), planned_end=planned, expected_end=planned)
            for j, _, planned in state.running.values()]


def simulate(trace: Trace, clusters: list[SimCluster], policy: Policy,
             progress: Callable[[int], None] | None = None, sample_every: float = 3600.0,
             rerouting: Rerouting | None = None, kill_at_limit: bool = False) -> SimResult:
    """Replay ``trace``; a job that ran past its limit is replayed whole (its limit taken as
    its run time) or, with ``kill_at_limit``, ends at its limit (see trace.replayed)."""
    states = [ClusterState(c) for c in clusters]
    events: list[tuple[float, int, int, object]] = []  # (time, 0 = end / 1 = arrival, seq, payload)
    seq = 0
    for job in replayed(trace.jobs, kill_at_limit):
        events.append((job.submit, 1, seq, job))
        seq += 1
    heapq.heapify(events)
    results: list[JobResult] = []
    unrunnable = 0
    last_end = 0.0
    timeline: list[tuple[float, list[int]]] = []
    next_sample = trace.jobs[0].submit if trace.jobs else 0.0
    next_reroute = next_sample
    done = 0
    while events:
        now, kind, _, payload = heapq.heappop(events)
        while now >= next_sample:
            timeline.append((next_sample, [s.spec.cores - s.free.cores for s in states]))
            next_sample += sample_every
        touched: set[int] = set()
        # everything at this instant first (ends before arrivals), then schedule once per touched cluster
        batch = [(kind, payload)]
        while events and events[0][0] == now:
            _, kind2, _, payload2 = heapq.heappop(events)
            batch.append((kind2, payload2))
        for kind, payload in batch:
            if kind == 0:
                index, job = payload
                states[index].finish(job)
                last_end = max(last_end, now)
                touched.add(index)
                continue
            if not any(s.fits(payload) for s in states):
                unrunnable += 1
                continue
            index = policy.choose(payload, now, states)
            states[index].enqueue(payload)
            touched.add(index)
            done += 1
            if progress is not None and done % 1000 == 0:
                progress(1000)
        if rerouting is not None and now >= next_reroute:
            next_reroute = now + rerouting.every_s
            for index in sorted(touched):  # place what can start now first, then look at the rest
                for job in states[index].schedule(now):
                    results.append(JobResult(job, index, now))
                    seq += 1
                    heapq.heappush(events, (now + job.run, 0, seq, (index, job)))
            touched |= rerouting.run(now, states)
        for index in sorted(touched):
            for job in states[index].schedule(now):
                results.append(JobResult(job, index, now))
                seq += 1
                heapq.heappush(events, (now + job.run, 0, seq, (index, job)))
    span = last_end - (trace.jobs[0].submit if trace.jobs else 0.0)
    return SimResult(policy.name, clusters, results, [s.busy_core_seconds for s in states],
                     [s.busy_gpu_seconds for s in states], span, unrunnable, timeline)
