"""Money administration shared by `cnet admin` and the portal: adding a project under a tenant, moving
money between a tenant's accounts, contract prices, re-pricing (previewed, then applied once).

``me`` is the acting user, checked with roles.py; None is the CLI on the server host (the shell user
is the operator there, as for every `cnet admin` command). Each change is audited here, in the same
transaction, so the CLI and the portal write the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...config import BillingConfig
from ...store.models import Account, ChargeAdjustment, Cluster, Contract, Tenant, Transfer, User
from .. import audit
from . import repricing
from ..tenancy import roles, tenants
from ..tenancy.accounts import get_account, get_user
from ..errors import Conflict, InvalidRequest, NotFound
from ...messages import msg

MAX_REPRICE_JOBS = 10_000  # as POST /admin/reprice
RESOURCES = ("*", "core_hour", "gpu_hour", "mem_gb_hour")


def _require(session: Session, me: User | None, action: str, account: Account | None = None,
             tenant_id: int | None = None) -> None:
    if me is not None:
        roles.require(session, me, action, account, tenant_id)


def _tenant(session: Session, me: User | None, name: str, action: str) -> Tenant:
    """A tenant by name; one the user may not act on answers as a missing one (its name is not told)."""
    tenant = tenants.get_tenant(session, name)
    if me is not None and not roles.allowed(session, me, action, tenant_id=tenant.id):
        if any(roles.allowed(session, me, action, tenant_id=t) for t in {None, *roles.admin_tenants(me)}):
            raise NotFound(msg("no tenant %(name)r", name=name))
        _require(session, me, action, tenant_id=tenant.id)
    return tenant


def add_project(session: Session, me: User | None, who: audit.Who, tenant: str, name: str,
                pi: str | None = None) -> Account:
    """A project account under a tenant, with its PI (operators; a tenant admin in their own tenant)."""
    owner = _tenant(session, me, tenant, "project_add")
    lead = get_user(session, pi) if pi else None
    project = tenants.create_project(session, owner, name, lead)
    audit.record(session, who, "project.add", f"account:{name}", tenant=owner.name, pi=pi)
    return project


def move(session: Session, me: User | None, who: audit.Who, source: str, target: str, amount: object,
         key: str, memo: str = "") -> tuple[Transfer, bool]:
    """Money between two accounts of one tenant, once per key: (the transfer, whether it is new)."""
    accounts = [get_account(session, source), get_account(session, target)]
    for account in accounts:
        _require(session, me, "move", account)
    before = session.scalar(select(Transfer.id).where(Transfer.key == key))
    row = tenants.move(session, *accounts, amount, key, who.actor, memo)
    fresh = before is None
    if fresh:
        audit.record(session, who, "move", f"account:{source}", to=target, amount=str(amount), key=row.key)
    return row, fresh


def _number(text: str | None, what: str) -> Decimal | None:
    if text is None or not str(text).strip():
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise InvalidRequest(msg("%(what)s %(text)r is not a number", what=what, text=text)) from None
    if not value.is_finite() or abs(value) >= Decimal(10) ** 12:
        raise InvalidRequest(msg("%(what)s %(text)r is not a usable number", what=what, text=text))
    return value


def add_contract(session: Session, me: User | None, who: audit.Who, tenant: str, *, discount: str | None = None,
                 price: str | None = None, resource: str = "*", cluster: str | None = None,
                 partition: str = "*", reason: str = "") -> Contract:
    """Contract prices for a tenant: a discount in percent, or a unit price for one resource."""
    _require(session, me, "contract_add")
    owner = tenants.get_tenant(session, tenant)
    cluster_id = None
    if cluster:
        cluster_id = session.scalar(select(Cluster.id).where(Cluster.name == cluster))
        if cluster_id is None:
            raise InvalidRequest(msg("unknown cluster %(cluster)r", cluster=cluster))
    contract = tenants.add_contract(session, owner, cluster_id=cluster_id, partition=partition or "*",
                                    resource=resource, unit_price=_number(price, "price"),
                                    discount_percent=_number(discount, "discount"), actor=who.actor, reason=reason)
    audit.record(session, who, "contract.add", f"tenant:{tenant}", discount=discount, price=price,
                 resource=resource, cluster=cluster, partition=partition, reason=reason)
    return contract


def job_ids(text: str) -> list[int]:
    """Job ids typed as "12, 13 14"; a clear error naming the first that is not one."""
    ids = []
    for part in text.replace(",", " ").split():
        if not part.isdigit() or not 1 <= int(part) < 2**63:
            raise InvalidRequest(msg("job ids: %(part)r is not a job id", part=part))
        ids.append(int(part))
    if not ids:
        raise InvalidRequest(msg("job ids: name the jobs to re-price"))
    if len(ids) > MAX_REPRICE_JOBS:
        raise InvalidRequest(msg("job ids: at most %(most)s at once", most=MAX_REPRICE_JOBS))
    return sorted(set(ids))


@dataclass(frozen=True)
class RepriceOutcome:
    rows: list[repricing.Repriced]
    applied: bool  # False: the batch was applied before (or this is a preview); nothing was written now

    @property
    def total(self) -> Decimal:
        return sum((r.difference for r in self.rows), Decimal(0))


def preview_reprice(session: Session, me: User | None, ids: list[int], reason: str,
                    billing: BillingConfig) -> RepriceOutcome:
    """What re-pricing would move, by running it and rolling it back (the very code that applies it)."""
    _require(session, me, "reprice")
    nested = session.begin_nested()
    try:
        rows = repricing.reprice(session, ids, reason, "preview", audit.SYSTEM, billing)
    finally:
        nested.rollback()
    return RepriceOutcome(rows, applied=False)


def apply_reprice(session: Session, me: User | None, who: audit.Who, ids: list[int], reason: str, batch: str,
                  billing: BillingConfig) -> RepriceOutcome:
    """Re-price once per batch key: a batch already applied answers with what it did, writing nothing."""
    _require(session, me, "reprice")
    done = session.scalars(select(ChargeAdjustment).where(ChargeAdjustment.batch == batch)).all()
    if done:
        from ...store.models import Charge

        charges = {c.id: c.job_id for c in session.scalars(select(Charge).where(
            Charge.id.in_([d.charge_id for d in done])))}
        if sorted(set(charges.values())) != ids:
            raise Conflict(msg("batch %(batch)r was applied to other jobs", batch=batch))
        return RepriceOutcome([repricing.Repriced(charges[d.charge_id], d.charge_id, d.old_amount, d.new_amount)
                               for d in done], applied=False)
    return RepriceOutcome(repricing.reprice(session, ids, reason, batch, who, billing), applied=True)
