"""Users, API tokens and prepaid accounts."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..billing import funds, ledger
from ..billing.ledger import LedgerError
from ..domain.money import MoneyError
from ..store.models import Account, AccountMember, ApiToken, User
from ..store.types import utcnow
from .errors import Conflict, InvalidRequest, NotFound

USER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TOKEN_PREFIX = "cnet_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, name: str, email: str | None = None, is_admin: bool = False) -> User:
    if not USER_NAME.match(name):
        raise InvalidRequest(f"invalid user name {name!r}: lower-case letters, digits, '-' and '_', up to 32, starting with a letter")
    if session.scalar(select(User).where(User.name == name)):
        raise Conflict(f"user {name!r} exists")
    user = User(name=name, email=email, is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def issue_token(session: Session, user: User, name: str = "") -> str:
    """A new API token; only its hash is stored, so it is shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:12], name=name))
    session.flush()
    return token


def authenticate(session: Session, token: str) -> User | None:
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    )
    if row is None:
        return None
    now = utcnow()
    # a write per request would serialise every API call on SQLite's lock
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row.user


def by_name(session: Session, model, name: str, what: str):
    """The row of ``model`` with this name, or NotFound naming it."""
    row = session.scalar(select(model).where(model.name == name))
    if row is None:
        raise NotFound(f"no {what} {name!r}")
    return row


def get_user(session: Session, name: str) -> User:
    return by_name(session, User, name, "user")


def create_account(session: Session, name: str, owner: User | None = None, currency: str = "CNY") -> Account:
    if not ACCOUNT_NAME.match(name):
        raise InvalidRequest(f"invalid account name {name!r}")
    if session.scalar(select(Account).where(Account.name == name)):
        raise Conflict(f"account {name!r} exists")
    account = Account(name=name, currency=currency)
    session.add(account)
    session.flush()
    if owner is not None:
        add_member(session, account, owner)
        if owner.default_account_id is None:
            owner.default_account_id = account.id
    return account


def get_account(session: Session, name: str) -> Account:
    return by_name(session, Account, name, "account")


def add_member(session: Session, account: Account, user: User) -> None:
    if session.get(AccountMember, (account.id, user.id)) is None:
        session.add(AccountMember(account_id=account.id, user_id=user.id))
        session.flush()


def accounts_of(session: Session, user: User) -> list[Account]:
    return list(
        session.scalars(
            select(Account).join(AccountMember, AccountMember.account_id == Account.id)
            .where(AccountMember.user_id == user.id).order_by(Account.name)
        )
    )


def top_up(session: Session, account: Account, amount: object, key: str, memo: str = "top-up",
           actor: str = "system"):
    """Credit a customer account; the same key twice credits once. Returns the transfer or None."""
    try:
        transfer, created = funds.top_up(session, account, amount, key, memo=memo, actor=actor)
    except (LedgerError, MoneyError) as exc:
        raise InvalidRequest(str(exc)) from None
    return transfer if created else None


def ledger_problems(session: Session) -> list:
    """Violations of the ledger's invariants (should be none)."""
    return ledger.invariant(session)
