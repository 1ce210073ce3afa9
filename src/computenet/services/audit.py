"""The audit log: one row per admin action or person-started money movement,
written in the same transaction as the change itself (no change without its row)."""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store.models import AuditEvent


@dataclass(frozen=True)
class Who:
    actor: str
    source: str

    @staticmethod
    def cli() -> "Who":
        """An operator at the server's shell."""
        user = getpass.getuser()
        return Who(f"{user}@cli", f"cli {user}@{socket.gethostname()}")

    @staticmethod
    def api(user_name: str, client: str | None) -> "Who":
        return Who(user_name, f"api {client or 'unknown'}")


SYSTEM = Who("system", "service")


def record(session: Session, who: Who, action: str, target: str, **detail: object) -> AuditEvent:
    event = AuditEvent(actor=who.actor[:64], source=who.source[:128], action=action, target=target[:128],
                       detail={k: (str(v) if not isinstance(v, (int, str, bool, type(None), list, dict)) else v)
                               for k, v in detail.items()})
    session.add(event)
    session.flush()
    return event


def events(session: Session, limit: int = 100, action: str | None = None, target: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(max(1, min(limit, 10_000)))
    if action:
        query = query.where(AuditEvent.action == action)
    if target:
        query = query.where(AuditEvent.target == target)
    return list(session.scalars(query))


def events_before(session: Session, before: int | None, limit: int = 50, action: str | None = None,
                  target: str | None = None) -> list[AuditEvent]:
    """A page of events, newest first, older than the event ``before`` (keyset: no OFFSET scans)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(max(1, min(limit, 1000)))
    if before is not None:
        query = query.where(AuditEvent.id < before)
    if action:
        query = query.where(AuditEvent.action == action)
    if target:
        query = query.where(AuditEvent.target == target)
    return list(session.scalars(query))
