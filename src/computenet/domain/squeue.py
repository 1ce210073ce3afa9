"""squeue's vocabulary: compact state codes and state lists as users type them after -t.

`squeue -t PD,R`, `squeue -t pending,running` and `sacct -s CD` all name states; the platform's
JobState names are Slurm's long names, so both forms map onto them here.
"""

from __future__ import annotations

from .states import JobState, TERMINAL_STATES

# squeue's compact codes (man squeue, JOB STATE CODES); SUBMITTING and LOST are the platform's own
COMPACT = {
    "PD": JobState.PENDING, "R": JobState.RUNNING, "S": JobState.SUSPENDED, "CG": JobState.COMPLETING,
    "CD": JobState.COMPLETED, "F": JobState.FAILED, "CA": JobState.CANCELLED, "TO": JobState.TIMEOUT,
    "NF": JobState.NODE_FAIL, "OOM": JobState.OUT_OF_MEMORY, "BF": JobState.BOOT_FAIL,
    "DL": JobState.DEADLINE, "PR": JobState.PREEMPTED, "SB": JobState.SUBMITTING, "LO": JobState.LOST,
    "UN": JobState.UNKNOWN,
}
CODE_OF = {state: code for code, state in COMPACT.items()}
# squeue -t all; and the platform's "active"/"ended" (what the portal's list offers)
_GROUPS = {
    "ALL": frozenset(JobState),
    "ACTIVE": frozenset(JobState) - TERMINAL_STATES,
    "ENDED": TERMINAL_STATES,
}


def parse_states(text: str) -> frozenset[JobState]:
    """'PD,R' or 'pending,running' or 'all' -> the states; ValueError names the word it does not know."""
    found: set[JobState] = set()
    for word in (w.strip().upper() for w in text.split(",")):
        if not word:
            continue
        if word in _GROUPS:
            found |= _GROUPS[word]
        elif word in COMPACT:
            found.add(COMPACT[word])
        else:
            try:
                found.add(JobState(word))
            except ValueError:
                raise ValueError(f"unknown state {word!r} (use squeue's codes like PD,R or names like "
                                 f"PENDING,RUNNING)") from None
    if not found:
        raise ValueError("no state given")
    return frozenset(found)


def compact(state: str) -> str:
    """The squeue %t code of a state name."""
    try:
        return CODE_OF[JobState(state)]
    except (ValueError, KeyError):
        return state[:2]
