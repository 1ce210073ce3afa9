"""Replay a short trace on a real Slurm cluster, time-compressed, and compare the
simulator's start times with Slurm's.

Each trace job becomes a job that sleeps for its compressed run time, with its
compressed time limit (whole minutes, as Slurm wants them) and its cores scaled
to the cluster. The simulator gets exactly that compressed workload, so both
sides schedule the same jobs; the report is how far apart the starts are.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from ..clusters.base import ClusterAdapter, SubmitRequest
from ..domain.resources import JobOptions, JobSpec, ResourceRequest
from ..domain.states import JobState
from .engine import SimCluster, simulate
from .policies import RoundRobin
from .trace import Trace, TraceJob


@dataclass(frozen=True)
class ReplayJob:
    trace_id: int
    submit_s: float  # compressed, from the replay's start
    run_s: float
    limit_minutes: int
    cores: int


@dataclass(frozen=True)
class ReplayRow:
    job: ReplayJob
    native_id: str
    actual_start_s: float | None
    simulated_start_s: float

    @property
    def error_s(self) -> float | None:
        return None if self.actual_start_s is None else self.actual_start_s - self.simulated_start_s


@dataclass(frozen=True)
class ReplayReport:
    rows: list[ReplayRow]
    compression: float

    def errors(self) -> list[float]:
        return [abs(r.error_s) for r in self.rows if r.error_s is not None]

    def summary(self) -> dict:
        errors = self.errors()
        waits = [r.actual_start_s - r.job.submit_s for r in self.rows if r.actual_start_s is not None]
        return {"jobs": len(self.rows), "started": len(errors),
                "mean_abs_error_s": statistics.mean(errors) if errors else None,
                "median_abs_error_s": statistics.median(errors) if errors else None,
                "max_abs_error_s": max(errors) if errors else None,
                "mean_actual_wait_s": statistics.mean(waits) if waits else None}


def compress(trace: Trace, jobs: int, compression: float, cluster_cores: int, max_run_s: float) -> list[ReplayJob]:
    """The first ``jobs`` jobs, times divided by ``compression``, cores scaled to the cluster."""
    scale = cluster_cores / trace.max_cores
    out = []
    for job in trace.jobs[:jobs]:
        run = min(max_run_s, max(1.0, job.run / compression))
        limit = max(1, math.ceil(max(job.estimate / compression, run + 1) / 60))
        out.append(ReplayJob(job.id, job.submit / compression, run, limit,
                             max(1, min(cluster_cores, round(job.cores * scale)))))
    return out


def simulate_replay(jobs: list[ReplayJob], cluster_cores: int) -> dict[int, float]:
    trace = Trace("replay", [TraceJob(j.trace_id, j.submit_s, j.run_s, j.cores, j.limit_minutes * 60.0)
                             for j in jobs], cluster_cores)
    result = simulate(trace, [SimCluster("replay", cluster_cores)], RoundRobin())
    return {r.job.id: r.start for r in result.results}


def replay(adapter: ClusterAdapter, jobs: list[ReplayJob], cluster_cores: int, partition: str, workdir: str,
           compression: float, timeout_s: float = 600.0) -> ReplayReport:
    """Submit at the compressed times, wait until all have started (or the timeout), compare."""
    predicted = simulate_replay(jobs, cluster_cores)
    t0 = time.monotonic()
    wall0 = datetime.now(timezone.utc)
    natives: dict[int, str] = {}
    for job in sorted(jobs, key=lambda j: j.submit_s):
        delay = job.submit_s - (time.monotonic() - t0)
        if delay > 0:
            time.sleep(delay)
        spec = JobSpec(resources=ResourceRequest(cpus_per_task=job.cores, time_limit_minutes=job.limit_minutes,
                                                 partition=partition), options=JobOptions(job_name=f"replay-{job.trace_id}"))
        request = SubmitRequest(script=f"#!/bin/bash\nsleep {job.run_s:.1f}\n", spec=spec,
                                job_name=f"replay-{job.trace_id}", workdir=workdir, output="/dev/null",
                                error="/dev/null", comment=f"replay:{job.trace_id}")
        natives[job.trace_id] = adapter.submit(request)
    starts: dict[str, datetime] = {}
    deadline = time.monotonic() + timeout_s
    while len(starts) < len(natives) and time.monotonic() < deadline:
        for native, status in adapter.status([n for n in natives.values() if n not in starts]).items():
            if status.start is not None:
                starts[native] = status.start
            elif status.state.is_terminal and status.state != JobState.COMPLETED:
                starts[native] = None  # cancelled or failed before starting: no start to compare
        time.sleep(0.5)
    rows = []
    for job in jobs:
        native = natives[job.trace_id]
        start = starts.get(native)
        actual = None if start is None else (start - wall0).total_seconds()
        rows.append(ReplayRow(job, native, actual, predicted[job.trace_id]))
    return ReplayReport(rows, compression)
