"""EASY backfilling, the way Slurm's backfill scheduler plans: one engine for
queue-wait prediction (live queue, forward-simulated) and for the simulator.

Resources are a pool per partition: cores and GPUs (node packing is not
modelled; feasibility has already checked per-node shapes). Plans use time
limits, as Slurm does; callers may pass shorter expected runtimes to correct
for jobs that end early.

A planned end is never in the past: a job planned to end "now" at every pass
makes every reservation too early and backfilling stalls. So the simulator
replays no job past its limit (sim.trace.replayed: the limit is max(limit, run
time), or the job is killed at it), and the live prediction gives a running job
that is overdue a later end (routing.estimate.plan).
"""

from __future__ import annotations

import heapq
from operator import itemgetter
from dataclasses import dataclass


@dataclass(frozen=True)
class Need:
    cores: int
    gpus: int = 0

    def fits(self, cores: int, gpus: int) -> bool:
        return self.cores <= cores and self.gpus <= gpus


@dataclass
class Waiting:
    """A queued job: what it needs and how long it may run (its limit, seconds)."""

    key: object
    need: Need
    limit_s: float
    runtime_s: float | None = None  # expected (or, in the simulator, actual) run time; None = limit


@dataclass
class Pool:
    cores: int
    gpus: int = 0


def _shadow(now: float, free: Pool, ends: list[tuple[float, Need]], head: Need) -> tuple[float, Pool]:
    """When the blocked head job can start (by planned ends) and what is spare then."""
    cores, gpus = free.cores, free.gpus
    ordered = sorted(ends, key=itemgetter(0))  # by end only: a Need has no order
    last = len(ordered) - 1
    for i, (end, need) in enumerate(ordered):
        cores, gpus = cores + need.cores, gpus + need.gpus
        # every job ending at this instant frees its resources then: count them all before
        # deciding (a planned end already past counts as now)
        if i < last and (ordered[i + 1][0] == end or ordered[i + 1][0] <= now):
            continue
        if head.cores <= cores and head.gpus <= gpus:
            return max(end, now), Pool(cores - head.cores, gpus - head.gpus)
    return float("inf"), Pool(0, 0)  # never, with what is running: nothing may delay it


def schedule_pass(now: float, free: Pool, planned_ends: list[tuple[float, Need]],
                  queue: list[Waiting], backfill: bool = True, seen: dict | None = None) -> list[Waiting]:
    """One EASY pass at ``now``: start jobs in order while they fit; when the first
    one does not, reserve its start (the shadow time) and start later jobs only
    if they fit now and do not delay it. Mutates ``free``; returns jobs started.
    ``seen`` receives the head's shadow time and what stays spare past it."""
    started: list[Waiting] = []
    cores, gpus = free.cores, free.gpus
    ahead = 0
    for job in queue:
        n = job.need
        if n.cores > cores or n.gpus > gpus:
            break
        cores, gpus = cores - n.cores, gpus - n.gpus
        planned_ends.append((now + job.limit_s, n))
        started.append(job)
        ahead += 1
    if ahead:
        del queue[:ahead]
    free.cores, free.gpus = cores, gpus
    if not queue or not backfill:  # strict FIFO stops at the first job that does not fit
        return started
    # the reservation is only worked out when some job could use it (the pass's hot path)
    shadow, extra = (_shadow(now, free, planned_ends, queue[0].need) if seen is not None
                     else (None, None))
    backfilled: list[int] = []  # positions in the queue (the scan appends to nothing else: the hot loop)
    for i in range(1, len(queue)):
        if cores <= 0 and gpus <= 0:  # nothing left to backfill with: every job needs a core or a GPU
            break
        job = queue[i]
        n = job.need
        if n.cores > cores or n.gpus > gpus:
            continue
        if shadow is None:
            shadow, extra = _shadow(now, Pool(cores, gpus), planned_ends, queue[0].need)
        ends_in_time = now + job.limit_s <= shadow
        if ends_in_time or (n.cores <= extra.cores and n.gpus <= extra.gpus):
            cores, gpus = cores - n.cores, gpus - n.gpus
            if not ends_in_time:
                extra = Pool(extra.cores - n.cores, extra.gpus - n.gpus)
            planned_ends.append((now + job.limit_s, n))
            started.append(job)
            backfilled.append(i)
    if backfilled:
        gone = set(backfilled)
        queue[:] = [job for i, job in enumerate(queue) if i not in gone]
    free.cores, free.gpus = cores, gpus
    if seen is not None:
        seen["shadow"], seen["extra"] = shadow, extra
    return started


@dataclass(frozen=True)
class Running:
    need: Need
    planned_end: float  # start + limit: what the scheduler plans with
    expected_end: float  # when it is expected to really end (<= planned_end)


def predict_starts(now: float, total: Pool, running: list[Running], queue: list[Waiting],
                   until: object | None = None, horizon_s: float = 30 * 86400,
                   backfill: bool = True) -> dict[object, float]:
    """Forward-simulate the queue with EASY; returns the predicted start of each
    queued job (stops early once ``until`` has a start). Jobs that cannot start
    within the horizon are left out."""
    used = Need(sum(r.need.cores for r in running), sum(r.need.gpus for r in running))
    free = Pool(max(0, total.cores - used.cores), max(0, total.gpus - used.gpus))
    # (expected end, seq, need, planned end): resources come back at the expected end
    events: list[tuple[float, int, Need, float]] = []
    planned: dict[int, tuple[float, Need]] = {}
    seq = 0
    for r in running:
        heapq.heappush(events, (max(r.expected_end, now), seq, r.need, r.planned_end))
        planned[seq] = (max(r.planned_end, now), r.need)
        seq += 1
    waiting = list(queue)
    starts: dict[object, float] = {}
    t = now
    while waiting and t <= now + horizon_s:
        ends = list(planned.values())
        before = len(ends)
        for job in schedule_pass(t, free, ends, waiting, backfill):
            starts[job.key] = t
            runtime = job.runtime_s if job.runtime_s is not None else job.limit_s
            heapq.heappush(events, (t + runtime, seq, job.need, t + job.limit_s))
            planned[seq] = (t + job.limit_s, job.need)
            seq += 1
        del ends[before:]
        if until is not None and until in starts:
            break
        if not events:
            break  # nothing will ever free resources: the rest never fit
        t, done, need, _ = heapq.heappop(events)
        free.cores, free.gpus = free.cores + need.cores, free.gpus + need.gpus
        planned.pop(done, None)
        # everything else ending at the same moment frees together
        while events and events[0][0] <= t:
            _, other, other_need, _ = heapq.heappop(events)
            free.cores, free.gpus = free.cores + other_need.cores, free.gpus + other_need.gpus
            planned.pop(other, None)
    return starts



@dataclass(frozen=True)
class _PassState:
    t: float
    ahead_left: bool  # jobs ahead still waiting after this pass
    free: Pool  # after the pass (backfills included)
    shadow: float  # the blocked head's reserved start
    extra: Pool  # what a job ending after the shadow may still use


class QueuePlan:
    """The queue ahead simulated once; then any new job's EASY start in O(passes).

    A job appended at the end of the queue changes nothing before it starts
    (every pass considers it last), so the passes of the queue without it are
    the passes it would see: it starts at the first pass where, after the jobs
    ahead, it fits and either nothing waits ahead, or it ends before the head's
    reservation, or it fits what is spare past it. Equal to predict_starts(until=it).
    """

    def __init__(self, now: float, total: Pool, running: list[Running], queue: list[Waiting],
                 backfill: bool = True, horizon_s: float = 30 * 86400) -> None:
        self.backfill = backfill
        self.passes: list[_PassState] = []
        used = Need(sum(r.need.cores for r in running), sum(r.need.gpus for r in running))
        free = Pool(max(0, total.cores - used.cores), max(0, total.gpus - used.gpus))
        events: list[tuple[float, int, Need]] = []
        planned: dict[int, tuple[float, Need]] = {}
        seq = 0
        for r in running:
            heapq.heappush(events, (max(r.expected_end, now), seq, r.need))
            planned[seq] = (max(r.planned_end, now), r.need)
            seq += 1
        waiting = list(queue)
        t = now
        nothing = Pool(0, 0)
        while t <= now + horizon_s:
            if not waiting:
                # the queue ahead has all started: a pass only records what is free (no copy of the
                # planned ends, no scheduling; the same pass schedule_pass would give)
                self.passes.append(_PassState(t, False, Pool(free.cores, free.gpus), float("inf"), nothing))
            else:
                seen: dict = {}
                for job in schedule_pass(t, free, list(planned.values()), waiting, backfill, seen):
                    runtime = job.runtime_s if job.runtime_s is not None else job.limit_s
                    heapq.heappush(events, (t + runtime, seq, job.need))
                    planned[seq] = (t + job.limit_s, job.need)
                    seq += 1
                self.passes.append(_PassState(t, bool(waiting), Pool(free.cores, free.gpus),
                                              seen.get("shadow", float("inf")), seen.get("extra", nothing)))
            if not events:
                break
            t, done, need = heapq.heappop(events)
            free.cores, free.gpus = free.cores + need.cores, free.gpus + need.gpus
            planned.pop(done, None)
            while events and events[0][0] <= t:
                _, other, other_need = heapq.heappop(events)
                free.cores, free.gpus = free.cores + other_need.cores, free.gpus + other_need.gpus
                planned.pop(other, None)

    def start(self, need: Need, limit_s: float, at: float = 0.0) -> float | None:
        """The new job's start. ``at``: asked later, with nothing changed since the plan
        was made (nothing ended, started or arrived), the passes before ``at`` are
        the one now, whose state still holds."""
        for p in self.passes:
            if not need.fits(p.free.cores, p.free.gpus):
                continue
            t = max(p.t, at)
            if not p.ahead_left:
                return t
            if self.backfill and (t + limit_s <= p.shadow or need.fits(p.extra.cores, p.extra.gpus)):
                return t
        return None
