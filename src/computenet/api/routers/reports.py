"""/reports: the operator reports over HTTP (operators and finance only)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Optional

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ...analytics import charts, reports
from ...analytics.periods import ReportError
from ...services.errors import Forbidden, InvalidRequest
from ...services.platform import Platform
from ...services.roles import is_staff
from ..deps import current_user, get_platform

router = APIRouter(tags=["reports"])


def _staff(user=Depends(current_user)):
    if not is_staff(user):
        raise Forbidden("reports need the operator or finance role")
    return user


def _report(platform: Platform, name: str, first: str, last: str, by: str, **options):
    with reports.operational_warehouse(platform.db, platform.settings) as warehouse:
        try:
            return reports.run(name, warehouse, first, last, by, **options)
        except ReportError as exc:
            raise InvalidRequest(str(exc)) from None


@router.get("/reports/{name}")
def report(name: str, first: str = Query(..., alias="from", description="first day, YYYY-MM-DD"),
           last: str = Query(..., alias="to", description="last day (included), YYYY-MM-DD"),
           by: str = Query("month", description="day, month, quarter or year"),
           dimension: Optional[str] = Query(None, description="revenue: one dimension only"),
           top: int = Query(5, description="customers: how many"),
           format: str = Query("json", description="json or csv"),
           user=Depends(_staff), platform: Platform = Depends(get_platform)):
    """One report (utilization, revenue, margin, segments, customers, users, growth); money as decimal strings."""
    options = {"dimension": dimension} if name == "revenue" else {"top": top} if name == "customers" else {}
    result = _report(platform, name, first, last, by, **options)
    if format == "csv":
        text = io.StringIO()
        result.write_rows(text)
        return Response(text.getvalue(), media_type="text/csv")
    if format != "json":
        raise InvalidRequest(f"unknown format {format!r}: use json or csv")
    return result.as_json()


@router.get("/reports/{name}/chart.png")
def chart(name: str, first: str = Query(..., alias="from"), last: str = Query(..., alias="to"),
          by: str = Query("month"), user=Depends(_staff), platform: Platform = Depends(get_platform)):
    """A PNG: utilization over time, revenue by product line (stacked) or margin per cluster."""
    if name not in charts.CHARTS:
        raise InvalidRequest(f"unknown chart {name!r}: use one of {', '.join(charts.CHARTS)}")
    result = _report(platform, charts.CHARTS[name], first, last, by)
    with tempfile.TemporaryDirectory() as folder:
        try:
            data = charts.draw(name, result, Path(folder) / "chart.png").read_bytes()
        except ReportError as exc:
            raise InvalidRequest(str(exc)) from None
    return Response(data, media_type="image/png")
