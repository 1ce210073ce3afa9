"""Local passwords: argon2id hashes (argon2-cffi, its current default parameters), a policy, and
one-time links for a reset or an e-mail address check.

Only people an operator gave a password have one; directory and OIDC users sign in elsewhere.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...config import AuthConfig
from ...store.auth_models import PasswordCredential, PasswordReset
from ...store.models import User
from ...store.types import utcnow
from .. import audit
from ...messages import msg
from ..errors import InvalidRequest

_hasher = PasswordHasher()
# a hash to verify against when the login is unknown, so that both take the same time
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))
MAX_PASSWORD = 256  # argon2 takes any length; a megabyte-long "password" is only a way to burn CPU
COMMON = ("password", "123456", "qwerty", "letmein", "welcome", "admin", "computenet", "abc123", "iloveyou")
LINK_PURPOSES = ("reset", "verify")


def check_policy(password: str, login: str, policy: AuthConfig) -> None:
    """InvalidRequest naming the first rule the password breaks."""
    if len(password) > MAX_PASSWORD:
        raise InvalidRequest(msg("a password is at most %(max_password)s characters", max_password=MAX_PASSWORD))
    if len(password) < policy.password_min_length:
        raise InvalidRequest(msg("a password needs at least %(password_min_length)s characters",
                                 password_min_length=policy.password_min_length))
    if not password.isprintable():
        raise InvalidRequest(msg("a password may not contain control characters"))
    classes = sum((any(c.islower() for c in password), any(c.isupper() for c in password),
                   any(c.isdigit() for c in password), any(not c.isalnum() for c in password)))
    if classes < policy.password_min_classes and len(password) < policy.passphrase_length:
        raise InvalidRequest(msg("a password needs characters of %(password_min_classes)s kinds (lower "
                                 "case, upper case, digits, others), or at least %(passphrase_length)s "
                                 "characters",
                                 password_min_classes=policy.password_min_classes,
                                 passphrase_length=policy.passphrase_length))
    lowered = password.lower()
    if login and login.lower() in lowered:
        raise InvalidRequest(msg("a password may not contain the login name"))
    if len(set(password)) < 4 or any(word in lowered for word in COMMON):
        raise InvalidRequest(msg("this password is too easy to guess"))


def set_password(session: Session, who: audit.Who, user: User, password: str, policy: AuthConfig,
                 must_change: bool = False) -> None:
    check_policy(password, user.name, policy)
    row = session.get(PasswordCredential, user.id)
    if row is None:
        row = PasswordCredential(user_id=user.id, hash="")
        session.add(row)
    row.hash, row.set_at, row.must_change = _hasher.hash(password), utcnow(), must_change
    session.flush()
    audit.record(session, who, "password.set", f"user:{user.name}", must_change=must_change)


def temporary_password() -> str:
    """For an operator's reset: meets any policy (four kinds, 20 characters); changed at first sign-in."""
    return "Tmp-" + secrets.token_urlsafe(12) + "9a"


def has_password(session: Session, user: User) -> bool:
    return session.get(PasswordCredential, user.id) is not None


def verify(session: Session, user: User | None, password: str) -> PasswordCredential | None:
    """The credential when ``password`` is the user's; None otherwise (also for no user: same cost)."""
    row = session.get(PasswordCredential, user.id) if user is not None else None
    if len(password) > MAX_PASSWORD:
        return None
    try:
        _hasher.verify(row.hash if row is not None else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher.check_needs_rehash(row.hash):  # parameters raised since it was set
        row.hash = _hasher.hash(password)
    return row


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_link(session: Session, user: User, purpose: str, policy: AuthConfig) -> str:
    """A one-time token for a reset or an address check; earlier unused ones of its purpose stop working."""
    assert purpose in LINK_PURPOSES
    now = utcnow()
    for old in session.scalars(select(PasswordReset).where(PasswordReset.user_id == user.id,
                                                           PasswordReset.purpose == purpose,
                                                           PasswordReset.used_at.is_(None))):
        old.used_at = now
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(user_id=user.id, token_hash=_digest(token), purpose=purpose,
                              expires_at=now + timedelta(minutes=policy.reset_link_minutes)))
    session.flush()
    return token


def redeem_link(session: Session, token: str, purpose: str) -> User:
    """The user the link was made for, the link used up; InvalidRequest if unknown, used or expired."""
    row = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _digest(token or ""),
                                                     PasswordReset.purpose == purpose).with_for_update())
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise InvalidRequest(msg("this link is not valid: it was used, has expired, or was replaced by a "
                                 "newer one"))
    user = session.get(User, row.user_id)
    if user.status != "active":
        raise InvalidRequest(msg("the account %(user)s is %(status)s", user=user.name, status=user.status))
    row.used_at = utcnow()
    session.flush()
    return user
