"""Where and when the synthetic year's jobs ran: the simulator's EASY engine (sim/engine.py)
places them on their partitions, so no partition ever runs more cores or cards than it has.

Each partition is one simulated cluster (its nodes x cores and cards); every job
queues on the partition it was drawn for and starts when EASY backfilling starts
it. A job that would end (and be settled) after the year's end was submitted
earlier, or ran on another partition of its product line, or its partition was
too small and grows: the placement is run again until every job ends in the year
(see ``place``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..sim.engine import SimCluster, simulate
from ..sim.trace import Trace, TraceJob

ROUNDS = 8  # placements at most
MOVING_BACK_ROUNDS = 2  # first, late jobs were only submitted earlier
GROWING_ROUNDS = 2  # last, partitions still late get more nodes


class SeedPlacementError(ValueError):
    """The network cannot run the year's jobs within the year."""


@dataclass
class Placed:
    submit: np.ndarray
    start: np.ndarray
    partition: np.ndarray  # a late job may have moved to another partition of its product line
    nodes: np.ndarray  # per partition: a partition too small for its busiest weeks has grown


@dataclass
class FixedPartition:
    """The simulator's routing policy for a year whose jobs already know their partition."""

    partition: np.ndarray
    name: str = "seed"

    def choose(self, job: TraceJob, now: float, states) -> int:
        return int(self.partition[job.id])


def _place_once(submit, elapsed, limit_s, cores, gpus, partition, capacity, progress) -> np.ndarray:
    order = np.argsort(submit, kind="stable")
    jobs = [TraceJob(id=int(i), submit=float(submit[i]), run=float(elapsed[i]), cores=int(cores[i]),
                     estimate=float(limit_s[i]), gpus=int(gpus[i])) for i in order.tolist()]
    clusters = [SimCluster(f"p{k}", int(c), int(g)) for k, (c, g) in enumerate(capacity)]
    result = simulate(Trace("seed", jobs, max(int(c) for c, _ in capacity)), clusters, FixedPartition(partition),
                      progress=progress, sample_every=float("inf"))
    start = np.full(len(submit), -1, dtype=np.int64)
    for r in result.results:
        start[r.job.id] = int(r.start)
    if (start < 0).any():  # a job larger than its partition would wait forever: sizing prevents it
        raise SeedPlacementError(f"{int((start < 0).sum())} jobs never started: a partition is smaller than a job")
    return start


def place(submit: np.ndarray, elapsed: np.ndarray, limit_s: np.ndarray, cores: np.ndarray, gpus: np.ndarray,
          partition: np.ndarray, nodes: np.ndarray, node_shape: list[tuple[int, int]], line_of: np.ndarray,
          year: tuple[int, int], settle_delay: np.ndarray, progress=None) -> Placed:
    """Every job starts when EASY starts it on its partition of ``nodes[p]`` nodes of
    ``node_shape[p]`` (cores, cards) and ends, with its settlement delay, within ``year``
    ([start, end) epoch seconds). A job that would overrun the year was submitted earlier
    (twice its overrun: the queue it meets earlier is shorter); one still late after that ran
    on the least loaded other partition of its product line where it fits, as the router would
    send it; a partition still late in the last rounds was too small for its busiest weeks and
    gets more nodes (5 %, at least one)."""
    year_start, year_end = year
    submit = submit.astype(np.int64).copy()
    partition = partition.copy()
    nodes = np.asarray(nodes, dtype=np.int64).copy()
    shape = np.asarray(node_shape, dtype=np.int64).reshape(-1, 2)
    for round_ in range(ROUNDS):
        capacity = [(int(k) * int(c), int(k) * int(g)) for k, (c, g) in zip(nodes, shape)]
        start = _place_once(submit, elapsed, limit_s, cores, gpus, partition, capacity, progress)
        over = start + elapsed + settle_delay - (year_end - 1)
        late = over > 0
        if not late.any():
            return Placed(submit, start, partition, nodes)
        if round_ >= ROUNDS - GROWING_ROUNDS:
            grown = np.unique(partition[late])
            nodes[grown] += np.maximum(nodes[grown] // 20, 1)
        elif round_ >= MOVING_BACK_ROUNDS:
            _move_elsewhere(np.flatnonzero(late), partition, cores, gpus, elapsed, nodes, shape, line_of)
        submit[late] = np.maximum(submit[late] - 2 * over[late] - 3600, year_start)
    raise SeedPlacementError("the partitions cannot run the year's jobs within the year: "
                             f"{int(late.sum())} jobs still end after it")


def _move_elsewhere(late, partition, cores, gpus, elapsed, nodes, shape, line_of) -> None:
    """Each late job to the partition of its product line with the least work per capacity that it fits."""
    units = np.where(shape[partition, 1] > 0, gpus, cores) * elapsed
    load = np.bincount(partition, weights=units, minlength=len(nodes)) / np.maximum(
        nodes * np.where(shape[:, 1] > 0, shape[:, 1], shape[:, 0]), 1)
    for job in late:
        here = partition[job]
        fits = ((line_of == line_of[here]) & (nodes * shape[:, 0] >= cores[job]) & (nodes * shape[:, 1] >= gpus[job]))
        fits[here] = False
        if fits.any():
            partition[job] = np.flatnonzero(fits)[np.argmin(load[fits])]


def peak_use(start: np.ndarray, end: np.ndarray, units: np.ndarray) -> int:
    """The most units (cores or cards) running at once, from the jobs' own start and end times:
    a job holds its units on [start, end); at an instant where one ends and another starts,
    the ending one has let go."""
    if len(start) == 0:
        return 0
    times = np.concatenate([start, end])
    delta = np.concatenate([units, -units])
    order = np.lexsort((delta, times))  # at equal times the releases (negative) come first
    return int(np.cumsum(delta[order]).max(initial=0))
