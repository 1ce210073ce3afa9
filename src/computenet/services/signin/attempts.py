"""Failed sign-ins and lockout: too many failures for one login, or from one client address, within
auth.lockout_window_minutes lock it for auth.lockout_minutes.

Counted from the attempts themselves (no counter to get out of step); a success for a login clears
its count, and an operator's unlock is a recorded success with reason "unlocked".
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...config import AuthConfig
from ...store.auth_models import SignInAttempt
from ...store.types import utcnow
from ...messages import When, msg
from .identity import SignInRefused

MAX_LOGIN = 255


def record(session: Session, login: str, client: str, method: str, ok: bool, reason: str = "") -> None:
    session.add(SignInAttempt(login=login.strip().lower()[:MAX_LOGIN], client=(client or "")[:64],
                              method=method[:16], ok=ok, reason=reason[:64]))
    session.flush()


def _failures(session: Session, column, value: str, since, reset: bool) -> tuple[int, object]:
    """Failures within the window (after the last success, with ``reset``) and the newest one's time.

    A client address's count is not reset by a success: an attacker would sign in to their own
    account between guesses at others'.
    """
    last_ok = session.scalar(select(func.max(SignInAttempt.at)).where(column == value, SignInAttempt.ok)) \
        if reset else None
    start = max(since, last_ok) if last_ok is not None else since
    count, newest = session.execute(select(func.count(), func.max(SignInAttempt.at)).where(
        column == value, SignInAttempt.at > start, SignInAttempt.ok.is_(False),
        SignInAttempt.reason != "locked")).one()
    return count, newest


def locked_until(session: Session, login: str, client: str, policy: AuthConfig):
    """When the login (or the client address) may try again, or None when it may now."""
    now = utcnow()
    since = now - timedelta(minutes=policy.lockout_window_minutes)
    lock = timedelta(minutes=policy.lockout_minutes)
    until = None
    for column, value, limit in ((SignInAttempt.login, login.strip().lower()[:MAX_LOGIN], policy.lockout_failures),
                                 (SignInAttempt.client, (client or "")[:64], policy.client_lockout_failures)):
        if column is SignInAttempt.client and not value:
            continue
        count, newest = _failures(session, column, value, since, reset=column is SignInAttempt.login)
        if count >= limit and newest + lock > now:
            until = max(until or newest + lock, newest + lock)
    return until


def check_locked(session: Session, login: str, client: str, policy: AuthConfig) -> None:
    """SignInRefused(reason "locked") while the login or the client address is locked out."""
    until = locked_until(session, login, client, policy)
    if until is not None:
        raise SignInRefused(msg("too many failed sign-ins: try again after %(until)s (or ask an operator to unlock "
                                "the account)", until=When(until, until.isoformat(timespec="seconds"))), "locked")


def unlock(session: Session, login: str) -> None:
    """An operator's unlock: a success on record ends the run of failures."""
    record(session, login, "", "operator", True, "unlocked")
