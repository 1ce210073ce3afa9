"""Users, API tokens and prepaid accounts."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...billing import funds, ledger
from ...billing.ledger import LedgerError
from ...domain.money import MoneyError
from ...store.models import Account, AccountMember, User
from ...messages import msg
from ..errors import Conflict, InvalidRequest, NotFound

USER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
def create_user(session: Session, name: str, email: str | None = None, is_admin: bool = False) -> User:
    if not USER_NAME.match(name):
        raise InvalidRequest(msg("invalid user name %(name)r: lower-case letters, digits, '-' and '_', "
                                 "up to 32, starting with a letter",
                                 name=name))
    if session.scalar(select(User).where(User.name == name)):
        raise Conflict(msg("user %(name)r exists", name=name))
    user = User(name=name, email=email, is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def issue_token(session: Session, user: User, name: str = "", scope: str = "full", days: int | None = None,
                policy=None) -> str:
    """A new API token (see services/tenancy/tokens.py: expiry, scope); only its hash is stored, so it is shown once."""
    from .tokens import issue

    return issue(session, user, name, scope, days, policy)[1]


def authenticate(session: Session, token: str) -> User | None:
    """The user of a live token (not revoked, not expired), or None."""
    from .tokens import TokenRefused, check

    try:
        return check(session, token).user
    except TokenRefused:
        return None


def by_name(session: Session, model, name: str, what: str):
    """The row of ``model`` with this name, or NotFound naming it."""
    row = session.scalar(select(model).where(model.name == name))
    if row is None:
        raise NotFound(msg("no %(what)s %(name)r", what=what, name=name))
    return row


def get_user(session: Session, name: str) -> User:
    return by_name(session, User, name, "user")


def create_account(session: Session, name: str, owner: User | None = None, currency: str = "CNY") -> Account:
    if not ACCOUNT_NAME.match(name):
        raise InvalidRequest(msg("invalid account name %(name)r", name=name))
    if session.scalar(select(Account).where(Account.name == name)):
        raise Conflict(msg("account %(name)r exists", name=name))
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
