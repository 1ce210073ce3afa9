"""Sign-in state (re-exported by store.models): local passwords, failed attempts, browser sessions,
the CLI's refresh tokens, password-reset links and the directory/OIDC identities linked to users.

Every secret (session cookie, refresh token, reset link) is stored as its SHA-256 only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .models import Base, User
from .types import UTCDateTime, utcnow


class PasswordCredential(Base):
    """A user's local password (argon2id hash); users of LDAP or OIDC have none."""

    __tablename__ = "password_credentials"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    hash: Mapped[str] = mapped_column(String(255))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # set by an operator's reset: the user must choose a new one at the next sign-in
    must_change: Mapped[bool] = mapped_column(Boolean, default=False)


class SignInAttempt(Base):
    """One try to sign in (any method), kept for lockout (per login and per client address) and audit."""

    __tablename__ = "signin_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    login: Mapped[str] = mapped_column(String(255), index=True)  # as typed (truncated), even for no such user
    client: Mapped[str] = mapped_column(String(64), index=True)  # the client address
    method: Mapped[str] = mapped_column(String(16))  # password | ldap | oidc
    ok: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(64), default="")  # why refused, for operators


class WebSession(Base):
    """A browser session: the cookie holds the secret, the row its hash, CSRF token and timeouts."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))  # how the user signed in
    client: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the absolute timeout
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class RefreshToken(Base):
    """The CLI's long-lived half of `cnet login`: traded for a short-lived API token, rotated on each use.

    Tokens of one sign-in share a family: a rotated-out token presented again (stolen and replayed)
    revokes the whole family.
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    method: Mapped[str] = mapped_column(String(16))
    client: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # rotated: a second use is a replay
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class PasswordReset(Base):
    """A one-time link to set a new password, sent by e-mail; valid for a short while, used once."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16), default="reset")  # reset | verify (an e-mail address)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExternalIdentity(Base):
    """Who a user is at a directory or OIDC provider: (provider, subject) names one user for good."""

    __tablename__ = "external_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    provider: Mapped[str] = mapped_column(String(64))  # "ldap" or "oidc:<name>"
    subject: Mapped[str] = mapped_column(String(255))  # the DN's uid / the OIDC "sub"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OidcLogin(Base):
    """An OIDC sign-in under way: the state, nonce and PKCE verifier sent with the browser to the
    provider, checked when it comes back; for `cnet login`, the one-time code the CLI trades for tokens."""

    __tablename__ = "oidc_logins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_path: Mapped[str] = mapped_column(String(512), default="/")  # where the browser goes after
    cli_port: Mapped[int | None] = mapped_column(Integer)  # `cnet login`: its loopback listener
    cli_challenge: Mapped[str | None] = mapped_column(String(128))  # the CLI's own PKCE challenge (S256)
    cli_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # set when the provider vouched
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
