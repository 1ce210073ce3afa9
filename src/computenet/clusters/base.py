"""The one protocol every cluster adapter implements, and the shapes it returns.

Adapters talk to a scheduler and return plain values; they never touch the
database. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Protocol, Sequence, runtime_checkable

from ..domain.resources import JobSpec
from ..domain.states import JobState


class ClusterError(RuntimeError):
    """The cluster could not be reached or answered nonsense (retry later)."""


class SubmitRejected(ValueError):
    """The scheduler refused the job for a reason the user can fix."""


@dataclass(frozen=True)
class SubmitRequest:
    """Everything an adapter needs to submit one job; paths are resolved."""

    script: str
    spec: JobSpec
    job_name: str
    workdir: str
    output: str
    error: str
    comment: str  # the platform tag "computenet:<job id>.<nonce>" (domain/sbatch.platform_tag): orphans are matched by it
    script_args: tuple[str, ...] = ()
    dependency: str | None = None  # in native ids
    environment: dict[str, str] = field(default_factory=dict)
    run_as: str | None = None  # the user's Unix identity on the cluster (None: the service account)
    space: str | None = None  # the user's space there: HOME of a job run as the service; made for run_as if missing


@dataclass(frozen=True)
class JobStatus:
    native_id: str
    state: JobState
    raw_state: str
    reason: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    exit_code: int | None = None
    node_list: str | None = None  # where it runs or ran, as Slurm writes it ("c[1-2]"); None: not placed or not said


@dataclass(frozen=True)
class QueueEntry:
    """A job in a cluster's queue, as the router's wait prediction needs it."""

    native_id: str
    partition: str
    state: JobState  # PENDING, RUNNING, SUSPENDED (COMPLETING counts as RUNNING)
    cpus: int  # in all
    nodes: int
    gpus: int  # in all
    time_limit_s: int | None  # None: unlimited
    elapsed_s: int
    priority: int
    user: str | None = None
    reason: str | None = None
    node_names: tuple[str, ...] = ()  # where a running job runs


@dataclass(frozen=True)
class UsageRecord:
    """One accounting row, in the shape sacct gives (one per array task)."""

    cluster: str
    record_id: str  # unique per job/task on the cluster (JobIDRaw)
    native_id: str  # the job the user submitted (array base id for tasks)
    submit: datetime
    state: JobState
    raw_state: str
    start: datetime | None
    end: datetime | None
    elapsed_seconds: int
    cpus: int
    mem_mb: int
    gpus: int
    gpu_type: str | None
    nodes: int
    exit_code: int | None
    signal: int | None = None
    partition: str | None = None
    account: str | None = None
    user: str | None = None
    comment: str | None = None
    job_name: str | None = None
    time_limit_minutes: int | None = None
    alloc_tres: str = ""
    node_list: str | None = None  # where it ran, as the scheduler writes it; None: not placed or not said
    # a run that ended because the job went back to the queue (Slurm's REQUEUED row): the run is
    # over and is charged, the job is not (its state says PENDING); the next run has a record of its own
    requeued: bool = False

    @property
    def is_complete(self) -> bool:
        """sacct shows a just-ended job for seconds as a stub (JobName
        "allocation", no partition, no TRES), sometimes already in its final
        state: charging that stub would charge nothing and lose the charge."""
        return bool(self.partition)

    @property
    def is_final(self) -> bool:
        """The job's last record, ended."""
        return self.is_complete and self.state.is_terminal and self.end is not None

    @property
    def run_ended(self) -> bool:
        """The run this record stands for is over, so it can be charged: the job's final record,
        or an earlier run of a requeued job."""
        return self.is_final or (self.is_complete and self.requeued and self.end is not None)


@dataclass(frozen=True)
class StepUsage:
    """What one running step has used so far, over all its tasks and nodes (Slurm's sstat)."""

    native_id: str  # the job (array tasks: base_task)
    step: str  # "batch", "extern", "0", "1"...
    ntasks: int
    nodes: tuple[str, ...]
    cpu_seconds: float  # summed over the step's tasks
    rss_bytes: int  # the tasks' peak resident memory, summed (an upper bound of the step's peak)
    read_bytes: int
    write_bytes: int


@dataclass(frozen=True)
class PartitionInfo:
    name: str
    nodes: int
    cores_per_node: int
    mem_per_node_mb: int
    gpus_per_node: int = 0
    gpu_type: str | None = None
    max_time_minutes: int | None = None  # None: unlimited
    default_time_minutes: int | None = None
    is_default: bool = False
    available: bool = True
    features: tuple[str, ...] = ()
    node_names: tuple[str, ...] = ()  # partitions may share nodes (debug inside cpu)

    @property
    def total_cores(self) -> int:
        return self.nodes * self.cores_per_node

    @property
    def total_gpus(self) -> int:
        return self.nodes * self.gpus_per_node


class HealthState(str, Enum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Health:
    state: HealthState
    detail: str = ""
    latency_ms: float | None = None


@runtime_checkable
class ClusterAdapter(Protocol):
    name: str

    def submit(self, request: SubmitRequest) -> str: ...

    def status(self, native_ids: Sequence[str]) -> dict[str, JobStatus]: ...

    def cancel(self, native_id: str) -> None: ...

    def accounting(self, since: datetime, native_ids: Sequence[str] | None = None) -> list[UsageRecord]: ...

    def partitions(self) -> list[PartitionInfo]: ...

    def health(self) -> Health: ...

    # optional capabilities (hasattr): queue(), pause(id), resume(id), requeue(id) (else requeue_refusal: why not);
    # Slurm's also account_limits(), set_account_blocked() and step_usage(ids)


def aggregate_state(states: Sequence[JobState]) -> JobState:
    """One state for a job made of several parts (array tasks)."""
    if not states:
        return JobState.UNKNOWN
    for live in (JobState.RUNNING, JobState.COMPLETING, JobState.SUSPENDED, JobState.PENDING, JobState.UNKNOWN):
        if live in states:
            if live == JobState.PENDING and any(s in (JobState.RUNNING,) for s in states):
                return JobState.RUNNING
            return live
    # all ended: report the worst ending so a failed task is not hidden
    for bad in (
        JobState.NODE_FAIL, JobState.BOOT_FAIL, JobState.OUT_OF_MEMORY, JobState.FAILED,
        JobState.TIMEOUT, JobState.DEADLINE, JobState.PREEMPTED, JobState.CANCELLED,
    ):
        if bad in states:
            return bad
    return JobState.COMPLETED
