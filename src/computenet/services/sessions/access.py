"""Getting into a session on its own origin: one-time tickets and the cookies they are exchanged for.

The session origin (api/session_origin.py) accepts neither the portal's cookie nor an API token: a
session runs its owner's code, and whatever reaches it could be replayed against the portal. The
owner, signed in to the portal (or holding an API token), asks for a ticket: random, bound to user
and session, stored as a hash, good for `sessions.ticket_seconds` and used once. The session origin
exchanges it for a cookie of that session alone (services it by `check_cookie`), itself bound to the
portal sign-in it came from, so signing out (or being suspended) closes the session's door as well.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ...config import Settings
from ...messages import msg
from ...store.auth_models import WebSession
from ...store.models import InteractiveSession, SessionAccess, User
from ...store.types import utcnow
from ..errors import Conflict, NotFound

COOKIE_HOURS_WITHOUT_SIGN_IN = 12.0  # a cookie from an API client's ticket (no portal sign-in to follow)
PURGE_AFTER = timedelta(days=1)  # spent and expired rows are removed this long after they expire


class AccessRefused(Exception):
    """A ticket or cookie that opens nothing; status is what the session origin answers."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_ticket(session: Session, user: User, session_id: int, settings: Settings,
                 web_session_id: int | None = None, now: datetime | None = None) -> str:
    """A ticket to the user's own running session (anyone else's: not found, as everywhere)."""
    now = now or utcnow()
    row = session.get(InteractiveSession, session_id)
    if row is None or row.owner_id != user.id:
        raise NotFound(msg("no session %(session)s", session=session_id))
    if row.state != "running":
        raise Conflict(msg("session %(session)s is %(state)s, so it cannot be opened", session=session_id,
                           state=row.state))
    session.execute(delete(SessionAccess).where(SessionAccess.expires_at < now - PURGE_AFTER))
    secret = secrets.token_urlsafe(32)
    session.add(SessionAccess(kind="ticket", secret_hash=_digest(secret), user_id=user.id, session_id=session_id,
                              web_session_id=web_session_id, created_at=now,
                              expires_at=now + timedelta(seconds=settings.sessions.ticket_seconds)))
    session.flush()
    return secret


def redeem_ticket(session: Session, ticket: str, session_id: int, settings: Settings,
                  now: datetime | None = None, cookie: bool = True) -> str:
    """The cookie's secret for a good ticket to this session (with cookie=False, a WebSocket's ticket:
    the user's id as text, and no cookie made); the ticket is spent whatever follows."""
    now = now or utcnow()
    row = session.scalar(select(SessionAccess).where(SessionAccess.secret_hash == _digest(ticket or ""),
                                                     SessionAccess.kind == "ticket"))
    if row is None or row.session_id != session_id:
        raise AccessRefused(403, "this link to the session is not valid: open the session from the portal again")
    # spent in one conditional UPDATE: of two requests racing with one ticket, one wins
    spent = session.execute(update(SessionAccess).where(SessionAccess.id == row.id, SessionAccess.used_at.is_(None))
                            .values(used_at=now)).rowcount
    if spent != 1:
        raise AccessRefused(403, "this link to the session was used already: open the session from the portal again")
    if row.expires_at <= now:
        raise AccessRefused(403, "this link to the session has expired: open the session from the portal again")
    _owner_check(session, row, now)
    if not cookie:
        return str(row.user_id)
    if row.web_session_id is not None:
        until = session.get(WebSession, row.web_session_id).expires_at
    else:
        until = now + timedelta(hours=COOKIE_HOURS_WITHOUT_SIGN_IN)
    secret = secrets.token_urlsafe(32)
    session.add(SessionAccess(kind="cookie", secret_hash=_digest(secret), user_id=row.user_id, session_id=session_id,
                              web_session_id=row.web_session_id, created_at=now, expires_at=until))
    session.flush()
    return secret


def check_cookie(session: Session, secret: str, session_id: int, now: datetime | None = None) -> int:
    """The user a session cookie admits to this session, or AccessRefused."""
    now = now or utcnow()
    row = session.scalar(select(SessionAccess).where(SessionAccess.secret_hash == _digest(secret or ""),
                                                     SessionAccess.kind == "cookie"))
    if row is None or row.session_id != session_id:
        raise AccessRefused(401, "open the session from the portal")
    if row.expires_at <= now:
        raise AccessRefused(401, "your way into this session has expired: open it from the portal again")
    _owner_check(session, row, now)
    return row.user_id


def _owner_check(session: Session, row: SessionAccess, now: datetime) -> None:
    user = session.get(User, row.user_id)
    target = session.get(InteractiveSession, row.session_id)
    if target is None or target.owner_id != row.user_id:
        raise AccessRefused(404, f"no session {row.session_id}")
    if user is None or user.status != "active":
        raise AccessRefused(401, "your account cannot open sessions now")
    if row.web_session_id is not None:
        signed_in = session.get(WebSession, row.web_session_id)
        # the portal's idle timeout is not applied: working in the notebook is not idling
        if signed_in is None or signed_in.revoked_at is not None or signed_in.expires_at <= now:
            raise AccessRefused(401, "you signed out of the portal: sign in and open the session again")
