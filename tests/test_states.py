"""The one JobState enum and the only Slurm-state table."""

import pytest

from computenet.domain.states import SLURM_STATES, TERMINAL_STATES, InvalidTransition, JobState, from_slurm, transition

# every state squeue/sacct can print (slurm/src/common/slurm_protocol_defs.c,
# job_state_string and job_state_string_compact), with what it means to us
EXPECTED = {
    "PENDING": ("PD", JobState.PENDING),
    "RUNNING": ("R", JobState.RUNNING),
    "SUSPENDED": ("S", JobState.SUSPENDED),
    "COMPLETING": ("CG", JobState.COMPLETING),
    "COMPLETED": ("CD", JobState.COMPLETED),
    "CANCELLED": ("CA", JobState.CANCELLED),
    "FAILED": ("F", JobState.FAILED),
    "TIMEOUT": ("TO", JobState.TIMEOUT),
    "NODE_FAIL": ("NF", JobState.NODE_FAIL),
    "PREEMPTED": ("PR", JobState.PREEMPTED),
    "OUT_OF_MEMORY": ("OOM", JobState.OUT_OF_MEMORY),
    "BOOT_FAIL": ("BF", JobState.BOOT_FAIL),
    "DEADLINE": ("DL", JobState.DEADLINE),
    "REQUEUED": ("RQ", JobState.PENDING),
    "REQUEUE_HOLD": ("RH", JobState.PENDING),
    "REQUEUE_FED": ("RF", JobState.PENDING),
    "RESIZING": ("RS", JobState.RUNNING),
    "REVOKED": ("RV", JobState.CANCELLED),
    "SIGNALING": ("SI", JobState.RUNNING),
    "SPECIAL_EXIT": ("SE", JobState.FAILED),
    "STAGE_OUT": ("SO", JobState.COMPLETING),
    "STOPPED": ("ST", JobState.SUSPENDED),
    "CONFIGURING": ("CF", JobState.RUNNING),
    "RESV_DEL_HOLD": ("RD", JobState.PENDING),
}


@pytest.mark.parametrize("long_name", sorted(EXPECTED))
def test_every_slurm_state_long_and_short(long_name):
    short, state = EXPECTED[long_name]
    assert from_slurm(long_name) is state
    assert from_slurm(short) is state
    assert from_slurm(long_name.lower()) is state


def test_table_has_nothing_untested():
    tested = set(EXPECTED) | {short for short, _ in EXPECTED.values()}
    assert set(SLURM_STATES) == tested


@pytest.mark.parametrize("raw,state", [
    ("CANCELLED by 0", JobState.CANCELLED),
    ("COMPLETING+", JobState.COMPLETING),
    ("  RUNNING  ", JobState.RUNNING),
    ("PENDING,REQUEUED", JobState.PENDING),
])
def test_flags_and_decorations_are_stripped(raw, state):
    assert from_slurm(raw) is state


@pytest.mark.parametrize("raw", ["", "EXPLODED", "RUN"])
def test_unknown_state_is_an_error(raw):
    with pytest.raises(ValueError):
        from_slurm(raw)


def test_terminal_states():
    assert {s for s in JobState if s.is_terminal} == set(TERMINAL_STATES)
    for s in (JobState.PENDING, JobState.RUNNING, JobState.SUSPENDED, JobState.COMPLETING,
              JobState.SUBMITTING, JobState.UNKNOWN):
        assert not s.is_terminal and s.is_active


def test_transitions():
    assert transition(JobState.PENDING, JobState.RUNNING) is JobState.RUNNING
    assert transition(JobState.PENDING, JobState.COMPLETED) is JobState.COMPLETED  # short job, unseen RUNNING
    assert transition(JobState.RUNNING, JobState.PENDING) is JobState.PENDING  # requeue
    assert transition(JobState.SUBMITTING, JobState.PENDING) is JobState.PENDING
    for end in TERMINAL_STATES:
        for other in JobState:
            if other != end:
                with pytest.raises(InvalidTransition):
                    transition(end, other)
    with pytest.raises(InvalidTransition):
        transition(JobState.RUNNING, JobState.SUBMITTING)
