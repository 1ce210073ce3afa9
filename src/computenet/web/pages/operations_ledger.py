"""Operations: accounts and money, what `cnet admin project-add | move | contract-add | exhaustion-policy |
storage-quota | check-ledger` do, for the roles roles.py gives each action.

Projects, moves and contracts are services/billing/ledger_admin.py's (the CLI calls the same functions);
the exhaustion policy and the storage quota are PUT /accounts/{name}/exhaustion-policy and
/storage-quota's service calls with their audit rows; the ledger check is accounts.ledger_problems.
A move's key is ``move:<reference>`` as POST /accounts/{name}/moves makes it, so a form sent twice
moves once. A refusal is a page and writes nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select

from ...billing import funds
from ...schemas import Gigabytes
from ...services.tenancy import accounts, roles
from ...services import audit
from ...services.billing import exhaustion, ledger_admin
from ...services.files import workspaces
from ...services.errors import Forbidden, InvalidRequest, NotFound, ServiceError
from ...store.models import Account, Cluster, Tenant
from ..i18n import N_
from ..render import Viewer
from ..viewer import check_csrf, viewer
from .operations import _ops_page
from .projects import amount_or_none, platform_of, portal_who, refused, signed_in_user

router = APIRouter(include_in_schema=False)
PAGE = "/portal/operations/ledger"
ACTIONS = ("project_add", "move", "contract_add", "exhaustion_policy", "storage_quota", "reports")
DONE = {"project": N_("The project was added."), "moved": N_("The money was moved."),
        "already": N_("That reference was moved before: nothing was moved again."),
        "contract": N_("The contract was added."), "policy": N_("The exhaustion policy was set."),
        "quota": N_("The workspace quota was set.")}
POLICY_WORDS = {"block": N_("block new jobs"), "hold": N_("hold running jobs"), "cancel": N_("cancel running jobs")}
RESOURCE_WORDS = {"*": N_("every resource"), "core_hour": N_("core-hour"), "gpu_hour": N_("GPU-hour"),
                  "mem_gb_hour": N_("memory GB-hour")}
_GB = TypeAdapter(Gigabytes)


def may(session, me) -> dict[str, bool]:
    """Which of this page's actions the viewer holds anywhere (a tenant admin: on their tenants)."""
    tenants = {None, *roles.admin_tenants(me)}
    return {a: any(roles.allowed(session, me, a, tenant_id=t) for t in tenants) for a in ACTIONS}


def _page(request: Request, who: Viewer, status: int = 200, error: str | None = None, done: str = "",
          check: bool = False):
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        allowed = may(session, me)
        if not any(allowed.values()):
            return refused(request, who, Forbidden(roles.refusal("move")))
        names = dict(session.execute(select(Tenant.id, Tenant.name)).all())
        tenant_ids = [t for t in names if roles.allowed(session, me, "project_add", tenant_id=t)]
        rows = []
        for a in session.scalars(select(Account).order_by(Account.name).limit(5000)):
            if not roles.can_see_account(session, me, a):
                continue
            rows.append({"account": a, "tenant": names.get(a.tenant_id), "funds": funds.funds(session, a),
                         "movable": a.tenant_id is not None and roles.allowed(session, me, "move", a)})
        problems = accounts.ledger_problems(session) if check and allowed["reports"] else None
        clusters = list(session.scalars(select(Cluster.name).order_by(Cluster.name)))
        return _ops_page(request, who, session, me, "ledger/ledger.html", status=status, error=error,
                         done=who.gettext(DONE[done]) if done in DONE else None, may=allowed,
                         project_tenants=sorted(names[t] for t in tenant_ids), tenant_names=sorted(names.values()),
                         accounts=rows, movable=[r for r in rows if r["movable"]], problems=problems,
                         checked=problems is not None, policies=exhaustion.POLICIES, policy_words=POLICY_WORDS,
                         resources=ledger_admin.RESOURCES, resource_words=RESOURCE_WORDS, clusters=clusters)


@router.get(PAGE)
def ledger(request: Request, done: str = "", check: str = ""):
    return _page(request, viewer(request), done=done[:16], check=check == "1")


def _change(request: Request, csrf_token: str, work):
    """Check the form, do ``work(session, me, by) -> done key``; a refusal is a page, nothing is written."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with platform_of(request).db.session() as session:
            done = work(session, signed_in_user(session, who), portal_who(request, who))
    except (NotFound, Forbidden) as exc:
        return refused(request, who, exc)
    except ServiceError as exc:
        return _page(request, who, status=exc.status_code if exc.status_code in (402, 409) else 400, error=who.say(exc))
    return RedirectResponse(f"{PAGE}?done={done}", status_code=303)


def _needed(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidRequest(f"{what}: this field is needed")
    return value


@router.post(f"{PAGE}/projects")
def add_project(request: Request, tenant: str = Form("", max_length=64), name: str = Form("", max_length=64),
                pi: str = Form("", max_length=64), csrf_token: str = Form("", max_length=100)):
    def work(session, me, by):
        ledger_admin.add_project(session, me, by, _needed(tenant, "tenant"), _needed(name, "project name"),
                                 pi.strip() or None)
        return "project"
    return _change(request, csrf_token, work)


@router.post(f"{PAGE}/moves")
def move(request: Request, source: str = Form("", max_length=64), target: str = Form("", max_length=64),
         amount: str = Form("", max_length=64), reference: str = Form("", max_length=150),
         memo: str = Form("", max_length=500), csrf_token: str = Form("", max_length=100)):
    def work(session, me, by):
        value = amount_or_none(amount, "amount")
        if value is None:
            raise InvalidRequest("amount: an amount is needed")
        key = f"move:{_needed(reference, 'reference (it keeps a move from happening twice)')}"
        _, fresh = ledger_admin.move(session, me, by, _needed(source, "from account"), _needed(target, "to account"),
                                     value, key, memo.strip())
        return "moved" if fresh else "already"
    return _change(request, csrf_token, work)


@router.post(f"{PAGE}/contracts")
def add_contract(request: Request, tenant: str = Form("", max_length=64), terms: str = Form("", max_length=16),
                 value: str = Form("", max_length=40), resource: str = Form("*", max_length=16),
                 cluster: str = Form("", max_length=64), partition: str = Form("", max_length=64),
                 reason: str = Form("", max_length=500), csrf_token: str = Form("", max_length=100)):
    def work(session, me, by):
        if terms not in ("discount", "price"):
            raise InvalidRequest("terms: choose a discount or a unit price")
        number = _needed(value, "discount" if terms == "discount" else "price")
        ledger_admin.add_contract(session, me, by, _needed(tenant, "tenant"),
                                  discount=number if terms == "discount" else None,
                                  price=number if terms == "price" else None, resource=resource,
                                  cluster=cluster.strip() or None, partition=partition.strip() or "*",
                                  reason=reason.strip())
        return "contract"
    return _change(request, csrf_token, work)


@router.post(f"{PAGE}/exhaustion-policy")
def set_policy(request: Request, account: str = Form("", max_length=64), policy: str = Form("", max_length=16),
               grace: str = Form("", max_length=12), csrf_token: str = Form("", max_length=100)):
    def work(session, me, by):
        target = accounts.get_account(session, _needed(account, "account"))
        roles.require(session, me, "exhaustion_policy", target)
        minutes = grace.strip()
        if minutes and not minutes.isdigit():
            raise InvalidRequest(f"grace minutes: {minutes!r} is not a whole number of minutes")
        exhaustion.set_policy(session, target, policy, int(minutes) if minutes else None)
        audit.record(session, by, "exhaustion_policy.set", f"account:{target.name}", policy=policy,
                     grace_minutes=target.exhaustion_grace_minutes)
        return "policy"
    return _change(request, csrf_token, work)


@router.post(f"{PAGE}/storage-quota")
def set_quota(request: Request, account: str = Form("", max_length=64), gb: str = Form("", max_length=64),
              csrf_token: str = Form("", max_length=100)):
    def work(session, me, by):
        target = accounts.get_account(session, _needed(account, "account"))
        roles.require(session, me, "storage_quota", target)
        value = gb.strip() or None
        if value is not None:
            try:
                value = _GB.validate_python(value)
            except ValidationError as exc:
                raise InvalidRequest(f"quota in GB: {exc.errors()[0]['msg']}") from None
        workspaces.set_project_quota(session, target, value)
        audit.record(session, by, "storage_quota.set", f"account:{target.name}", gb=str(value))
        return "quota"
    return _change(request, csrf_token, work)
