"""Job states: the one enum, its transitions, and the only Slurm-state table.

Every adapter maps its native states through :func:`from_slurm` (the local
executor reports Slurm state names too), so the rest of the platform sees a
single vocabulary.
"""

from __future__ import annotations

from enum import Enum


class JobState(str, Enum):
    SUBMITTING = "SUBMITTING"  # row exists, scheduler call in flight
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    COMPLETING = "COMPLETING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    PREEMPTED = "PREEMPTED"
    UNKNOWN = "UNKNOWN"  # scheduler no longer knows the job and no record yet
    # the scheduler forgot the job (e.g. a controller that lost its state): out of its
    # queue with accounting that never ends; a platform state, Slurm never prints it
    LOST = "LOST"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_active(self) -> bool:
        return not self.is_terminal

    def can_become(self, new: "JobState") -> bool:
        return new == self or new in _TRANSITIONS[self]


TERMINAL_STATES = frozenset(
    {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.TIMEOUT,
        JobState.NODE_FAIL,
        JobState.OUT_OF_MEMORY,
        JobState.BOOT_FAIL,
        JobState.DEADLINE,
        JobState.PREEMPTED,
        JobState.LOST,
    }
)

# still on its nodes: its agent may still send samples, its GPUs may sit idle (values, for queries)
ON_NODES = (JobState.RUNNING.value, JobState.COMPLETING.value, JobState.SUSPENDED.value)

_ENDINGS = frozenset(TERMINAL_STATES)
_LIVE = frozenset({JobState.PENDING, JobState.RUNNING, JobState.SUSPENDED, JobState.COMPLETING})

# Slurm can skip states between polls (a short job goes PENDING -> COMPLETED
# unseen), and requeue sends a running job back to PENDING, so live states
# may move among themselves and to any ending. UNKNOWN is what we say while
# a job is out of squeue but not yet in sacct; it resolves either way.
_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.SUBMITTING: frozenset({JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN}) | _ENDINGS,
    JobState.UNKNOWN: _LIVE | _ENDINGS,
    **{s: (_LIVE | _ENDINGS | {JobState.UNKNOWN}) for s in _LIVE},
    # Terminal means terminal: a requeued job never ended (RUNNING -> PENDING above); each of
    # its runs is an accounting record of its own (RUN_REQUEUED below), charged by the poller.
    **{s: frozenset() for s in TERMINAL_STATES},
}


# An accounting record's state is a JobState value, or this: a run that ended because its job went
# back to the queue (sacct --duplicates shows it as REQUEUED). The run is over and is charged; the
# job goes on, so this is no job state (Slurm's job is PENDING then) and is not in JobState.
RUN_REQUEUED = "REQUEUED"
# the record states whose run is over: each such record is rated once
RUN_ENDED_STATES = frozenset({s.value for s in TERMINAL_STATES} | {RUN_REQUEUED})


class InvalidTransition(ValueError):
    pass


def transition(current: JobState, new: JobState) -> JobState:
    if not current.can_become(new):
        raise InvalidTransition(f"job state cannot go from {current.value} to {new.value}")
    return new


# The only table that maps Slurm job states (long names and the short codes
# squeue prints with %t) onto JobState. Flags that Slurm appends ("CANCELLED by
# 0", "COMPLETING+") are stripped by from_slurm before the lookup.
SLURM_STATES: dict[str, JobState] = {
    "PENDING": JobState.PENDING,
    "PD": JobState.PENDING,
    "REQUEUED": JobState.PENDING,  # back in the queue
    "RQ": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING,
    "RH": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING,
    "RF": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "RD": JobState.PENDING,
    "CONFIGURING": JobState.RUNNING,  # nodes booting for a started job
    "CF": JobState.RUNNING,
    "RUNNING": JobState.RUNNING,
    "R": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "RS": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "SI": JobState.RUNNING,
    "STAGE_OUT": JobState.COMPLETING,
    "SO": JobState.COMPLETING,
    "COMPLETING": JobState.COMPLETING,
    "CG": JobState.COMPLETING,
    "SUSPENDED": JobState.SUSPENDED,
    "S": JobState.SUSPENDED,
    "STOPPED": JobState.SUSPENDED,  # SIGSTOPed, resources still held
    "ST": JobState.SUSPENDED,
    "COMPLETED": JobState.COMPLETED,
    "CD": JobState.COMPLETED,
    "CANCELLED": JobState.CANCELLED,
    "CA": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,  # federation sibling removed
    "RV": JobState.CANCELLED,
    "FAILED": JobState.FAILED,
    "F": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "SE": JobState.FAILED,
    "TIMEOUT": JobState.TIMEOUT,
    "TO": JobState.TIMEOUT,
    "NODE_FAIL": JobState.NODE_FAIL,
    "NF": JobState.NODE_FAIL,
    "PREEMPTED": JobState.PREEMPTED,
    "PR": JobState.PREEMPTED,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
    "OOM": JobState.OUT_OF_MEMORY,
    "BOOT_FAIL": JobState.BOOT_FAIL,
    "BF": JobState.BOOT_FAIL,
    "DEADLINE": JobState.DEADLINE,
    "DL": JobState.DEADLINE,
}


def from_slurm(raw: str) -> JobState:
    """Map a Slurm state string to JobState.

    Accepts the forms Slurm prints: ``RUNNING``, ``R``, ``CANCELLED by 0``,
    ``COMPLETING+``, ``PENDING,REQUEUED`` style flag lists (the first word is
    the base state). Unknown strings raise, so a new Slurm state is noticed
    rather than silently misreported.
    """
    text = raw.strip().upper()
    if not text:
        raise ValueError("empty Slurm state")
    base = text.split()[0].rstrip("+").split(",")[0]
    try:
        return SLURM_STATES[base]
    except KeyError:
        raise ValueError(f"unknown Slurm job state {raw!r}") from None
