"""Money and account administration over HTTP, with role checks and an audit row per action.

Every change names its actor and the client's address in the audit log, in
the same transaction as the change.
"""

from __future__ import annotations


from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as ApiPath
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ...billing import funds
from ...billing.ledger import LedgerError
from ...domain.money import MoneyError
from ...schemas import MAX_ROW_ID, MONTH_PATTERN, Amount, Gigabytes, RowId
from ...services import audit
from ...services.billing import exhaustion, repricing
from ...services.integration import notifications
from ...services.tenancy import roles, tenants
from ...services.tenancy.accounts import get_account, get_user, top_up
from ...services.errors import InvalidRequest
from ...services.platform import Platform
from ...store.models import Account, User
from ..deps import current_user, get_platform, get_session
from ..responses import errors

router = APIRouter(tags=["admin"], responses=errors(400, 401, 402, 403, 404, 409, 413, 422, 503))


class TopUpIn(BaseModel):
    amount: Amount
    reference: str = Field(min_length=1, max_length=150, description="payment reference: the idempotency key")
    memo: str = Field("top-up", max_length=500)


class AmountIn(BaseModel):
    amount: Amount | None = None


class QuotaIn(BaseModel):
    amount: Gigabytes | None = None


class BudgetIn(BaseModel):
    amount: Amount | None = None
    period: str = "month"


class PolicyIn(BaseModel):
    policy: str
    grace_minutes: int | None = Field(None, ge=0, le=10 ** 7)


class WebhookIn(BaseModel):
    url: str | None = Field(None, max_length=2000)


class MemberIn(BaseModel):
    role: str = "member"
    spend_limit: Amount | None = None


class MoveIn(BaseModel):
    to: str
    amount: Amount
    reference: str = Field(min_length=1, max_length=150)
    memo: str = Field("", max_length=500)


class RepriceIn(BaseModel):
    job_ids: list[RowId] = Field(min_length=1, max_length=10_000)
    reason: str = Field(min_length=1, max_length=1000)
    batch: str = Field(min_length=1, max_length=100)


def _who(request: Request, user: User) -> audit.Who:
    return audit.Who.api(user.name, request.client.host if request.client else None)


def _account(session: Session, user: User, name: str, action: str) -> Account:
    account = session.get(Account, get_account(session, name).id)
    roles.require(session, user, action, account)
    return account


def _funds_out(session: Session, account: Account) -> dict:
    f = funds.funds(session, account)
    return {"account": account.name, "currency": f.currency, "balance": str(f.balance), "held": str(f.held),
            "credit_limit": str(f.credit_limit), "available": str(f.available)}


@router.post("/accounts/{name}/topups", status_code=201)
def create_topup(name: str, body: TopUpIn, request: Request, user: User = Depends(current_user),
                 session: Session = Depends(get_session)):
    account = _account(session, user, name, "topup")
    who = _who(request, user)
    entry = top_up(session, account, body.amount, key=f"topup:{body.reference}", memo=body.memo, actor=who.actor)
    if entry is not None:
        audit.record(session, who, "topup", f"account:{name}", amount=str(body.amount), key=entry.key,
                     memo=body.memo)
    session.commit()  # before the response: the next request must see it
    return {"credited": entry is not None, **_funds_out(session, account)}


@router.put("/accounts/{name}/credit-limit")
def put_credit_limit(name: str, body: AmountIn, request: Request, user: User = Depends(current_user),
                     session: Session = Depends(get_session)):
    account = _account(session, user, name, "credit_limit")
    try:
        funds.set_credit_limit(session, account, body.amount if body.amount is not None else "0")
    except (LedgerError, MoneyError) as exc:
        raise InvalidRequest(str(exc)) from None
    audit.record(session, _who(request, user), "credit_limit.set", f"account:{name}", amount=str(body.amount))
    session.commit()  # before the response: the next request must see it
    return _funds_out(session, account)


@router.put("/accounts/{name}/low-balance")
def put_low_balance(name: str, body: AmountIn, request: Request, user: User = Depends(current_user),
                    session: Session = Depends(get_session)):
    account = _account(session, user, name, "low_balance")
    notifications.set_threshold(session, account, body.amount)
    audit.record(session, _who(request, user), "low_balance.set", f"account:{name}", amount=str(body.amount))
    session.commit()  # before the response: the next request must see it
    return {"account": name, "low_balance_threshold": None if account.low_balance_threshold is None
            else str(account.low_balance_threshold)}


@router.put("/accounts/{name}/budget")
def put_budget(name: str, body: BudgetIn, request: Request, user: User = Depends(current_user),
               session: Session = Depends(get_session)):
    account = _account(session, user, name, "budget")
    tenants.set_budget(session, account, body.amount, body.period)
    audit.record(session, _who(request, user), "budget.set", f"account:{name}", amount=str(body.amount),
                 period=body.period)
    session.commit()  # before the response: the next request must see it
    return {"account": name, "budget": None if account.budget is None else str(account.budget),
            "period": account.budget_period, "spent_or_held": str(tenants.spent_on_account(session, account))}


@router.put("/accounts/{name}/storage-quota")
def put_storage_quota(name: str, body: QuotaIn, request: Request, user: User = Depends(current_user),
                      session: Session = Depends(get_session)):
    """The project workspace's quota in GB (amount null: the platform default)."""
    from ...services.files import workspaces

    account = _account(session, user, name, "storage_quota")
    quota = workspaces.set_project_quota(session, account, body.amount)
    audit.record(session, _who(request, user), "storage_quota.set", f"account:{name}", gb=str(body.amount))
    session.commit()  # before the response: the next upload must see it
    return {"account": name, "storage_quota_bytes": quota}


@router.put("/accounts/{name}/exhaustion-policy")
def put_policy(name: str, body: PolicyIn, request: Request, user: User = Depends(current_user),
               session: Session = Depends(get_session)):
    account = _account(session, user, name, "exhaustion_policy")
    exhaustion.set_policy(session, account, body.policy, body.grace_minutes)
    audit.record(session, _who(request, user), "exhaustion_policy.set", f"account:{name}", policy=body.policy,
                 grace_minutes=account.exhaustion_grace_minutes)
    session.commit()  # before the response: the next request must see it
    return {"account": name, "policy": account.exhaustion_policy, "grace_minutes": account.exhaustion_grace_minutes}


@router.put("/accounts/{name}/webhook")
def put_webhook(name: str, body: WebhookIn, request: Request, user: User = Depends(current_user),
                session: Session = Depends(get_session), platform: Platform = Depends(get_platform)):
    from ...services.integration import delivery

    account = _account(session, user, name, "webhook")
    delivery.set_webhook(session, account, body.url, platform.settings.notifications, by=user.name)
    audit.record(session, _who(request, user), "webhook.set", f"account:{name}", url=body.url)
    session.commit()  # before the response: the next request must see it
    return {"account": name, "webhook_url": account.webhook_url}


@router.put("/accounts/{name}/members/{user_name}")
def put_member(name: str, user_name: str, body: MemberIn, request: Request, user: User = Depends(current_user),
               session: Session = Depends(get_session)):
    account = _account(session, user, name, "member_set")
    member = tenants.set_member(session, account, get_user(session, user_name), body.role, body.spend_limit)
    audit.record(session, _who(request, user), "member.set", f"account:{name}", user=user_name, role=body.role,
                 spend_limit=str(body.spend_limit))
    session.commit()  # before the response: the next request must see it
    return {"account": name, "user": user_name, "role": member.role,
            "spend_limit": None if member.spend_limit is None else str(member.spend_limit)}


@router.delete("/accounts/{name}/members/{user_name}", status_code=204)
def delete_member(name: str, user_name: str, request: Request, user: User = Depends(current_user),
                  session: Session = Depends(get_session)):
    account = _account(session, user, name, "member_remove")
    tenants.remove_member(session, account, get_user(session, user_name))
    audit.record(session, _who(request, user), "member.remove", f"account:{name}", user=user_name)
    session.commit()  # before the response: the next request must see it

@router.post("/accounts/{name}/moves", status_code=201)
def create_move(name: str, body: MoveIn, request: Request, user: User = Depends(current_user),
                session: Session = Depends(get_session)):
    source = _account(session, user, name, "move")
    target = _account(session, user, body.to, "move")
    who = _who(request, user)
    row = tenants.move(session, source, target, body.amount, f"move:{body.reference}", who.actor, body.memo)
    audit.record(session, who, "move", f"account:{name}", to=body.to, amount=str(body.amount), key=row.key)
    session.commit()  # before the response: the next request must see it
    return {"from": _funds_out(session, source), "to": _funds_out(session, target)}


@router.post("/admin/reprice")
def post_reprice(body: RepriceIn, request: Request, user: User = Depends(current_user),
                 session: Session = Depends(get_session), platform: Platform = Depends(get_platform)):
    roles.require(session, user, "reprice")
    done = repricing.reprice(session, body.job_ids, body.reason, body.batch, _who(request, user),
                             platform.settings.billing)
    session.commit()  # before the response: the next request must see it
    return [{"job_id": r.job_id, "old_amount": str(r.old_amount), "new_amount": str(r.new_amount),
             "difference": str(r.difference)} for r in done]


@router.post("/admin/months/{month}/close", status_code=201)
def post_close_month(request: Request, month: str = ApiPath(pattern=MONTH_PATTERN, description="YYYY-MM"),
                     user: User = Depends(current_user),
                     session: Session = Depends(get_session)):
    roles.require(session, user, "close_month")
    repricing.close_month(session, month, _who(request, user))
    session.commit()  # before the response: the next request must see it
    return {"month": month, "closed": True}


class ReconcileIn(BaseModel):
    action: str = Field(max_length=16, description="adopt, withdraw, release or charge")
    native_id: str | None = Field(None, max_length=20, description="adopt: the job's id on the cluster")
    amount: Amount | None = Field(None, max_length=40, description="charge: what to charge, at most its max cost")
    note: str = Field("", max_length=500)


@router.get("/admin/reconcile")
def get_reconcile(user: User = Depends(current_user), session: Session = Depends(get_session)):
    """Jobs holding money that need an operator's decision (issue 13 item 4)."""
    from ...services.jobs import reconcile

    roles.require(session, user, "cluster_admin")
    return [p.to_json() for p in reconcile.needing(session)]


@router.post("/admin/reconcile/{job_id}")
def post_reconcile(body: ReconcileIn, request: Request, job_id: int = ApiPath(ge=1, le=MAX_ROW_ID),
                   user: User = Depends(current_user), session: Session = Depends(get_session)):
    from ...services.jobs import reconcile

    roles.require(session, user, "cluster_admin")
    job = reconcile.resolve(session, job_id, body.action, _who(request, user), body.native_id, body.amount,
                            body.note)
    session.commit()  # before the response: the next request must see it
    return {"id": job.id, "state": job.state, "native_id": job.native_id, "settled": job.settled_at is not None,
            "needs_reconcile": job.needs_reconcile}


@router.get("/admin/audit")
def get_audit(limit: int = Query(100, ge=1, le=10_000), action: str | None = None, target: str | None = None,
              user: User = Depends(current_user), session: Session = Depends(get_session)):
    roles.require(session, user, "audit")
    return [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "source": e.source, "action": e.action,
             "target": e.target, "detail": e.detail} for e in audit.events(session, limit, action, target)]


# -- the cluster registry ------------------------------------------------------

@router.get("/admin/clusters")
def list_clusters(user: User = Depends(current_user), session: Session = Depends(get_session),
                  platform: Platform = Depends(get_platform)):
    from ...services.network import registry

    roles.require(session, user, "cluster_admin")
    return registry.listing(session, platform)


@router.post("/admin/clusters", status_code=201)
async def register_cluster(body: dict, request: Request, user: User = Depends(current_user),
                           platform: Platform = Depends(get_platform)):
    from fastapi.concurrency import run_in_threadpool

    from ...services.network import registry

    with platform.db.session() as session:
        roles.require(session, user, "cluster_admin")
    cluster = await run_in_threadpool(registry.register, platform, body, _who(request, user))
    return {"name": cluster.name, "health": cluster.health, "detail": cluster.health_detail}


@router.patch("/admin/clusters/{name}")
async def update_cluster(name: str, body: dict, request: Request, user: User = Depends(current_user),
                         platform: Platform = Depends(get_platform)):
    from fastapi.concurrency import run_in_threadpool

    from ...services.network import registry

    with platform.db.session() as session:
        roles.require(session, user, "cluster_admin")
    cluster = await run_in_threadpool(registry.update, platform, name, body, _who(request, user))
    return {"name": cluster.name, "health": cluster.health, "detail": cluster.health_detail}


@router.delete("/admin/clusters/{name}", status_code=204)
def deregister_cluster(name: str, request: Request, user: User = Depends(current_user),
                       platform: Platform = Depends(get_platform)):
    from ...services.network import registry

    with platform.db.session() as session:
        roles.require(session, user, "cluster_admin")
    registry.deregister(platform, name, _who(request, user))
