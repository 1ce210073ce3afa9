"""Tables of the application centre and the file service: published apps, uploads in
progress, and where each workspace file came from. Re-exported by store.models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base
from .types import UTCDateTime, utcnow


class App(Base):
    """One version of an application in the catalogue (built-ins live in the package, not here).

    scope: platform (an operator's), tenant (private to one tenant), vendor (an ISV's,
    shown to everyone once an operator approves it). The spec is stored as validated.
    """

    __tablename__ = "apps"
    __table_args__ = (UniqueConstraint("namespace", "name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "" for apps everyone may see once approved; "tenant:<id>" for a tenant's own
    namespace: Mapped[str] = mapped_column(String(32), default="")
    name: Mapped[str] = mapped_column(String(48))
    version: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(8))  # platform | tenant | vendor
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    publisher_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(10), default="approved")  # pending | approved | rejected | withdrawn
    spec: Mapped[dict] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(Text)  # the YAML as uploaded
    review_note: Mapped[str] = mapped_column(Text, default="")
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Upload(Base):
    """A resumable upload into a workspace; its chunks live on disk (files/uploads.py)."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    workspace: Mapped[str] = mapped_column(String(80))  # user:<name> | project:<account>
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    chunk_size: Mapped[int] = mapped_column(Integer)
    overwrite: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FileRecord(Base):
    """Where a workspace file came from (an upload, or job N's output on a cluster) and its checksum."""

    __tablename__ = "file_records"
    __table_args__ = (UniqueConstraint("workspace", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace: Mapped[str] = mapped_column(String(80))
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(8))  # upload | job
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    cluster: Mapped[str | None] = mapped_column(String(64))
    remote_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
