"""Signing in with a login name and a password: a local password where the user has one, otherwise
the centre's directory (auth.ldap) when configured. Lockout and the record of every attempt are here,
so the API's /auth/login, /auth/token and the portal's form share them.

A local password wins over the directory: operators keep a local password so that they can still
sign in while the directory is down.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...config import AuthConfig
from ...store.models import User
from .. import audit
from ..errors import Conflict
from . import attempts, passwords, web_sessions
from ...messages import N_, msg
from .identity import ProviderDown, SignInRefused, account_is, provision

WRONG = N_("unknown user or wrong password")


@dataclass
class SignedIn:
    user: User
    method: str  # password | ldap
    must_change_password: bool = False


def with_password(session: Session, policy: AuthConfig, login: str, password: str, client: str) -> SignedIn:
    """The user these credentials sign in, or SignInRefused / ProviderDown; the attempt is recorded
    either way (the caller commits even when this raises: see api/routers/auth.py)."""
    login = (login or "").strip()
    if not login or len(login) > attempts.MAX_LOGIN or not login.isprintable():
        raise SignInRefused(msg("give a login name (printable, at most 255 characters)"), "bad_login")
    if not password:
        raise SignInRefused(msg("give a password"), "no_password")
    attempts.check_locked(session, login, client, policy)
    method = "password"
    try:
        user = session.scalar(select(User).where(User.name == login.lower()))
        if user is not None and passwords.has_password(session, user):
            credential = passwords.verify(session, user, password)
            if credential is None:
                raise SignInRefused(msg(WRONG), "bad_password")
            if user.status != "active":
                raise SignInRefused(account_is(user), user.status)
            result = SignedIn(user, method, credential.must_change)
        elif policy.ldap is not None:
            from . import directory  # ldap3 is imported only where a directory is configured

            method = "ldap"
            who = directory.authenticate(policy.ldap, login, password)
            user = provision(session, who, policy.ldap.groups, create_users=policy.ldap.create_users,
                             default_tenant=policy.ldap.default_tenant, client=client)
            result = SignedIn(user, method)
        else:
            passwords.verify(session, None, password)  # the same time as for a real user
            raise SignInRefused(msg(WRONG), "bad_password")
    except SignInRefused as exc:
        attempts.record(session, login, client, method, False, exc.reason)
        raise
    except ProviderDown:
        attempts.record(session, login, client, method, False, "provider_down")
        raise
    attempts.record(session, login, client, method, True)
    return result


def change_password(session: Session, policy: AuthConfig, login: str, current: str, new: str, client: str,
                    source: str) -> User:
    """A user's own change of their local password: the current one is checked as a sign-in (lockout
    included), the new one against the policy; every session of theirs ends."""
    signed_in = with_password(session, policy, login, current, client)
    if signed_in.method != "password":
        raise Conflict(msg("this account signs in with the centre's directory: change the password there"))
    passwords.set_password(session, audit.Who(signed_in.user.name, f"{source} {client}".strip()), signed_in.user,
                           new, policy)
    web_sessions.revoke_all(session, signed_in.user)
    return signed_in.user
