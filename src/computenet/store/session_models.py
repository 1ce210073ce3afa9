"""Interactive sessions (services/sessions): a server started by a job and proxied by the
platform under /sessions/<id>/. Re-exported by store.models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .models import Base, Job, User
from .types import UTCDateTime, utcnow


class InteractiveSession(Base):
    """One session: its job, where its server listens (once reported and checked) and its state.

    state: queued (the job waits) -> starting (the job runs; the server does not answer yet) ->
    running (it answers) -> ended (ended_reason says why). The secret is the server's one-time
    token: the proxy adds it to each request, and nobody is ever shown it.
    """

    __tablename__ = "interactive_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), unique=True)
    app: Mapped[str] = mapped_column(String(48))
    app_version: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(12))  # jupyterlab | shell | desktop
    probe: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(10), default="queued", index=True)
    secret: Mapped[str] = mapped_column(String(64))
    host: Mapped[str | None] = mapped_column(String(255))  # the node's name, as the scheduler gave it
    address: Mapped[str | None] = mapped_column(String(64))  # what the proxy connects to
    port: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the job started
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last proxied request
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(16))  # stopped | idle | timeout | ended | refused
    detail: Mapped[str] = mapped_column(Text, default="")

    owner: Mapped[User] = relationship(foreign_keys=[owner_id])
    job: Mapped[Job | None] = relationship(foreign_keys=[job_id])


class SessionAccess(Base):
    """A way into one session on the session origin (services/sessions/access.py), stored as a hash.

    kind ticket: what the portal's "connect" hands the browser; seconds of life, used once.
    kind cookie: what a ticket is exchanged for, the only credential the session origin accepts;
    bound to the portal sign-in it came from (web_session_id) so signing out ends it too.
    """

    __tablename__ = "session_access"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # ticket | cookie
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    session_id: Mapped[int] = mapped_column(ForeignKey("interactive_sessions.id"), index=True)
    web_session_id: Mapped[int | None] = mapped_column(ForeignKey("web_sessions.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a ticket, when it was exchanged
