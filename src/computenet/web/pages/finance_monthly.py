"""Finance: the operator's monthly report (月度运营报告) as a page and as its PDF (issue 21). The document is
analytics/monthly_render.py's, the same template `cnet report monthly` lays out; this page adds the month
picker and the PDF link around it. Who may read it is the report pages' check (operations.may_read_reports).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from ...analytics import monthly_render, monthly_report
from ...analytics.periods import ReportError
from ...api.routers.reports import _snapshot, _within_limit
from .. import i18n, report_language
from ..render import SECURITY_HEADERS, page
from ..viewer import viewer
from .operations import may_read_reports
from .projects import platform_of

router = APIRouter(include_in_schema=False)
TEMPLATE = "finance/monthly.html"


def _last_month() -> str:
    today = date.today()
    return f"{today.year - (today.month == 1)}-{(today.month - 2) % 12 + 1:02d}"


def _document(request: Request, month: str, language: str, pdf: bool):
    """(status, the report's HTML fragment or PDF bytes, why there is none) for ``month`` in ``language``."""
    platform = platform_of(request)
    try:
        monthly_report.month_range(month)  # a bad month never costs a copy of the tables
        report = _within_limit(lambda: monthly_report.build(_snapshot(platform, False)[1], month), "monthly")
    except monthly_report.NoData as exc:
        return 404, None, exc.args[0]
    except ReportError as exc:
        return 400, None, exc.args[0]
    zone = platform.settings.display_timezone
    voice = report_language.voice(language, report.currency)
    issued = datetime.now(timezone.utc).astimezone(ZoneInfo(zone))
    operator = platform.settings.billing.issuer.name
    if pdf:
        return 200, monthly_render.pdf(report, voice, operator, issued, zone), None
    return 200, Markup(monthly_render.html(report, voice, operator, issued, zone, standalone=False)), None


@router.get("/portal/finance/monthly")
def monthly(request: Request, month: str = ""):
    who = viewer(request)
    sections = may_read_reports(request, who)
    if not isinstance(sections, list):
        return sections
    month = month.strip()[:16] or _last_month()
    status, body, why = _document(request, month, who.language, pdf=False)
    return page(request, who, TEMPLATE, status=status, month=month, body=body,
                error=who.say(why) if why else None)


@router.get("/portal/finance/monthly.pdf")
def monthly_pdf(request: Request, month: str = "", lang: str = ""):
    who = viewer(request)
    sections = may_read_reports(request, who)
    if not isinstance(sections, list):
        return sections
    language = lang if lang in i18n.LANGUAGES else who.language
    month = month.strip()[:16] or _last_month()
    status, document, why = _document(request, month, language, pdf=True)
    if document is None:
        return page(request, who, TEMPLATE, status=status, month=month, body=None, error=who.say(why))
    return Response(document, media_type="application/pdf", headers={
        **SECURITY_HEADERS, "Content-Disposition": f'inline; filename="monthly-report-{month}-{language}.pdf"'})


@router.get("/portal/finance/monthly.css")
def monthly_css():
    """The document's style, shared with the PDF (the portal's CSP allows no inline style)."""
    return Response(monthly_render.stylesheet(), media_type="text/css",
                    headers={"Cache-Control": "max-age=3600"})
