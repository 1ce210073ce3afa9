"""API tokens: issued with an expiry and a scope, listed and revoked by their owner or an operator.

Only a token's SHA-256 is stored, so a token is shown once, when issued. A
``read`` token may only read (GET, HEAD, OPTIONS); a ``full`` token may do
whatever its user may. ``last_used_at`` is written at most once a minute per
token: a write on every request would serialise the API on SQLite's lock.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ...config import AuthConfig
from ...store.models import ApiToken, User
from ...store.types import utcnow
from ...messages import msg
from ..errors import Conflict, InvalidRequest, NotFound

TOKEN_PREFIX = "cnet_"
SCOPES = ("full", "read")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_NAME = 64


class TokenRefused(Exception):
    """The presented token is unknown, revoked or expired (the message says which)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lifetime(policy: AuthConfig, days: int | None) -> timedelta:
    """The asked-for life, or the configured default; never beyond the configured maximum."""
    days = policy.token_default_days if days is None else days
    if not 1 <= days <= policy.token_max_days:
        raise InvalidRequest(msg("a token lives 1 to %(token_max_days)s days (auth.token_max_days), not "
                                 "%(days)s",
                                 token_max_days=policy.token_max_days, days=days))
    return timedelta(days=days)


def issue(session: Session, user: User, name: str = "", scope: str = "full", days: int | None = None,
          policy: AuthConfig | None = None, life: timedelta | None = None) -> tuple[ApiToken, str]:
    """A new token row and the token itself (shown once); ``life`` (for `cnet login`) overrides days."""
    if scope not in SCOPES:
        raise InvalidRequest(msg("unknown token scope %(scope)r (use %(listed)s)",
                                 scope=scope, listed=' or '.join(SCOPES)))
    if len(name) > MAX_NAME or not name.isprintable():
        raise InvalidRequest(msg("a token name is at most %(max_name)s printable characters", max_name=MAX_NAME))
    if (user.status or "active") != "active":
        raise Conflict(msg("user %(user)s is %(status)s: no tokens until reinstated",
                           user=user.name, status=user.status))
    expires = utcnow() + (life if life is not None else lifetime(policy or AuthConfig(), days))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:12], name=name, scope=scope,
                   expires_at=expires)
    session.add(row)
    session.flush()
    return row, token


def check(session: Session, token: str) -> ApiToken:
    """The live token row for this secret (its last use noted), or TokenRefused saying why."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        raise TokenRefused("invalid API token")
    now = utcnow()
    if row.revoked_at is not None:
        raise TokenRefused(f"API token {row.prefix}... was revoked")
    if row.expires_at <= now:
        raise TokenRefused(f"API token {row.prefix}... expired at {row.expires_at.isoformat(timespec='seconds')}")
    if row.user.status != "active":  # suspended or deleted: no token of theirs works (services/tenancy/users.py)
        raise TokenRefused(f"user {row.user.name} is {row.user.status}")
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row


def allows(row: ApiToken, method: str) -> bool:
    """Whether a token of this scope may make a request with this HTTP method."""
    return row.scope == "full" or method.upper() in READ_METHODS


def listing(session: Session, user: User | None = None, include_revoked: bool = False) -> list[ApiToken]:
    """A user's tokens (None: everyone's), newest first; revoked ones only when asked."""
    query = select(ApiToken).options(selectinload(ApiToken.user)).order_by(ApiToken.id.desc())
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return list(session.scalars(query))


def find(session: Session, token_id: int, owner: User | None = None) -> ApiToken:
    """A token by id; with ``owner``, only theirs (another's answers as a missing one)."""
    row = session.get(ApiToken, token_id)
    if row is None or (owner is not None and row.user_id != owner.id):
        raise NotFound(msg("no token %(token)s of yours", token=token_id) if owner is not None else
                       msg("no token %(token)s", token=token_id))
    return row


def revoke(session: Session, row: ApiToken) -> ApiToken:
    """Revoked from now on; revoking twice keeps the first time."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def to_json(row: ApiToken) -> dict:
    def at(value):
        return None if value is None else value.isoformat()

    now = utcnow()
    state = "revoked" if row.revoked_at else "expired" if row.expires_at <= now else "active"
    return {"id": row.id, "user": row.user.name, "name": row.name, "prefix": row.prefix, "scope": row.scope,
            "state": state, "created_at": at(row.created_at), "expires_at": at(row.expires_at),
            "last_used_at": at(row.last_used_at), "revoked_at": at(row.revoked_at)}
