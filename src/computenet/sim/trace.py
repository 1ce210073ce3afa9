"""Workload traces: Standard Workload Format (Parallel Workloads Archive) and the
Alibaba GPU trace (cluster-trace-gpu-v2023, "openb"), as one list of jobs.
"""

from __future__ import annotations

import csv
import gzip
import math
import zlib
from dataclasses import dataclass, replace
from pathlib import Path


class TraceError(ValueError):
    pass


@dataclass(frozen=True)
class TraceJob:
    id: int
    submit: float  # seconds from the trace's start
    run: float  # actual run time, seconds
    cores: int
    estimate: float  # the user's time limit, seconds (what schedulers plan with)
    gpus: int = 0
    user: int = -1
    original_wait: float = -1.0  # what the trace's own system made it wait

    @property
    def core_seconds(self) -> float:
        return self.cores * self.run


@dataclass
class Trace:
    name: str
    jobs: list[TraceJob]
    max_cores: int  # the traced system's size (header MaxProcs, else the largest job)
    skipped: int = 0  # lines without a usable run time or size
    estimated_limits: int = 0  # jobs without a requested time: the run time stands in (perfect estimate)
    overran: int = 0  # jobs that ran longer than they asked (see replayed)


def replayed(jobs: list[TraceJob], kill_at_limit: bool = False) -> list[TraceJob]:
    """The jobs as the simulator runs them, none past its limit. By default a job that
    ran longer than it asked keeps its run time and its limit becomes that run time
    (max(limit, run)), so the trace's work is replayed whole; with ``kill_at_limit`` it
    ends at its limit, as Slurm would end it."""
    if kill_at_limit:
        return [replace(j, run=j.estimate) if j.run > j.estimate else j for j in jobs]
    return [replace(j, estimate=j.run) if j.run > j.estimate else j for j in jobs]


def _open(path: Path):
    return gzip.open(path, "rt", encoding="latin-1") if path.suffix == ".gz" else open(path, encoding="latin-1")


def read_swf(path: str | Path, limit: int | None = None) -> Trace:
    """See _read_swf; a truncated or corrupt .gz is a TraceError, not a traceback."""
    try:
        return _read_swf(path, limit)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise TraceError(f"{Path(path).name}: the gzip file is truncated or corrupt ({exc})") from None


def _read_swf(path: str | Path, limit: int | None = None) -> Trace:
    """SWF: 18 fields per job line, ';' header lines (MaxProcs, MaxNodes). Jobs with no
    run time or no size are skipped and counted; a missing requested time becomes the
    run time, which is counted too, since EASY plans with it. Jobs that ran longer than
    they asked are kept as they are and counted (``overran``); see ``replayed``."""
    path = Path(path)
    jobs: list[TraceJob] = []
    max_procs = max_nodes = 0
    skipped = estimated = overran = 0
    with _open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith(";"):
                key, _, value = line[1:].partition(":")
                if key.strip() in ("MaxProcs", "MaxNodes") and value.strip().isdigit():
                    if key.strip() == "MaxProcs":
                        max_procs = int(value)
                    else:
                        max_nodes = int(value)
                continue
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 18:
                raise TraceError(f"{path.name} line {number}: {len(fields)} fields, SWF has 18")
            try:
                job_id, submit, wait, run, alloc = (int(fields[0]), float(fields[1]), float(fields[2]),
                                                    float(fields[3]), int(fields[4]))
                requested, req_time, user = int(fields[7]), float(fields[8]), int(fields[11])
            except ValueError:
                raise TraceError(f"{path.name} line {number}: a field is not a number") from None
            cores = alloc if alloc > 0 else requested
            if run <= 0 or cores <= 0:
                skipped += 1
                continue
            if req_time <= 0:
                req_time, estimated = run, estimated + 1
            overran += run > max(req_time, 1.0)
            jobs.append(TraceJob(job_id, submit, run, cores, max(req_time, 1.0), 0, user, wait))
            if limit is not None and len(jobs) >= limit:
                break
    if not jobs:
        raise TraceError(f"{path.name}: no usable jobs")
    jobs.sort(key=lambda j: (j.submit, j.id))
    start = jobs[0].submit
    if start:
        jobs = [TraceJob(j.id, j.submit - start, j.run, j.cores, j.estimate, j.gpus, j.user, j.original_wait)
                for j in jobs]
    size = max_procs or max_nodes or max(j.cores for j in jobs)
    return Trace(path.name.split(".swf")[0], jobs, size, skipped, estimated, overran)


def read_alibaba(pods: str | Path, limit: int | None = None) -> Trace:
    """Alibaba openb pods: jobs that were scheduled and deleted; cores from cpu_milli, GPUs
    from num_gpu (a shared fraction of one GPU counts as one). No user estimates exist:
    the run time stands in."""
    path = Path(pods)
    jobs: list[TraceJob] = []
    skipped = 0
    with open(path, newline="") as handle:
        for i, row in enumerate(csv.DictReader(handle)):
            try:
                scheduled = float(row["scheduled_time"]) if row["scheduled_time"] else None
                deleted = float(row["deletion_time"]) if row["deletion_time"] else None
                created = float(row["creation_time"])
                cores = max(1, math.ceil(int(row["cpu_milli"]) / 1000))
                gpus = int(row["num_gpu"])
            except (KeyError, ValueError):
                raise TraceError(f"{path.name} row {i + 2}: not an openb pod row") from None
            if scheduled is None or deleted is None or deleted <= scheduled:
                skipped += 1
                continue
            run = deleted - scheduled
            jobs.append(TraceJob(i, created, run, cores, run, gpus, -1, scheduled - created))
            if limit is not None and len(jobs) >= limit:
                break
    if not jobs:
        raise TraceError(f"{path.name}: no usable pods")
    jobs.sort(key=lambda j: (j.submit, j.id))
    return Trace("alibaba-openb", jobs, max(j.cores for j in jobs), skipped, len(jobs))
