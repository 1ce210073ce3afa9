"""Per-job time series from the sampling agent (re-exported by store.models). Not money: floats are fine."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base


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
