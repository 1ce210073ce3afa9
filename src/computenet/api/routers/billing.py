"""/usage, /accounts/{name}/statements and /accounts/{name}/invoices: what was used and what it cost."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy import select

from ...billing.document import statement_document, statement_header
from ...billing.pdf import document_pdf
from ...billing.statements import month_bounds, statement
from ...schemas import MONTH_PATTERN, UsageRowOut
from ...messages import msg
from ...services.billing import invoices
from ...services.billing import usage as usage_service
from ...services.errors import InvalidRequest, NotFound
from ...services.platform import Platform
from ...services.tenancy.tenants import can_see_account
from ...store.models import Account, Tenant, User
from ..deps import current_user, get_platform, get_session
from ..responses import errors

router = APIRouter(tags=["billing"], responses=errors(400, 401, 404, 422))


@router.get("/usage", response_model=list[UsageRowOut])
def usage(
    by: str = Query("cluster", description="user, account, cluster, partition or day"),
    start: datetime | None = Query(None, alias="from"),
    end: datetime | None = Query(None, alias="to"),
    user: User = Depends(current_user),
    session=Depends(get_session),
):
    for moment in (start, end):
        if moment is not None and moment.tzinfo is None:
            raise InvalidRequest("give times with a zone, e.g. 2026-11-01T00:00:00Z")
    rows = usage_service.usage(session, user, by, start, end)
    return [UsageRowOut(**row.__dict__) for row in rows]


@router.get("/accounts/{name}/statements/{month}")
def monthly_statement(name: str, month: str = Path(pattern=MONTH_PATTERN, description="YYYY-MM"),
                      format: str = Query("json", pattern="^(json|csv|summary-csv|pdf|html)$",
                                          description="json; csv (the lines); summary-csv (the totals); pdf; html "
                                                      "(the same document as the PDF)"),
                      lang: Optional[str] = Query(None, pattern="^(en|zh-CN)$",
                                                  description="the PDF's language (default: Accept-Language)"),
                      accept_language: Optional[str] = Header(None),
                      user: User = Depends(current_user), session=Depends(get_session),
                      platform: Platform = Depends(get_platform)):
    account = session.scalar(select(Account).where(Account.name == name))
    # an account you may not see is "not found": its existence is not your business
    if account is None or not can_see_account(session, user, account):
        raise NotFound(f"no account {name!r} of yours")
    try:
        month_bounds(month)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    result = statement(session, account, month)
    if format in ("pdf", "html"):
        settings = platform.settings
        tenant = session.get(Tenant, account.tenant_id) if account.tenant_id else None
        wanted = lang or ("zh-CN" if (accept_language or "").lower().startswith("zh") else "en")
        header = statement_header(settings.billing.issuer, account.id, tenant.name if tenant else "", month,
                                  settings.display_timezone, wanted)
        doc = statement_document(result, header)
        if format == "html":
            return _document_page(doc)
        return Response(document_pdf(doc), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}-{month}.pdf"'})
    if format in ("csv", "summary-csv"):
        body, suffix = (result.to_csv(), "") if format == "csv" else (result.summary_csv(), "-summary")
        return PlainTextResponse(body, media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{name}-{month}{suffix}.csv"'})
    return result.to_json()


INVOICE_FORMATS = "^(json|pdf|html)$"


def _visible_account(session, user: User, name: str) -> Account:
    account = session.scalar(select(Account).where(Account.name == name))
    if account is None or not can_see_account(session, user, account):
        raise NotFound(msg("no account %(name)r of yours", name=name))
    return account


def _invoice_response(invoice, name: str, month: str, format: str, language: str):
    if format == "json":
        return invoice.to_json()
    from ...billing.document import invoice_document

    doc = invoice_document(invoice, language)
    if format == "pdf":
        return Response(document_pdf(doc), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{invoice.number}.pdf"'})
    return _document_page(doc)


def _document_page(doc) -> HTMLResponse:
    """The page of a statement or invoice: the portal's document template, as the PDF says it."""
    from ...web.render import SECURITY_HEADERS, environment

    return HTMLResponse(environment(doc.language).get_template("billing/document.html").render(doc=doc),
                        headers=SECURITY_HEADERS)


@router.post("/accounts/{name}/invoices/{month}", responses=errors(409))
def issue_invoice(name: str, month: str = Path(pattern=MONTH_PATTERN, description="YYYY-MM, a closed month"),
                  user: User = Depends(current_user), session=Depends(get_session),
                  platform: Platform = Depends(get_platform)):
    """The account's invoice for a closed month: numbered and frozen on the first call, the same after."""
    account = _visible_account(session, user, name)
    return invoices.issue(session, account, month, platform.settings, user.name).to_json()


@router.get("/accounts/{name}/invoices/{month}")
def get_invoice(name: str, month: str = Path(pattern=MONTH_PATTERN, description="YYYY-MM"),
                format: str = Query("json", pattern=INVOICE_FORMATS, description="json, pdf or html"),
                lang: Optional[str] = Query(None, pattern="^(en|zh-CN)$",
                                            description="the PDF's or page's language (default: Accept-Language)"),
                accept_language: Optional[str] = Header(None),
                user: User = Depends(current_user), session=Depends(get_session)):
    """An issued invoice (POST issues it)."""
    account = _visible_account(session, user, name)
    invoice = invoices.issued(session, account, month)
    if invoice is None:
        raise NotFound(msg("no invoice of %(name)s for %(month)s yet: POST to this address issues it "
                           "(the month must be closed)", name=name, month=month))
    wanted = lang or ("zh-CN" if (accept_language or "").lower().startswith("zh") else "en")
    return _invoice_response(invoice, name, month, format, wanted)
