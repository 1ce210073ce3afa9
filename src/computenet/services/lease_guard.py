"""What a background task's run_once() is handed to ask "do I still hold my lease?" before an
effect that leaves the process and cannot be taken back (a webhook sent, a job cancelled on one
cluster and submitted on another, an event published).

The worker runner (workers/) makes the real one, bound to the lease's fence; services only see
this small interface, so they do not import workers/ (layering). A run that finds its lease gone
stops where it is: the new holder does the rest. The check narrows the window a stalled process
(SIGSTOP, a long GC pause) has to act after a takeover to the time between the check and the
effect; whatever must be exact in spite of that window is also made idempotent where it lands
(a delivery id the receiver drops repeats of, a re-route claimed in the job's row).
"""

from __future__ import annotations

from typing import Protocol


class LeaseLost(Exception):
    """The task's lease lapsed or another process holds it now: this run stops."""


class LeaseGuard(Protocol):
    def check(self) -> None:
        """Return if the lease is still this run's (and extend it); else raise LeaseLost."""


class _Unguarded:
    """A run outside any lease (`--role all` on SQLite, tests, an admin's one-off pass)."""

    def check(self) -> None:
        return None


UNGUARDED: LeaseGuard = _Unguarded()
