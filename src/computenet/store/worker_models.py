"""Tables of the background workers: one lease per task (who runs it, until when, how it went)
and, when [workers] record_runs is on, a row per run. Re-exported by store.models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base
from .types import UTCDateTime


class WorkerLease(Base):
    """A background task (a cluster's poller, delivery, enforcement...) and the process that may run
    it until expires_at. A holder renews it while alive; a lapsed lease is anyone's to claim, and
    fence grows by one on every change of hands (a run checks it before it starts)."""

    __tablename__ = "worker_leases"

    task: Mapped[str] = mapped_column(String(120), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(120))  # host:pid:nonce of the process
    fence: Mapped[int] = mapped_column(Integer, default=0)
    acquired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    interval_s: Mapped[float] = mapped_column(Float, default=0.0)  # how often it is due (for the lag)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_duration_s: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WorkerRun(Base):
    """One run of a task by a holder (kept only with [workers] record_runs: tests and audits read it
    to prove that no two processes ran a task at the same time)."""

    __tablename__ = "worker_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String(120), index=True)
    holder: Mapped[str] = mapped_column(String(120))
    fence: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ok: Mapped[bool | None] = mapped_column()
