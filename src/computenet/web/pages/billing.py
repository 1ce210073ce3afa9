"""Billing: each account's balance, what is held and what is available; usage over the last months by
project, cluster and product line (charts, with the figures as tables); monthly statements (view,
CSV and PDF through the API's GET /accounts/{name}/statements/{month}); notices with mark-as-read.

The figures come from the queries `cnet balance`, `cnet usage` (services/billing/usage.py) and `cnet bill`
(billing/statements.py) use; who may see which account is services/tenancy/roles.py's.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from ...billing import funds
from ...billing.document import statement_document, statement_header
from ...billing.statements import month_bounds, statement, statements_for_month
from ...schemas import MAX_ROW_ID, MONTH_PATTERN
from ...services.integration import notifications
from ...services.billing import usage as usage_service
from ...services.tenancy.accounts import accounts_of
from ...services.errors import InvalidRequest, NotFound, ServiceError
from ...services.platform import Platform
from ...services.tenancy.roles import can_see_account
from ...store.models import Account, Tenant, User
from ..render import page
from ..viewer import check_csrf, viewer

router = APIRouter(include_in_schema=False)


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def last_months(count: int, now: datetime | None = None) -> list[str]:
    """The last ``count`` calendar months (UTC, as statements count them), oldest first, this one last."""
    now = now or datetime.now(timezone.utc)
    year, month = now.year, now.month
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def usage_by_month(session, user: User, by: str, months: list[str]) -> dict[str, dict[str, Decimal]]:
    """key -> month -> cost, from the same query as GET /usage (one call per month)."""
    out: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for month in months:
        start, end = month_bounds(month)
        for row in usage_service.usage(session, user, by, start, end):
            out[row.key][month] = row.cost
    return dict(out)


def product_lines_by_month(session, accounts: list[Account], months: list[str]) -> dict[str, dict[str, Decimal]]:
    """product line -> month -> charges, summed over the accounts' monthly statements."""
    out: dict[str, dict[str, Decimal]] = defaultdict(dict)
    ids = [a.id for a in accounts]
    for month in months:
        for found in statements_for_month(session, month, ids).values() if ids else []:
            for line, total in found.by_product_line.items():
                out[line][month] = out[line].get(month, Decimal("0")) + total
    return dict(out)


def chart_option(series: dict[str, dict[str, Decimal]], months: list[str], currency: str) -> dict:
    """An ECharts stacked bar chart: one bar per month, one colour per key."""
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"type": "scroll", "bottom": 0},
        "grid": {"left": 60, "right": 16, "top": 24, "bottom": 56},
        "xAxis": {"type": "category", "data": months, "axisLabel": {"hideOverlap": True}},
        "yAxis": {"type": "value", "name": currency, "axisLabel": {"formatter": "thousands"}},
        "series": [{"name": key, "type": "bar", "stack": "cost",
                    "data": [float(values.get(m, 0)) for m in months]}
                   for key, values in sorted(series.items())],
    }


@router.get("/portal/billing")
def billing(request: Request, months: int = Query(6, ge=1, le=24)):
    who = viewer(request)
    platform = _platform(request)
    shown = last_months(months)
    with platform.db.session() as session:
        user = session.get(User, who.user.id)
        mine = accounts_of(session, user)
        money = [(account, funds.funds(session, account)) for account in mine]
        views = {"account": usage_by_month(session, user, "account", shown),
                 "cluster": usage_by_month(session, user, "cluster", shown),
                 "product_line": product_lines_by_month(session, mine, shown)}
        notices = notifications.for_user(session, user, limit=50)
        return page(request, who, "billing/overview.html", money=money, months=shown, count=months,
                    views=views, charts={name: chart_option(series, shown, platform.settings.currency)
                                         for name, series in views.items()},
                    statement_months=shown[::-1], notices=notices)


@router.get("/portal/billing/statements/{name}/{month}")
def statement_page(request: Request, name: str = Path(max_length=128), month: str = Path(max_length=16)):
    """One month's statement of one account in the viewer's language: the same document (and template,
    billing/_document.html) as GET /accounts/{name}/statements/{month}?format=pdf prints."""
    who = viewer(request)
    settings = _platform(request).settings
    try:
        with _platform(request).db.session() as session:
            user = session.get(User, who.user.id)
            account = session.scalar(select(Account).where(Account.name == name))
            # an account you may not see is "not found", as in the API
            if account is None or not can_see_account(session, user, account):
                raise NotFound(f"no account {name!r} of yours")
            if not re.fullmatch(MONTH_PATTERN, month):
                raise InvalidRequest(f"invalid month {month!r} (use YYYY-MM)")
            result = statement(session, account, month)
            tenant = session.get(Tenant, account.tenant_id) if account.tenant_id else None
            header = statement_header(settings.billing.issuer, account.id, tenant.name if tenant else "", month,
                                      settings.display_timezone, who.language)
    except ServiceError as exc:
        return page(request, who, "billing/refused.html", status=exc.status_code,
                    title=who.gettext("No such statement"), message=who.say(exc))
    return page(request, who, "billing/statement.html", s=result, doc=statement_document(result, header),
                job_link=lambda job: f"/portal/jobs/{job}")


@router.get("/portal/billing/invoices/{name}/{month}")
def invoice_page(request: Request, name: str = Path(max_length=128), month: str = Path(max_length=16)):
    """The invoice of a closed month in the viewer's language, from the same document the PDF prints.
    Opening it issues it if it was not yet: issuing is idempotent and a closed month's figures final."""
    from ...billing.document import invoice_document
    from ...services.billing import invoices

    who = viewer(request)
    platform = _platform(request)
    try:
        with platform.db.session() as session:
            user = session.get(User, who.user.id)
            account = session.scalar(select(Account).where(Account.name == name))
            if account is None or not can_see_account(session, user, account):
                raise NotFound(f"no account {name!r} of yours")
            if not re.fullmatch(MONTH_PATTERN, month):
                raise InvalidRequest(f"invalid month {month!r} (use YYYY-MM)")
            found = invoices.issue(session, account, month, platform.settings, user.name)
    except ServiceError as exc:
        return page(request, who, "billing/refused.html", status=exc.status_code,
                    title=who.gettext("No such invoice"), message=who.say(exc))
    return page(request, who, "billing/invoice.html", doc=invoice_document(found, who.language), account=name,
                month=month)


@router.post("/portal/billing/notices/{notice_id}/read")
def mark_read(request: Request, notice_id: int = Path(ge=1, le=MAX_ROW_ID),
              csrf_token: str = Form("", max_length=100)):
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with _platform(request).db.session() as session:
            notifications.mark_read(session, session.get(User, who.user.id), notice_id)
    except ServiceError as exc:
        return page(request, who, "billing/refused.html", status=exc.status_code,
                    title=who.gettext("No such notice"), message=who.say(exc))
    return RedirectResponse("/portal/billing#notices-h", status_code=303)
