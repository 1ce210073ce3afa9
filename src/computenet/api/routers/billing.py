"""/usage and /accounts/{name}/statements: what was used and what it cost."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import select

from ...billing.pdf import statement_header, to_pdf
from ...billing.statements import month_bounds, statement
from ...schemas import MONTH_PATTERN, UsageRowOut
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
                      format: str = Query("json", pattern="^(json|csv|summary-csv|pdf)$",
                                          description="json; csv (the lines); summary-csv (the totals); pdf"),
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
    if format == "pdf":
        settings = platform.settings
        tenant = session.get(Tenant, account.tenant_id) if account.tenant_id else None
        wanted = lang or ("zh-CN" if (accept_language or "").lower().startswith("zh") else "en")
        header = statement_header(settings.billing.issuer, account.id, tenant.name if tenant else "", month,
                                  settings.display_timezone, wanted)
        return Response(to_pdf(result, header), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}-{month}.pdf"'})
    if format in ("csv", "summary-csv"):
        body, suffix = (result.to_csv(), "") if format == "csv" else (result.summary_csv(), "-summary")
        return PlainTextResponse(body, media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{name}-{month}{suffix}.csv"'})
    return result.to_json()
