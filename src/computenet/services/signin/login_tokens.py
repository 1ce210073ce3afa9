"""What `cnet login` gets: a short-lived API token (auth.login_token_minutes) and a refresh token
(auth.refresh_days) that buys the next one. Each refresh rotates the refresh token; one presented a
second time (copied and replayed) ends the whole sign-in (its family), as RFC 9700 advises.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ...config import AuthConfig
from ...store.auth_models import RefreshToken
from ...store.models import ApiToken, User
from ...store.types import utcnow
from ..tenancy import tokens
from ...messages import msg
from .identity import SignInRefused

REFRESH_PREFIX = "cnr_"
TOKEN_NAME = "cnet login"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _pair(session: Session, user: User, method: str, client: str, policy: AuthConfig, family: str) -> dict:
    life = timedelta(minutes=policy.login_token_minutes)
    _, access = tokens.issue(session, user, name=TOKEN_NAME, scope="full", life=life)
    refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
    session.add(RefreshToken(user_id=user.id, family=family, token_hash=_digest(refresh), method=method[:16],
                             client=(client or "")[:64], expires_at=utcnow() + timedelta(days=policy.refresh_days)))
    session.flush()
    return {"access_token": access, "token_type": "bearer", "expires_in": int(life.total_seconds()),
            "refresh_token": refresh, "user": user.name}


def issue(session: Session, user: User, method: str, client: str, policy: AuthConfig) -> dict:
    """The first pair after a sign-in (a new family)."""
    return _pair(session, user, method, client, policy, secrets.token_hex(16))


def refresh(session: Session, presented: str, client: str, policy: AuthConfig) -> dict:
    """A new pair for a live, unused refresh token; SignInRefused (and the family ended) otherwise."""
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == _digest(presented or ""))
                         .with_for_update())
    if row is None:
        raise SignInRefused(msg("unknown refresh token: sign in again (`cnet login`)"), "bad_refresh")
    now = utcnow()
    if row.used_at is not None and row.revoked_at is None:
        # a rotated-out token came back: someone holds a copy; end every token of this sign-in
        session.execute(update(RefreshToken).where(RefreshToken.family == row.family,
                                                   RefreshToken.revoked_at.is_(None)).values(revoked_at=now))
        session.flush()
        raise SignInRefused(msg("this refresh token was already used, so every token of that sign-in is now "
                                "revoked: sign in again (`cnet login`)"), "refresh_replayed")
    if row.revoked_at is not None:
        raise SignInRefused(msg("this sign-in was ended (signed out): sign in again (`cnet login`)"), "bad_refresh")
    if row.expires_at <= now:
        raise SignInRefused(msg("the sign-in expired: sign in again (`cnet login`)"), "bad_refresh")
    if row.user.status != "active":
        raise SignInRefused(msg("the account %(user)s is %(status)s", user=row.user.name, status=row.user.status),
                            row.user.status)
    row.used_at = now
    return _pair(session, row.user, row.method, client, policy, row.family)


def end(session: Session, presented: str) -> bool:
    """`cnet logout`: the refresh token's whole sign-in ends (False: it was unknown)."""
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == _digest(presented or "")))
    if row is None:
        return False
    session.execute(update(RefreshToken).where(RefreshToken.family == row.family,
                                               RefreshToken.revoked_at.is_(None)).values(revoked_at=utcnow()))
    session.flush()
    return True


def revoke_access_tokens(session: Session, user: User) -> int:
    """The short-lived API tokens `cnet login` gave the user (sign out everywhere ends them too)."""
    result = session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.name == TOKEN_NAME,
                                                    ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow()))
    return result.rowcount
