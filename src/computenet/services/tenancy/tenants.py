"""Who pays: tenants, their projects, members with roles and spending limits, contracts."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...billing import funds, ledger
from ...billing.ledger import LedgerError, cents
from ...domain.money import MoneyError, to_decimal
from ...store.models import Account, AccountMember, Charge, Contract, Job, Tenant, Transfer, User
from ...store.types import utcnow
from .accounts import ACCOUNT_NAME, by_name, create_account
from ...messages import Money, msg
from ..errors import Conflict, Forbidden, InsufficientFunds, InvalidRequest, NotFound
from .roles import can_see_account  # noqa: F401  (where callers have found it)

SEGMENTS = ("university", "research_institute", "enterprise", "government", "individual")
MEMBER_ROLES = ("member", "pi")


def create_tenant(session: Session, name: str, segment: str) -> Tenant:
    if not ACCOUNT_NAME.match(name):
        raise InvalidRequest(msg("invalid tenant name %(name)r", name=name))
    if segment not in SEGMENTS:
        raise InvalidRequest(msg("unknown segment %(segment)r (use %(listed)s)",
                                 segment=segment, listed=', '.join(SEGMENTS)))
    if session.scalar(select(Tenant).where(Tenant.name == name)):
        raise Conflict(msg("tenant %(name)r exists", name=name))
    tenant = Tenant(name=name, segment=segment)
    session.add(tenant)
    session.flush()
    # the tenant's own wallet, from which it funds its projects
    wallet = create_account(session, name)
    wallet.tenant_id, wallet.kind = tenant.id, "tenant"
    return tenant


def get_tenant(session: Session, name: str) -> Tenant:
    return by_name(session, Tenant, name, "tenant")


def create_project(session: Session, tenant: Tenant, name: str, pi: User | None = None) -> Account:
    project = create_account(session, name, owner=pi)
    project.tenant_id = tenant.id
    if pi is not None:
        set_member(session, project, pi, role="pi")
    return project


def set_member(session: Session, account: Account, user: User, role: str = "member",
               spend_limit: object | None = None) -> AccountMember:
    if role not in MEMBER_ROLES:
        raise InvalidRequest(msg("unknown member role %(role)r (use %(listed)s)",
                                 role=role, listed=', '.join(MEMBER_ROLES)))
    limit = None if spend_limit is None else cap_amount(spend_limit, "a spending limit")
    member = session.get(AccountMember, (account.id, user.id))
    if member is None:
        member = AccountMember(account_id=account.id, user_id=user.id)
        session.add(member)
    member.role, member.spend_limit = role, limit
    if user.default_account_id is None:
        user.default_account_id = account.id
    session.flush()
    return member


def cap_amount(value: object, what: str) -> Decimal:
    """A non-negative amount in whole cents (a limit or a budget); a clear error otherwise."""
    try:
        amount = to_decimal(value)
        cents(amount)
    except (MoneyError, LedgerError) as exc:
        raise InvalidRequest(msg("%(what)s: %(exc)s", what=what, exc=exc)) from None
    if amount < 0:
        raise InvalidRequest(msg("%(what)s cannot be negative", what=what))
    return amount


def remove_member(session: Session, account: Account, user: User) -> None:
    """The user can no longer charge jobs to the account (running jobs finish and are charged)."""
    member = session.get(AccountMember, (account.id, user.id))
    if member is None:
        raise NotFound(msg("%(user)s is not a member of %(account)s", user=user.name, account=account.name))
    session.delete(member)
    if user.default_account_id == account.id:
        user.default_account_id = None
    session.flush()


def month_start(now: datetime | None = None) -> datetime:
    now = now or utcnow()
    return datetime(now.year, now.month, 1, tzinfo=timezone.utc)


def spent_this_month(session: Session, user: User, account: Account) -> Decimal:
    """Charged this month for the user's jobs on the account, plus what their unsettled jobs may still cost."""
    charged = session.scalar(select(func.coalesce(func.sum(Charge.amount), 0)).join(Job, Job.id == Charge.job_id)
                             .where(Job.owner_id == user.id, Charge.account_id == account.id,
                                    Charge.created_at >= month_start()))
    pending = session.scalar(select(func.coalesce(func.sum(Job.max_cost), 0)).where(
        Job.owner_id == user.id, Job.account_id == account.id, Job.settled_at.is_(None)))
    return Decimal(charged or 0) + Decimal(pending or 0)


def _cents(amount) -> str:
    """An amount as people read money: two places at least ("0.00", not "0")."""
    value = Decimal(amount)
    return str(value.quantize(Decimal("0.01"))) if value == value.quantize(Decimal("0.01")) else str(value)


def check_spend_limit(session: Session, user: User, account: Account, cost: Decimal) -> None:
    """The member's monthly limit and the account's budget, both with the job's maximum cost.

    The rows are locked first (SELECT ... FOR UPDATE on PostgreSQL; SQLite
    transactions are already serialised by BEGIN IMMEDIATE), so concurrent
    submissions by one member are checked one after another, in the same
    transaction that writes the job and its hold.
    """
    member = session.scalar(select(AccountMember).where(
        AccountMember.account_id == account.id, AccountMember.user_id == user.id).with_for_update())
    if member is None:
        raise Forbidden(msg("you are not a member of account %(account)s", account=account.name))
    if account.budget is not None:
        session.execute(select(Account.id).where(Account.id == account.id).with_for_update())
        spent = spent_on_account(session, account)
        if spent + cost > account.budget:
            period = msg("this month") if account.budget_period == "month" else msg("in all")
            raise InsufficientFunds(
                msg("project budget of %(account)s is %(budget)s %(period)s: %(spent)s is spent or held "
                    "and this job may cost up to %(cost)s",
                    account=account.name, budget=Money(account.budget), period=period,
                    spent=Money(spent, english=_cents(spent)), cost=Money(cost)))
    if member.spend_limit is None:
        return
    spent = spent_this_month(session, user, account)
    if spent + cost > member.spend_limit:
        raise InsufficientFunds(
            msg("your monthly spending limit on %(account)s is %(spend_limit)s: %(spent)s is spent or "
                "held this month and this job may cost up to %(cost)s",
                account=account.name, spend_limit=Money(member.spend_limit),
                spent=Money(spent, english=_cents(spent)), cost=Money(cost)))


BUDGET_PERIODS = ("month", "total")


def set_budget(session: Session, account: Account, amount: object | None, period: str = "month") -> None:
    """A cap on what the account's jobs may cost, apart from the money on it (None: no cap)."""
    if period not in BUDGET_PERIODS:
        raise InvalidRequest(msg("unknown budget period %(period)r (use %(listed)s)",
                                 period=period, listed=', '.join(BUDGET_PERIODS)))
    account.budget = None if amount is None else cap_amount(amount, "a budget")
    account.budget_period = period
    session.flush()


def spent_on_account(session: Session, account: Account) -> Decimal:
    """Charged in the budget period for the account's jobs, plus what its unsettled jobs may still cost."""
    query = select(func.coalesce(func.sum(Charge.amount), 0)).where(Charge.account_id == account.id)
    if account.budget_period == "month":
        query = query.where(Charge.created_at >= month_start())
    pending = session.scalar(select(func.coalesce(func.sum(Job.max_cost), 0)).where(
        Job.account_id == account.id, Job.settled_at.is_(None)))
    return Decimal(session.scalar(query) or 0) + Decimal(pending or 0)


def move(session: Session, source: Account, target: Account, amount: object, key: str, actor: str,
         memo: str = "") -> Transfer:
    """Move money between accounts of one tenant (e.g. the tenant's wallet to a project)."""
    try:
        value = cents(to_decimal(amount))
    except (MoneyError, LedgerError) as exc:
        raise InvalidRequest(str(exc)) from None
    if value <= 0:
        raise InvalidRequest(msg("an amount to move must be positive"))
    if source.id == target.id:
        raise InvalidRequest(msg("source and target are the same account"))
    if source.tenant_id is None or source.tenant_id != target.tenant_id:
        raise InvalidRequest(msg("money moves only between accounts of the same tenant"))
    try:
        return ledger.transfer(session, key, funds.customer(session, source), funds.customer(session, target), value,
                               "transfer", check_funds=True, actor=actor,
                               memo=memo or f"from {source.name} to {target.name}")
    except ledger.InsufficientFunds:
        raise InsufficientFunds(msg("%(source)s cannot spare %(value)s",
                                    source=source.name, value=Money(value, english=ledger.money(value)))) from None
    except LedgerError as exc:  # its message (translatable) as it is
        raise InvalidRequest(exc.args[0] if len(exc.args) == 1 else str(exc)) from None


def add_contract(session: Session, tenant: Tenant, *, cluster_id: int | None = None, partition: str = "*",
                 resource: str = "*", unit_price: Decimal | None = None, discount_percent: Decimal | None = None,
                 effective_from: datetime | None = None, effective_to: datetime | None = None,
                 actor: str = "", reason: str = "") -> Contract:
    if (unit_price is None) == (discount_percent is None):
        raise InvalidRequest(msg("a contract gives either a unit price or a discount"))
    if resource not in ("*", "core_hour", "gpu_hour", "mem_gb_hour"):
        raise InvalidRequest(msg("unknown resource %(resource)r", resource=resource))
    if unit_price is not None and (resource == "*" or unit_price < 0):
        raise InvalidRequest(msg("a contract unit price needs one resource and cannot be negative"))
    if discount_percent is not None and not (Decimal(0) <= discount_percent <= Decimal(100)):
        raise InvalidRequest(msg("a discount is between 0 and 100 percent"))
    start = effective_from or utcnow()
    if effective_to is not None and effective_to <= start:
        raise InvalidRequest(msg("a contract must end after it starts"))
    contract = Contract(tenant_id=tenant.id, cluster_id=cluster_id, partition=partition, resource=resource,
                        unit_price=unit_price, discount_percent=discount_percent, effective_from=start,
                        effective_to=effective_to, actor=actor, reason=reason)
    session.add(contract)
    session.flush()
    return contract
