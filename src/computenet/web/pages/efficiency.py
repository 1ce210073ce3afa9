"""Efficiency (`cnet efficiency` in the portal): the user's own ended jobs, how much of the CPU, memory
and GPUs they kept busy and what the unused share cost; filtered by project and by when they ended, with
a chart. The rows are services/monitoring/efficiency_report.py's (the API's GET /efficiency), whose rules decide who
sees which jobs; the figures are monitoring's."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from fastapi import APIRouter, Query, Request

from ...services.tenancy.accounts import accounts_of
from ...services.monitoring.efficiency_report import efficiency_report
from ...services.errors import ServiceError
from ...store.models import User
from ..i18n import N_
from ..render import page
from ..viewer import viewer

router = APIRouter(include_in_schema=False)
# a finding's code (monitoring/rules*.py) as the table names it
FINDINGS = {"idle_cores": N_("Idle cores"), "single_threaded": N_("Single-threaded"), "idle_job": N_("Did nothing"),
            "memory_over_requested": N_("Memory over-requested"), "oom_risk": N_("Close to the memory limit"),
            "time_limit_too_long": N_("Time limit too long"), "short_job": N_("Very short"),
            "gpu_idle": N_("GPUs idle"), "gpu_underused": N_("GPUs waiting"), "smaller_gpu": N_("Smaller GPU fits")}
LIMITS = (20, 50, 100, 200)


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _chart(who, rows: list[dict]) -> dict:
    """Grouped bars of CPU, memory and GPU use per job (oldest left), and what was wasted on a second axis."""
    shown = rows[::-1]

    def pct(value):
        return None if value is None else round(value * 100, 1)

    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"type": "scroll", "bottom": 0},
        "grid": {"left": 48, "right": 56, "top": 32, "bottom": 56},
        "xAxis": {"type": "category", "data": [str(r["job"]) for r in shown]},
        "yAxis": [{"type": "value", "name": "%", "max": 100},
                  {"type": "value", "name": who.formats.currency if who.formats else ""}],
        "series": [{"name": who.gettext("CPU efficiency"), "type": "bar", "data": [pct(r["cpu_efficiency"]) for r in shown]},
                   {"name": who.gettext("Memory efficiency"), "type": "bar", "data": [pct(r["mem_efficiency"]) for r in shown]},
                   {"name": who.gettext("GPU use"), "type": "bar", "data": [pct(r["gpu_utilisation"]) for r in shown]},
                   {"name": who.gettext("Wasted"), "type": "line", "yAxisIndex": 1,
                    "data": [float(Decimal(r["wasted"] or 0)) for r in shown]}],
    }


@router.get("/portal/efficiency")
def efficiency(request: Request, project: str = Query("", max_length=128), since: str = Query("", alias="from", max_length=10),
               until: str = Query("", alias="to", max_length=10), limit: int = Query(50)):
    who = viewer(request)
    platform = request.app.state.platform
    limit = limit if limit in LIMITS else 50
    start, end = _day(since), _day(until)
    error = None
    if (since and start is None) or (until and end is None):
        error = who.gettext("A date is written as YYYY-MM-DD.")
    with platform.db.session() as session:
        user = session.get(User, who.user.id)
        projects = [a.name for a in accounts_of(session, user)]
        rows: list[dict] = []
        if error is None:
            try:
                # "to" is the day itself included: jobs that ended before the next midnight (UTC)
                rows = efficiency_report(
                    session, platform, user, project=project or None, limit=limit,
                    since=datetime.combine(start, time(), timezone.utc) if start else None,
                    until=datetime.combine(end + timedelta(days=1), time(), timezone.utc) if end else None)
            except ServiceError as exc:
                error = who.say(exc)
    paid = sum((Decimal(r["price"] or 0) for r in rows), Decimal("0"))
    wasted = sum((Decimal(r["wasted"] or 0) for r in rows), Decimal("0"))
    return page(request, who, "efficiency/index.html", status=400 if error else 200, rows=rows, projects=projects,
                query={"project": project, "from": since, "to": until, "limit": limit}, limits=LIMITS, error=error,
                paid=paid, wasted=wasted, share=(wasted / paid * 100 if paid else None), findings=FINDINGS,
                chart=_chart(who, rows) if rows else None)
