"""Leases on background tasks, kept in the worker_leases table (both databases).

Why a lease table and not PostgreSQL advisory locks or a task library: the same code runs on SQLite
(one process holds every lease) and PostgreSQL; a lease lapses a bounded time after its holder's
last heartbeat, whatever the network does (a session advisory lock lives as long as the server
thinks the connection does: hours behind a dead host without TCP keepalives, and not at all through
a transaction-pooling PgBouncer); and holder, expiry and last success sit in a row that
`cnet admin workers` and /metrics read. procrastinate and pgqueuer (maintained, PostgreSQL only)
queue jobs for a pool; our work is a dozen recurring loops that must each run in one place, which
is what a lease says directly.

Times come from the database's clock on PostgreSQL (processes on several hosts compare one clock);
on SQLite every process is on this host.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..services.lease_guard import LeaseLost
from ..store.db import Database
from ..store.models import WorkerLease, WorkerRun
from ..store.types import utcnow


def holder_name() -> str:
    """Who a process is in the lease table: host, pid (to find it) and a nonce (pids are reused)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def db_now(session: Session) -> datetime:
    """The database's clock (PostgreSQL), or this host's (SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.scalar(select(func.timezone("UTC", func.clock_timestamp())))
        return value.replace(tzinfo=utcnow().tzinfo)
    return utcnow()


@dataclass(frozen=True)
class Lease:
    task: str
    holder: str
    fence: int
    expires_at: datetime
    last_started_at: datetime | None
    last_duration_s: float | None


class Leases:
    def __init__(self, db: Database, holder: str, lease_seconds: float = 15.0) -> None:
        self.db = db
        self.holder = holder
        self.ttl = timedelta(seconds=lease_seconds)

    def ensure(self, task: str, interval_s: float) -> None:
        """The task's row exists (a lease nobody holds) and says how often the task is due."""
        with self.db.session() as session:
            row = session.get(WorkerLease, task)
            if row is not None:
                if row.interval_s != interval_s:
                    row.interval_s = interval_s
                return
        try:
            with self.db.session() as session:
                session.add(WorkerLease(task=task, fence=0, interval_s=interval_s, last_error=""))
        except IntegrityError:
            pass  # another process made it first

    def claim(self, task: str) -> Lease | None:
        """Take the task's lease if it is free or lapsed, or renew it if this process holds it.
        None: another live process holds it. One UPDATE, so two claimants cannot both win (the
        second re-reads the row after the first commits and finds it held)."""
        with self.db.session() as session:
            now = db_now(session)
            ours_alive = and_(WorkerLease.holder == self.holder, WorkerLease.expires_at > now)
            lapsed = or_(WorkerLease.holder.is_(None), WorkerLease.expires_at.is_(None), WorkerLease.expires_at <= now)
            result = session.execute(
                update(WorkerLease).where(WorkerLease.task == task, or_(ours_alive, lapsed))
                .values(holder=self.holder, heartbeat_at=now, expires_at=now + self.ttl,
                        fence=case((ours_alive, WorkerLease.fence), else_=WorkerLease.fence + 1),
                        acquired_at=case((ours_alive, WorkerLease.acquired_at), else_=now))
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                return None
            row = session.execute(select(WorkerLease.fence, WorkerLease.expires_at, WorkerLease.last_started_at,
                                         WorkerLease.last_duration_s).where(WorkerLease.task == task)).one()
            return Lease(task, self.holder, row.fence, row.expires_at, row.last_started_at, row.last_duration_s)

    def heartbeat(self) -> int:
        """Extend every live lease this process holds (one statement); the number extended."""
        with self.db.session() as session:
            now = db_now(session)
            result = session.execute(
                update(WorkerLease).where(WorkerLease.holder == self.holder, WorkerLease.expires_at > now)
                .values(heartbeat_at=now, expires_at=now + self.ttl).execution_options(synchronize_session=False))
            return result.rowcount

    def held(self) -> set[str]:
        with self.db.session() as session:
            now = db_now(session)
            return set(session.scalars(select(WorkerLease.task).where(
                WorkerLease.holder == self.holder, WorkerLease.expires_at > now)))

    def release_all(self) -> None:
        """On a clean stop: the leases lapse now, so another worker need not wait for them."""
        with self.db.session() as session:
            now = db_now(session)
            session.execute(update(WorkerLease).where(WorkerLease.holder == self.holder, WorkerLease.expires_at > now)
                            .values(expires_at=now).execution_options(synchronize_session=False))

    def start_run(self, lease: Lease, record: bool) -> int | None:
        """Mark the run started, fenced: only while this tenure's lease is still live. False-y id and
        no write when the lease was lost in between (the caller then does not run)."""
        with self.db.session() as session:
            now = db_now(session)
            result = session.execute(
                update(WorkerLease).where(WorkerLease.task == lease.task, WorkerLease.holder == self.holder,
                                          WorkerLease.fence == lease.fence, WorkerLease.expires_at > now)
                .values(last_started_at=now, heartbeat_at=now, expires_at=now + self.ttl)
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                return None
            if not record:
                return 0
            run = WorkerRun(task=lease.task, holder=self.holder, fence=lease.fence, started_at=now)
            session.add(run)
            session.flush()
            return run.id

    def still_held(self, lease: Lease) -> bool:
        """Is this tenure's lease still live? Renews it when so (the caller is about to act and
        gets a whole lease length to do it in). One UPDATE on the lease's row."""
        with self.db.session() as session:
            now = db_now(session)
            result = session.execute(
                update(WorkerLease).where(WorkerLease.task == lease.task, WorkerLease.holder == self.holder,
                                          WorkerLease.fence == lease.fence, WorkerLease.expires_at > now)
                .values(heartbeat_at=now, expires_at=now + self.ttl).execution_options(synchronize_session=False))
            return result.rowcount == 1

    def guard(self, lease: Lease) -> "FencedGuard":
        return FencedGuard(self, lease)

    def finish_run(self, lease: Lease, run_id: int, duration_s: float, error: str | None) -> bool:
        """Record how the run went. False when the lease had been lost meanwhile (logged by the
        caller: the run's work stood on the task's own idempotency)."""
        with self.db.session() as session:
            now = db_now(session)
            if run_id:
                session.execute(update(WorkerRun).where(WorkerRun.id == run_id)
                                .values(ended_at=now, ok=error is None).execution_options(synchronize_session=False))
            values: dict = {"last_duration_s": duration_s}
            if error is None:
                values["last_success_at"] = now
            else:
                values.update(last_error=error[:2000], last_error_at=now)
            # the outcome is the task's, whoever holds it now; only the timing fields are this run's
            session.execute(update(WorkerLease).where(WorkerLease.task == lease.task).values(**values)
                            .execution_options(synchronize_session=False))
            still = session.scalar(select(WorkerLease.holder).where(
                WorkerLease.task == lease.task, WorkerLease.fence == lease.fence))
            return still == self.holder


class FencedGuard:
    """The LeaseGuard (services/lease_guard.py) a run gets: its lease, by fence number."""

    def __init__(self, leases: Leases, lease: Lease) -> None:
        self.leases = leases
        self.lease = lease

    def check(self) -> None:
        if not self.leases.still_held(self.lease):
            raise LeaseLost(f"task {self.lease.task}: lease (fence {self.lease.fence}) lost by {self.leases.holder}")
