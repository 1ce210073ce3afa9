"""/reports: the operator reports over HTTP (operators and finance only)."""

from __future__ import annotations

import io
import tempfile
import threading
import time
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from ...analytics import charts, reports
from ...analytics.periods import ReportError
from ...analytics.warehouse import Warehouse
from ...services.errors import Forbidden, InvalidRequest, Unavailable
from ...services.platform import Platform
from ...services.tenancy import roles
from ..deps import current_user, get_platform
from ..responses import errors

router = APIRouter(tags=["reports"], responses=errors(400, 401, 403, 422, 503))


def _staff(user=Depends(current_user)):
    if not roles.allowed(None, user, "reports"):
        raise Forbidden("reports need the operator or finance role")
    return user


REPORT_TIME_LIMIT_S = 60.0  # a report over HTTP answers within this or is refused (503)
# the reports with a dimension option, and the one they use when none is asked for
DEFAULT_DIMENSION = {"jobs": "cluster", "efficiency": "tenant", "routing": "cluster"}
SNAPSHOT_S = 60.0  # reports over HTTP share one copy of the tables this long (a dashboard asks several)
_snapshots: "weakref.WeakKeyDictionary[Platform, tuple[float, datetime, Warehouse]]" = weakref.WeakKeyDictionary()
_snapshot_lock = threading.Lock()


def _snapshot(platform: Platform, refresh: bool) -> tuple[datetime, Warehouse]:
    """The platform's tables as of at most SNAPSHOT_S ago (or now, with refresh). Built under the lock,
    so concurrent requests wait for one copy instead of each making their own; an old snapshot is
    dropped, not closed, because a request may still be reading it (each query has its own cursor)."""
    with _snapshot_lock:
        found = _snapshots.get(platform)
        if refresh or found is None or time.monotonic() - found[0] > SNAPSHOT_S:
            found = (time.monotonic(), datetime.now(timezone.utc),
                     reports.operational_warehouse(platform.db))  # the server keeps the costs synced
            _snapshots[platform] = found
        return found[1], found[2]


def _report(platform: Platform, name: str, first: str, last: str, by: str, refresh: bool = False, **options):
    try:
        reports.check(name, first, last, by)  # a bad request never costs a copy of the tables
    except ReportError as exc:
        raise InvalidRequest(str(exc)) from None
    return _within_limit(lambda: _build(platform, name, first, last, by, refresh, **options), name)


def _build(platform: Platform, name: str, first: str, last: str, by: str, refresh: bool, **options):
    try:
        as_of, warehouse = _snapshot(platform, refresh)
        return as_of, reports.run(name, warehouse, first, last, by, **options)
    except ReportError as exc:
        raise InvalidRequest(str(exc)) from None


def _within_limit(work, name: str):
    """Run ``work`` in a daemon thread and wait at most REPORT_TIME_LIMIT_S: the request is answered
    (503) when the limit passes, and a report still running never holds up the server's exit."""
    done, outcome = threading.Event(), {}

    def target():
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the request's thread, raised there
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"report-{name}", daemon=True).start()
    if not done.wait(REPORT_TIME_LIMIT_S):
        raise Unavailable(f"the {name} report did not finish within its time limit of {REPORT_TIME_LIMIT_S:g} s: "
                          "narrow the range or group by a longer period")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@router.get("/reports/{name}")
def report(name: str, first: str = Query(..., alias="from", description="first day, YYYY-MM-DD"),
           last: str = Query(..., alias="to", description="last day (included), YYYY-MM-DD"),
           by: str = Query("month", description="day, month, quarter or year"),
           dimension: Optional[str] = Query(None, description="revenue: one dimension only; jobs: cluster, "
                                                                  "partition or tenant; efficiency: tenant, app or "
                                                                  "cluster; routing: cluster or pair"),
           top: int = Query(5, ge=1, le=1000, description="customers: how many"),
           format: str = Query("json", description="json or csv"),
           lang: Optional[str] = Query(None, description="the notes' language: en (default) or zh-CN"),
           refresh: bool = Query(False, description=f"read the tables now (else a copy at most {SNAPSHOT_S:g} s old)"),
           user=Depends(_staff), platform: Platform = Depends(get_platform)):
    """One report (utilization, revenue, margin, segments, customers, users, growth, jobs, efficiency, routing);
    money as decimal strings.
    ``as_of`` (and the X-Data-As-Of header) says when the tables were read."""
    options = {"dimension": dimension} if name == "revenue" else {"top": top} if name == "customers" else \
        {"dimension": dimension or DEFAULT_DIMENSION[name]} if name in DEFAULT_DIMENSION else {}
    from ...web import report_language  # the portal imports this module: at call time, not import time

    if lang not in (None, *report_language.LANGUAGES):
        raise InvalidRequest(f"unknown language {lang!r}: use one of {', '.join(report_language.LANGUAGES)}")
    as_of, result = _report(platform, name, first, last, by, refresh, **options)
    result = report_language.in_language(result, lang)
    if format == "csv":
        text = io.StringIO()
        result.write_rows(text)
        return Response(text.getvalue(), media_type="text/csv", headers={"X-Data-As-Of": as_of.isoformat()})
    if format != "json":
        raise InvalidRequest(f"unknown format {format!r}: use json or csv")
    return JSONResponse(result.as_json() | {"as_of": as_of.isoformat()}, headers={"X-Data-As-Of": as_of.isoformat()})


@router.get("/reports/{name}/chart.png")
def chart(name: str, first: str = Query(..., alias="from"), last: str = Query(..., alias="to"),
          by: str = Query("month"), user=Depends(_staff), platform: Platform = Depends(get_platform)):
    """A PNG: utilization over time, revenue by product line (stacked), margin per cluster or the money
    wasted per tenant (stacked)."""
    if name not in charts.CHARTS:
        raise InvalidRequest(f"unknown chart {name!r}: use one of {', '.join(charts.CHARTS)}")
    _, result = _report(platform, charts.CHARTS[name], first, last, by)
    with tempfile.TemporaryDirectory() as folder:
        try:
            data = charts.draw(name, result, Path(folder) / "chart.png").read_bytes()
        except ReportError as exc:
            raise InvalidRequest(str(exc)) from None
    return Response(data, media_type="image/png")
