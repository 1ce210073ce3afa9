"""Users, API tokens and prepaid accounts."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..domain.money import round_money, to_decimal
from ..store.models import Account, AccountMember, ApiToken, LedgerEntry, User
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


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user {name!r}")
    return user


def create_account(session: Session, name: str, owner: User | None = None, currency: str = "CNY") -> Account:
    if not ACCOUNT_NAME.match(name):
        raise InvalidRequest(f"invalid account name {name!r}")
    if session.scalar(select(Account).where(Account.name == name)):
        raise Conflict(f"account {name!r} exists")
    account = Account(name=name, currency=currency, balance=Decimal("0"))
    session.add(account)
    session.flush()
    if owner is not None:
        add_member(session, account, owner)
        if owner.default_account_id is None:
            owner.default_account_id = account.id
    return account


def get_account(session: Session, name: str) -> Account:
    account = session.scalar(select(Account).where(Account.name == name))
    if account is None:
        raise NotFound(f"no account {name!r}")
    return account


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


def post_entry(session: Session, account: Account, amount: Decimal, kind: str, key: str,
               job_id: int | None = None, memo: str = "") -> LedgerEntry | None:
    """Insert one immutable ledger entry and move the balance with it.

    Idempotent: a second call with the same key changes nothing and returns
    None. Runs in a savepoint so a duplicate does not spoil the caller's
    transaction.
    """
    amount = round_money(to_decimal(amount))
    try:
        with session.begin_nested():
            entry = LedgerEntry(account_id=account.id, amount=amount, kind=kind, idempotency_key=key,
                                job_id=job_id, memo=memo)
            session.add(entry)
            session.flush()
            session.execute(
                update(Account).where(Account.id == account.id).values(balance=Account.balance + amount)
            )
    except IntegrityError:
        return None
    session.refresh(account)
    return entry


def top_up(session: Session, account: Account, amount: object, key: str, memo: str = "top-up") -> LedgerEntry | None:
    value = to_decimal(amount)
    if value <= 0:
        raise InvalidRequest("a top-up must be positive")
    return post_entry(session, account, value, "topup", key, memo=memo)


def ledger_mismatches(session: Session) -> list[tuple[str, Decimal, Decimal]]:
    """Accounts whose balance differs from the sum of their entries (should be none)."""
    sums = dict(
        session.execute(select(LedgerEntry.account_id, func.coalesce(func.sum(LedgerEntry.amount), 0))
                        .group_by(LedgerEntry.account_id)).all()
    )
    bad = []
    for account in session.scalars(select(Account)):
        total = Decimal(sums.get(account.id, 0) or 0)
        if round_money(total) != account.balance:
            bad.append((account.name, account.balance, total))
    return bad
