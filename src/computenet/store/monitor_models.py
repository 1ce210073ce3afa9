"""Per-job time series from the sampling agent (re-exported by store.models). Not money: floats are fine."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base
from .types import Money, UTCDateTime


class JobSample(Base):
    """One sample of a job's processes: cumulative CPU seconds and I/O, cores in use, memory, GPUs."""

    __tablename__ = "job_samples"
    __table_args__ = (UniqueConstraint("job_id", "t"),)  # ingesting the same file twice adds nothing

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    t: Mapped[float] = mapped_column(Float)  # unix seconds
    seq: Mapped[int] = mapped_column(Integer)
    cpu_s: Mapped[float] = mapped_column(Float)
    cores: Mapped[float] = mapped_column(Float)
    rss: Mapped[int] = mapped_column(BigInteger)
    read_bytes: Mapped[int] = mapped_column(BigInteger)
    write_bytes: Mapped[int] = mapped_column(BigInteger)
    nproc: Mapped[int] = mapped_column(Integer)
    nthreads: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[list | None] = mapped_column(JSON)


class JobStepSample(Base):
    """What Slurm's sstat said one running step had used so far (every node, every task)."""

    __tablename__ = "job_step_samples"
    __table_args__ = (UniqueConstraint("job_id", "t", "step"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    t: Mapped[float] = mapped_column(Float)  # unix seconds, control-plane clock
    step: Mapped[str] = mapped_column(String(32))
    ntasks: Mapped[int] = mapped_column(Integer)
    nodes: Mapped[int] = mapped_column(Integer)
    cpu_s: Mapped[float] = mapped_column(Float)
    rss: Mapped[int] = mapped_column(BigInteger)
    read_bytes: Mapped[int] = mapped_column(BigInteger)
    write_bytes: Mapped[int] = mapped_column(BigInteger)


class JobProfile(Base):
    """What one ended, monitored job did, in a line: the application characteristics database's rows."""

    __tablename__ = "job_profiles"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    app: Mapped[str] = mapped_column(String(200), index=True)  # the app-centre name, else the job's name
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"))
    cores: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer)
    runtime_s: Mapped[float] = mapped_column(Float)
    time_limit_s: Mapped[int | None] = mapped_column(Integer)
    cpu_efficiency: Mapped[float | None] = mapped_column(Float)
    peak_rss: Mapped[int] = mapped_column(BigInteger)
    gpu_utilisation: Mapped[float | None] = mapped_column(Float)
    price: Mapped[Decimal] = mapped_column(Money)
    wasted: Mapped[Decimal] = mapped_column(Money)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # memory asked for on all nodes (None: not said, or profiled before it was kept) and each
    # finding's code and cost ([{"code", "wasted"}]): what the efficiency report prices and ranks
    mem_requested_bytes: Mapped[int | None] = mapped_column(BigInteger)
    findings: Mapped[list | None] = mapped_column(JSON)
