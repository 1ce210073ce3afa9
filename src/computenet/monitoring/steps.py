"""What Slurm's own step accounting (sstat snapshots) says a job used, over every step, task and node.

The agent in the batch script sees the batch shell's processes on the first node only; work
launched with srun or MPI runs under slurmstepd, possibly on other nodes. sstat sees all of it,
so for such jobs the CPU efficiency comes from here. Pure code: snapshots in, figures out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class StepSnapshot:
    t: float  # when it was taken (unix seconds)
    step: str
    ntasks: int
    nodes: int
    cpu_s: float  # cumulative over the step's tasks
    rss: int  # the tasks' peak RSS, summed


@dataclass(frozen=True)
class StepsView:
    steps: int  # distinct steps seen
    tasks: int  # the most tasks seen at once
    nodes: int  # the most nodes one step spanned
    cpu_seconds: float  # every step's CPU, as of its last snapshot
    peak_rss: int  # the highest sum over the steps of one snapshot
    last_t: float
    window_s: float  # from the job's start to the last snapshot
    cpu_efficiency: float | None  # cpu_seconds / (cores x window_s)

    def to_json(self) -> dict:
        return {"steps": self.steps, "tasks": self.tasks, "nodes": self.nodes, "cpu_seconds": self.cpu_seconds,
                "peak_rss": self.peak_rss, "window_s": self.window_s, "cpu_efficiency": self.cpu_efficiency}


def view(snapshots: Iterable[StepSnapshot], cores: int, started_at: float | None) -> StepsView | None:
    """None without snapshots. A step that ended drops out of later snapshots; its last figures
    still count (CPU counters only grow, so a step's CPU is its largest value)."""
    snaps = sorted(snapshots, key=lambda s: (s.t, s.step))
    if not snaps:
        return None
    cpu: dict[str, float] = {}
    by_t: dict[float, list[StepSnapshot]] = {}
    for s in snaps:
        cpu[s.step] = max(cpu.get(s.step, 0.0), s.cpu_s)
        by_t.setdefault(s.t, []).append(s)
    last_t = snaps[-1].t
    window = last_t - started_at if started_at is not None else 0.0
    total = sum(cpu.values())
    return StepsView(
        steps=len(cpu), tasks=max(sum(s.ntasks for s in group) for group in by_t.values()),
        nodes=max(s.nodes for s in snaps), cpu_seconds=total,
        peak_rss=max(sum(s.rss for s in group) for group in by_t.values()), last_t=last_t,
        window_s=max(window, 0.0),
        cpu_efficiency=total / (cores * window) if cores > 0 and window > 0 else None)
