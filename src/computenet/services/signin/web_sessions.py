"""Browser sessions: a random secret in an HttpOnly, SameSite=Lax cookie (Secure over TLS), its hash
in web_sessions with a CSRF token, an idle and an absolute timeout; listed and revoked by their owner,
all at once with "sign out everywhere".

Server-side rather than signed cookies: a revoked or suspended user's session ends at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ...config import AuthConfig
from ...store.auth_models import RefreshToken, WebSession
from ...store.models import User
from ...store.types import utcnow
from ...messages import msg
from ..errors import NotFound

COOKIE = "cnet_session"
CSRF_HEADER = "X-CSRF-Token"
# last_seen_at is written at most this often: a write per request would serialise SQLite
TOUCH_RESOLUTION = timedelta(seconds=30)


class SessionRefused(Exception):
    """The cookie names no live session (the message says why: unknown, signed out, idle, expired)."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start(session: Session, user: User, method: str, client: str, user_agent: str,
          policy: AuthConfig) -> tuple[WebSession, str]:
    """A new session for a user who just signed in: the row and the cookie's secret (shown once)."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    row = WebSession(user_id=user.id, secret_hash=_digest(secret), csrf_token=secrets.token_urlsafe(32),
                     method=method[:16], client=(client or "")[:64], user_agent=(user_agent or "")[:255],
                     created_at=now, last_seen_at=now,
                     expires_at=now + timedelta(hours=policy.session_absolute_hours))
    session.add(row)
    session.flush()
    return row, secret


def check(session: Session, secret: str, policy: AuthConfig) -> WebSession:
    """The live session for a cookie (its last use noted), or SessionRefused saying why."""
    row = session.scalar(select(WebSession).where(WebSession.secret_hash == _digest(secret or "")))
    if row is None:
        raise SessionRefused(msg("not signed in (unknown session)"))
    now = utcnow()
    if row.revoked_at is not None:
        raise SessionRefused(msg("this session was signed out"))
    if row.expires_at <= now:
        raise SessionRefused(msg("this session expired: sign in again"))
    if row.last_seen_at + timedelta(minutes=policy.session_idle_minutes) <= now:
        row.revoked_at = now
        raise SessionRefused(msg("signed out after being idle: sign in again"))
    if row.user.status != "active":
        raise SessionRefused(msg("user %(user)s is %(status)s", user=row.user.name, status=row.user.status))
    if now - row.last_seen_at > TOUCH_RESOLUTION:
        row.last_seen_at = now
    return row


def csrf_ok_token(expected: str, presented: str | None) -> bool:
    return bool(presented) and secrets.compare_digest(expected.encode(), presented.encode())


def listing(session: Session, user: User) -> list[WebSession]:
    """The user's live sessions, newest first."""
    now = utcnow()
    return list(session.scalars(select(WebSession).where(
        WebSession.user_id == user.id, WebSession.revoked_at.is_(None), WebSession.expires_at > now)
        .order_by(WebSession.id.desc())))


def revoke(session: Session, user: User, session_id: int) -> WebSession:
    row = session.get(WebSession, session_id)
    if row is None or row.user_id != user.id:
        raise NotFound(msg("no session %(session)s of yours", session=session_id))
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def revoke_all(session: Session, user: User) -> dict:
    """Sign out everywhere: every browser session and every `cnet login` refresh token of the user."""
    now = utcnow()
    sessions = session.execute(update(WebSession).where(WebSession.user_id == user.id,
                                                        WebSession.revoked_at.is_(None)).values(revoked_at=now))
    refresh = session.execute(update(RefreshToken).where(RefreshToken.user_id == user.id,
                                                         RefreshToken.revoked_at.is_(None)).values(revoked_at=now))
    session.flush()
    return {"sessions": sessions.rowcount, "refresh_tokens": refresh.rowcount}


def secure(request, policy: AuthConfig) -> bool:
    if policy.cookie_secure != "auto":
        return policy.cookie_secure == "always"
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip() == "https"


def set_cookie(response, request, secret: str, policy: AuthConfig) -> None:
    response.set_cookie(COOKIE, secret, max_age=int(policy.session_absolute_hours * 3600), path="/",
                        httponly=True, samesite="lax", secure=secure(request, policy))


def clear_cookie(response, request, policy: AuthConfig) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure(request, policy))


def to_json(row: WebSession, current_id: int | None = None) -> dict:
    return {"id": row.id, "method": row.method, "client": row.client, "user_agent": row.user_agent,
            "created_at": row.created_at.isoformat(), "last_seen_at": row.last_seen_at.isoformat(),
            "expires_at": row.expires_at.isoformat(), "current": row.id == current_id}
