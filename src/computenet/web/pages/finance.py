"""Finance: top-ups (idempotent by payment reference), credit lines, month closing, statements of
every account, tenants' contracts (listed; added with `cnet admin contract-add`), and the revenue
and margin reports with charts.

Each change is its API route's (api/routers/admin.py): roles.require, the same service call, an
audit row. A top-up's key is ``topup:<reference>`` as POST /accounts/{name}/topups makes it, so a
form sent twice (or the same payment entered in the API and the portal) credits once.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from ...billing import funds
from ...billing.ledger import LedgerError
from ...domain.money import MoneyError
from ...services import audit
from ...services.billing import repricing
from ...services.tenancy import roles
from ...services.tenancy.accounts import get_account, top_up
from ...services.errors import Forbidden, InvalidRequest, NotFound, ServiceError
from ...services.tenancy.visible_projects import visible_projects
from ...store.models import ClosedPeriod, Cluster, Contract, Tenant
from ..i18n import N_
from ..render import page
from ..viewer import check_csrf, viewer
from .operations import report_page
from .projects import amount_or_none, platform_of, portal_who, refused, signed_in_user

router = APIRouter(include_in_schema=False)
NAV_LABEL = N_("Finance")  # the navigation's label (web/viewer.py _nav)
FINANCE_REPORTS = ("revenue", "margin", "customers")
DONE = {"credited": N_("The top-up was credited."),
        "already": N_("That payment reference was credited before: nothing was credited again."),
        "credit": N_("The credit line was set."), "closed": N_("The month was closed.")}


def _finance_page(request: Request, who, status: int = 200, error: str | None = None, done: str | None = None):
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        if not roles.allowed(session, me, "topup"):
            return refused(request, who, Forbidden(roles.refusal("topup")))
        names = dict(session.execute(select(Tenant.id, Tenant.name)).all())
        accounts = [{"account": a, "tenant": names.get(a.tenant_id), "funds": funds.funds(session, a)}
                    for a in visible_projects(session, me, limit=5000)]
        closed = list(session.scalars(select(ClosedPeriod).order_by(ClosedPeriod.month.desc()).limit(24)))
        clusters = dict(session.execute(select(Cluster.id, Cluster.name)).all())
        contracts = [{"contract": c, "tenant": names.get(c.tenant_id), "cluster": clusters.get(c.cluster_id)}
                     for c in session.scalars(select(Contract).order_by(Contract.tenant_id, Contract.effective_from)
                                              .limit(1000))]
        today = date.today()
        last_month = f"{today.year - (today.month == 1)}-{(today.month - 2) % 12 + 1:02d}"
        return page(request, who, "finance/index.html", status=status, error=error,
                    done=who.gettext(DONE[done]) if done in DONE else None, accounts=accounts, closed=closed,
                    contracts=contracts,
                    month=request.query_params.get("month", last_month)[:7], last_month=last_month)


@router.get("/portal/finance")
def finance(request: Request, done: str = ""):
    return _finance_page(request, viewer(request), done=done[:16])


def _change(request: Request, csrf_token: str, work):
    """Check the form, do ``work(session, me, by) -> done key``; refusals are pages, nothing half-written."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with platform_of(request).db.session() as session:
            done = work(session, signed_in_user(session, who), portal_who(request, who))
    except (NotFound, Forbidden) as exc:
        return refused(request, who, exc)
    except ServiceError as exc:
        return _finance_page(request, who, status=exc.status_code if exc.status_code == 409 else 400,
                             error=who.say(exc))
    return RedirectResponse(f"/portal/finance?done={done}", status_code=303)


@router.post("/portal/finance/topups")
def create_topup(request: Request, account: str = Form("", max_length=64), amount: str = Form("", max_length=64),
                 reference: str = Form("", max_length=150), memo: str = Form("", max_length=500),
                 csrf_token: str = Form("", max_length=100)):
    def work(session, me, by):
        target = get_account(session, account.strip())
        roles.require(session, me, "topup", target)
        value = amount_or_none(amount, "amount")
        if value is None:
            raise InvalidRequest("an amount is needed")
        if not reference.strip():
            raise InvalidRequest("a payment reference is needed (it keeps a top-up from being credited twice)")
        text = memo.strip() or "top-up"
        entry = top_up(session, target, value, key=f"topup:{reference.strip()}", memo=text, actor=by.actor)
        if entry is None:
            return "already"
        audit.record(session, by, "topup", f"account:{target.name}", amount=str(value), key=entry.key, memo=text)
        return "credited"
    return _change(request, csrf_token, work)


@router.post("/portal/finance/credit-limit")
def set_credit_limit(request: Request, account: str = Form("", max_length=64), amount: str = Form("", max_length=64),
                     csrf_token: str = Form("", max_length=100)):
    def work(session, me, by):
        target = get_account(session, account.strip())
        roles.require(session, me, "credit_limit", target)
        value = amount_or_none(amount, "credit line")
        try:
            funds.set_credit_limit(session, target, value if value is not None else "0")
        except (LedgerError, MoneyError) as exc:
            raise InvalidRequest(str(exc)) from None
        audit.record(session, by, "credit_limit.set", f"account:{target.name}", amount=str(value))
        return "credit"
    return _change(request, csrf_token, work)


@router.post("/portal/finance/months/close")
def close_month(request: Request, month: str = Form("", max_length=7), csrf_token: str = Form("", max_length=100)):
    def work(session, me, by):
        roles.require(session, me, "close_month")
        repricing.close_month(session, month.strip(), by)
        return "closed"
    return _change(request, csrf_token, work)


@router.get("/portal/finance/reports")
def reports(request: Request, name: str = "revenue"):
    return report_page(request, viewer(request), name[:16], FINANCE_REPORTS, "finance/reports.html")
