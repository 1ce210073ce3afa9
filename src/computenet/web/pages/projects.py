"""Projects for PIs and tenant admins: the projects one may see, their members with roles and
spending limits, budgets, low-balance notices, webhooks, and who wastes what (in money).

Each change is what PUT /accounts/{name}/... does (api/routers/admin.py): roles.require for the
action, the same service call, an audit row. A project one may not see is a 404 page, an action
one may not take a 403 page: the services' own NotFound and Forbidden, turned into pages here.
"""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select

from ...billing import funds
from ...schemas import MAX_ROW_ID, Amount
from ...services import audit
from ...services.integration import delivery, notifications, webhooks
from ...services.tenancy import roles, tenants
from ...services.tenancy.accounts import get_account, get_user
from ...services.monitoring.efficiency_report import efficiency_report
from ...services.errors import Forbidden, InvalidRequest, NotFound, ServiceError
from ...services.platform import Platform
from ...services.tenancy.visible_projects import visible_projects
from ...store.models import Account, AccountMember, Tenant, User
from ..render import Viewer, page
from ..viewer import check_csrf, viewer

router = APIRouter(include_in_schema=False)
PROJECT_ACTIONS = ("member_set", "member_remove", "budget", "low_balance", "webhook")
_AMOUNT = TypeAdapter(Amount)


# -- shared by the staff areas (finance.py, operations.py) ------------------------------

def platform_of(request: Request) -> Platform:
    return request.app.state.platform


def portal_who(request: Request, who: Viewer) -> audit.Who:
    """The audit log's actor and source for a change made in the portal."""
    return audit.Who(who.user.name, f"portal {request.client.host if request.client else 'unknown'}")


def refused(request: Request, who: Viewer, exc: ServiceError):
    """A service's refusal as a page: 403 Forbidden, 404 NotFound, 409 Conflict, else 400."""
    status = exc.status_code if exc.status_code in (402, 403, 404, 409, 413) else 400
    titles = {403: who.gettext("Not allowed"), 404: who.gettext("Not found")}
    return page(request, who, "error.html", status=status,
                title=titles.get(status, who.gettext("This could not be done")), message=who.say(exc))


def amount_or_none(text: str, what: str) -> str | None:
    """A form's amount: blank is "none"; anything else must be a bounded decimal (the API's check)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return _AMOUNT.validate_python(text)
    except ValidationError as exc:
        raise InvalidRequest(f"{what}: {exc.errors()[0]['msg']}") from None


def signed_in_user(session, who: Viewer) -> User:
    """The viewer's row in this session (grants loaded: roles.py reads them)."""
    return session.get(User, who.user.id)


# -- pages ------------------------------------------------------------------------------

@router.get("/portal/projects")
def projects(request: Request):
    who = viewer(request)
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        names = dict(session.execute(select(Tenant.id, Tenant.name)).all())
        rows = [{"account": a, "tenant": names.get(a.tenant_id), "funds": funds.funds(session, a),
                 "manages": roles.manages_project(session, me, a),
                 "my_role": session.scalar(select(AccountMember.role).where(
                     AccountMember.account_id == a.id, AccountMember.user_id == me.id))}
                for a in visible_projects(session, me)]
        return page(request, who, "projects/index.html", rows=rows)


def _project_page(request: Request, who: Viewer, name: str, status: int = 200, error: str | None = None,
                  made_endpoint: dict | None = None):
    platform = platform_of(request)
    with platform.db.session() as session:
        me = signed_in_user(session, who)
        account = session.scalar(select(Account).where(Account.name == name))
        if account is None or not roles.can_see_account(session, me, account):
            return refused(request, who, NotFound(f"no project {name!r} of yours"))
        may = {action: roles.allowed(session, me, action, account) for action in PROJECT_ACTIONS}
        members = [{"name": u.name, "display_name": u.display_name, "role": m.role, "spend_limit": m.spend_limit,
                    "spent": tenants.spent_this_month(session, u, account)}
                   for m, u in session.execute(select(AccountMember, User).join(User, User.id == AccountMember.user_id)
                                               .where(AccountMember.account_id == account.id).order_by(User.name))]
        jobs = efficiency_report(session, platform, me, project=name, limit=200)
        hooks = {"endpoints": webhooks.endpoints(session, account),
                 "deliveries": webhooks.deliveries(session, account, limit=10)} if may["webhook"] else None
        return page(request, who, "projects/project.html", status=status, error=error, account=account,
                    funds=funds.funds(session, account), may=may, members=members, jobs=jobs[:20],
                    waste=_waste_by_user(jobs), spent=tenants.spent_on_account(session, account),
                    manages=roles.manages_project(session, me, account), hooks=hooks, made_endpoint=made_endpoint)


def _waste_by_user(rows: list[dict]) -> list[dict]:
    """Who wastes what: money paid for idle cores, memory and GPUs, per user, most first."""
    per: dict[str, dict] = {}
    for row in rows:
        entry = per.setdefault(row["user"], {"user": row["user"], "jobs": 0, "price": Decimal(0), "wasted": Decimal(0)})
        entry["jobs"] += 1
        entry["price"] += Decimal(str(row["price"] or 0))
        entry["wasted"] += Decimal(str(row["wasted"] or 0))
    return sorted(per.values(), key=lambda e: e["wasted"], reverse=True)


@router.get("/portal/projects/{name}")
def project(request: Request, name: str):
    return _project_page(request, viewer(request), name[:64])


def _change(request: Request, name: str, csrf_token: str, action: str, work):
    """Check the form, require the action on the project (roles.py), do ``work(session, me, account)``
    and record it; a refusal is a page, and nothing is written."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with platform_of(request).db.session() as session:
            me = signed_in_user(session, who)
            account = get_account(session, name)
            roles.require(session, me, action, account)
            work(session, me, account, portal_who(request, who))
    except (NotFound, Forbidden) as exc:
        return refused(request, who, exc)
    except ServiceError as exc:
        return _project_page(request, who, name, status=400, error=who.say(exc))
    return RedirectResponse(f"/portal/projects/{name}", status_code=303)


@router.post("/portal/projects/{name}/members")
def set_member(request: Request, name: str, user_name: str = Form("", max_length=64),
               role: str = Form("member", max_length=16), spend_limit: str = Form("", max_length=64),
               csrf_token: str = Form("", max_length=100)):
    def work(session, me, account, by):
        limit = amount_or_none(spend_limit, "spending limit")
        member = get_user(session, user_name.strip())
        tenants.set_member(session, account, member, role, limit)
        audit.record(session, by, "member.set", f"account:{name}", user=member.name, role=role,
                     spend_limit=str(limit))
    return _change(request, name, csrf_token, "member_set", work)


@router.post("/portal/projects/{name}/members/{user_name}/remove")
def remove_member(request: Request, name: str, user_name: str, csrf_token: str = Form("", max_length=100)):
    def work(session, me, account, by):
        tenants.remove_member(session, account, get_user(session, user_name))
        audit.record(session, by, "member.remove", f"account:{name}", user=user_name)
    return _change(request, name, csrf_token, "member_remove", work)


@router.post("/portal/projects/{name}/budget")
def set_budget(request: Request, name: str, amount: str = Form("", max_length=64),
               period: str = Form("month", max_length=8), csrf_token: str = Form("", max_length=100)):
    def work(session, me, account, by):
        value = amount_or_none(amount, "budget")
        tenants.set_budget(session, account, value, period)
        audit.record(session, by, "budget.set", f"account:{name}", amount=str(value), period=period)
    return _change(request, name, csrf_token, "budget", work)


@router.post("/portal/projects/{name}/low-balance")
def set_low_balance(request: Request, name: str, amount: str = Form("", max_length=64),
                    csrf_token: str = Form("", max_length=100)):
    def work(session, me, account, by):
        value = amount_or_none(amount, "low-balance threshold")
        notifications.set_threshold(session, account, value)
        audit.record(session, by, "low_balance.set", f"account:{name}", amount=str(value))
    return _change(request, name, csrf_token, "low_balance", work)


@router.post("/portal/projects/{name}/webhook")
def set_webhook(request: Request, name: str, url: str = Form("", max_length=2000),
                csrf_token: str = Form("", max_length=100)):
    def work(session, me, account, by):
        delivery.set_webhook(session, account, url.strip() or None, platform_of(request).settings.notifications,
                             by=me.name)
        audit.record(session, by, "webhook.set", f"account:{name}", url=url.strip() or None)
    return _change(request, name, csrf_token, "webhook", work)


@router.post("/portal/projects/{name}/webhooks")
def add_webhook(request: Request, name: str, url: str = Form("", max_length=2000),
                event_types: str = Form("*", max_length=2000), description: str = Form("", max_length=200),
                csrf_token: str = Form("", max_length=100)):
    """A webhook endpoint; the page then shows its signing secret, this once."""
    made: dict = {}

    def work(session, me, account, by):
        settings = platform_of(request).settings
        endpoint = webhooks.add_endpoint(session, account, url, event_types.replace(",", " ").split(),
                                         settings.notifications, me.name, description.strip(),
                                         max_endpoints=settings.webhooks.max_endpoints)
        audit.record(session, by, "webhook.add", f"account:{name}", endpoint=endpoint.id, url=endpoint.url,
                     event_types=endpoint.event_types)
        made.update(id=endpoint.id, secret=endpoint.secret)
    response = _change(request, name, csrf_token, "webhook", work)
    if made and isinstance(response, RedirectResponse):
        return _project_page(request, viewer(request), name, made_endpoint=made)
    return response


@router.post("/portal/projects/{name}/webhooks/{endpoint_id}/remove")
def remove_webhook(request: Request, name: str, endpoint_id: int = Path(ge=1, le=MAX_ROW_ID),
                   csrf_token: str = Form("", max_length=100)):
    def work(session, me, account, by):
        endpoint = webhooks.remove_endpoint(session, account, endpoint_id)
        audit.record(session, by, "webhook.remove", f"account:{name}", endpoint=endpoint_id, url=endpoint.url)
    return _change(request, name, csrf_token, "webhook", work)
