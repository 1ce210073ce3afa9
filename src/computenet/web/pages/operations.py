"""Operations: clusters (health, queue depth, utilization, owned vs leased), users and roles
(suspend, reinstate, grant and revoke with a reason), the audit log (paginated), the app review
queue, and the operator reports with charts (also used by the finance area).

Every check is the services' or roles.py's: users.find/listing/set_status, grants.grant/revoke,
apps.review, roles.require("audit" | "reports" | "app_review" | "cluster_admin"); reports are the
same queries as GET /reports/{name} and ``cnet report`` (api/routers/reports.py ``_report``).
People and tenants are in operations_people.py; the price book and reconcile queue in operations_money.py.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from ...analytics.chart_scale import cut_range, far_out, named_once
from ...api.routers.reports import _report
from ...services.apps import apps
from ...services import audit
from ...services.tenancy import grants, roles, users
from ...services.monitoring import metrics
from ...services.network import registry
from ...services.errors import Forbidden, NotFound, ServiceError
from ...store.models import Cluster
from .. import i18n
from ..i18n import N_
from ..render import Viewer, page
from ..viewer import check_csrf, viewer
from .projects import platform_of, portal_who, refused, signed_in_user

router = APIRouter(include_in_schema=False)
OPERATOR_REPORTS = ("utilization", "revenue", "margin", "segments", "customers", "efficiency", "routing")
REPORT_TITLES = {"utilization": N_("Utilization"), "revenue": N_("Revenue"), "margin": N_("Gross margin"),
                 "segments": N_("Segments"), "customers": N_("Top customers"), "efficiency": N_("Efficiency and waste"),
                 "routing": N_("Routing")}
# report columns, as the reports name them (analytics/*.py), and the headings shown for them
COLUMNS = {"bucket": N_("Period"), "level": N_("Level"), "name": N_("Name"), "ownership": N_("Ownership"),
           "core_hours": N_("Core-hours"), "core_capacity": N_("Core-hour capacity"),
           "core_utilization": N_("Core utilization"), "card_hours": N_("Card-hours"),
           "card_capacity": N_("Card-hour capacity"), "card_utilization": N_("Card utilization"),
           "dimension": N_("Dimension"), "key": N_("Item"), "revenue": N_("Revenue"), "share": N_("Share"),
           "cost": N_("Cost"), "gross_profit": N_("Gross profit"), "margin": N_("Gross margin"), "basis": N_("Basis"),
           "note": N_("Note"), "segment": N_("Segment"), "cpu_share": N_("CPU share"), "gpu_share": N_("GPU share"),
           "revenue_share": N_("Revenue share"), "rank": N_("Rank"), "customer": N_("Customer"),
           # the efficiency and routing reports (analytics/efficiency_reports.py, routing_reports.py)
           "jobs": N_("Jobs"), "core_hours_used": N_("Core-hours used"), "cpu_efficiency": N_("CPU efficiency"),
           "card_hours_used": N_("Card-hours used"), "idle_card_hours": N_("Idle card-hours"),
           "gpu_utilisation": N_("GPU utilisation"), "mem_over_requested_gib_h": N_("Memory asked, unused (GiB-h)"),
           "mem_efficiency": N_("Memory efficiency"), "currency": N_("Currency"), "charged": N_("Charged"),
           "wasted": N_("Wasted"), "waste_share": N_("Waste share"), "top_findings": N_("Costliest findings"),
           "decided_jobs": N_("With a routing decision"), "not_first": N_("Not first choice (failover)"),
           "not_cheapest": N_("Not cheapest"), "not_owned": N_("Not owned"), "rerouted": N_("Re-routed"),
           "extra_quoted": N_("Quoted above cheapest"), "top_reason": N_("Most common reason"),
           "predicted_jobs": N_("Jobs with a predicted start"), "start_error_p50_h": N_("Start error, median (h)"),
           "start_error_p90_h": N_("Start error, 90th percentile (h)"),
           "start_late_p50_h": N_("Started later than predicted, median (h)"),
           "predicted_within_1h": N_("Predicted within an hour")}
# values of the level, ownership and dimension columns (and cluster ownership), shown translated
VALUES = {"cluster": N_("Cluster"), "partition": N_("Partition"), "ownership": N_("Ownership"),
          "total": N_("Total"), "product_line": N_("Product line"), "segment": N_("Segment"),
          "customer": N_("Customer"), "billing": N_("Prepaid or postpaid"), "owned": N_("Owned"), "leased": N_("Leased"),
          "tenant": N_("Tenant"), "app": N_("Application"), "pair": N_("From cluster -> to cluster")}
MONEY_COLUMNS = {"revenue", "cost", "gross_profit", "charged", "wasted", "extra_quoted"}
RATIO_COLUMNS = {"core_utilization", "card_utilization", "share", "margin", "cpu_share", "gpu_share", "revenue_share",
                 "cpu_efficiency", "gpu_utilisation", "mem_efficiency", "waste_share", "predicted_within_1h"}
WORDS = [N_("online"), N_("offline"), N_("degraded"), N_("unknown"), N_("active"),
         N_("suspended"), N_("deleted"), N_("pending"), N_("approved"), N_("rejected"), N_("withdrawn")]
STATUS_CHANGES = ("suspend", "reinstate")


def _sections(session, me) -> list[tuple[str, str]]:
    """The operations pages this viewer may open (roles.py decides each)."""
    out = [("/portal/operations", N_("Clusters"))] if roles.allowed(session, me, "reports") else []
    if any(roles.allowed(session, me, "user_view", tenant_id=t) for t in {None, *roles.admin_tenants(me)}):
        out.append(("/portal/operations/users", N_("Users and roles")))
    if any(roles.allowed(session, me, "user_manage", tenant_id=t) for t in {None, *roles.admin_tenants(me)}):
        out.append(("/portal/operations/people", N_("People and tenants")))
    if roles.allowed(session, me, "audit"):
        out.append(("/portal/operations/audit", N_("Audit log")))
    if roles.allowed(session, me, "app_review"):
        out.append(("/portal/operations/apps", N_("App review")))
    if roles.allowed(session, me, "reports"):
        out.append(("/portal/operations/reports", N_("Reports")))
        out.append(("/portal/operations/prices", N_("Price book")))
    if roles.allowed(session, me, "cluster_admin"):
        out.append(("/portal/operations/reconcile", N_("Reconcile queue")))
        out.append(("/portal/operations/registry", N_("Cluster registry")))
        out.append(("/portal/operations/access", N_("Slurm accounts and enforcement")))
        out.append(("/portal/operations/simulator", N_("Simulator")))
    from .operations_ledger import may as ledger_may  # (operations_ledger imports this module)

    if any(ledger_may(session, me).values()):
        out.append(("/portal/operations/ledger", N_("Accounts and money")))
    if roles.allowed(session, me, "reprice"):
        out.append(("/portal/operations/reprice", N_("Re-pricing")))
    if roles.allowed(session, me, "token_admin"):
        out.append(("/portal/operations/tokens", N_("API tokens")))
    if out:
        out.append(("/portal/operations/permissions", N_("Permissions")))
    return out


def _ops_page(request: Request, who: Viewer, session, me, template: str, status: int = 200, **context):
    return page(request, who, template, status=status, sections=_sections(session, me), **context)


# -- clusters ------------------------------------------------------------------------------

@router.get("/portal/operations")
def clusters(request: Request):
    who, platform = viewer(request), platform_of(request)
    with platform.db.session() as session:
        me = signed_in_user(session, who)
        if not roles.allowed(session, me, "reports"):
            return refused(request, who, Forbidden(roles.refusal("reports")))
        load = metrics.cluster_load(session)
        registered = ({r["name"]: r for r in registry.listing(session, platform)}
                      if roles.allowed(session, me, "cluster_admin") else {})
        rows = [{"cluster": c, "load": load.get(c.name, {}), "registry": registered.get(c.name),
                 "cores": load.get(c.name, {}).get("cores", 0)}
                for c in session.scalars(select(Cluster).order_by(Cluster.name))]
        return _ops_page(request, who, session, me, "operations/clusters.html", rows=rows, values=VALUES)


# -- users and roles -----------------------------------------------------------------------

def _users_page(request: Request, who: Viewer, status: int = 200, error: str | None = None, done: str = ""):
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        wanted = request.query_params.get("status") or None
        try:
            people = [users.to_json(session, u) for u in users.listing(session, me, status=wanted, limit=500)]
        except ServiceError as exc:
            return refused(request, who, exc)
        return _ops_page(request, who, session, me, "operations/users.html", status=status, people=people,
                         error=error, done=done, roles=[r for r in roles.ROLES if r != "user"],
                         may_manage=any(roles.allowed(session, me, "user_manage", tenant_id=t)
                                        for t in {None, *roles.admin_tenants(me)}))


@router.get("/portal/operations/users")
def users_page(request: Request, done: str = ""):
    return _users_page(request, viewer(request), done=done[:1])


def _user_change(request: Request, csrf_token: str, work):
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with platform_of(request).db.session() as session:
            work(session, signed_in_user(session, who), portal_who(request, who))
    except (NotFound, Forbidden) as exc:
        return refused(request, who, exc)
    except ServiceError as exc:
        return _users_page(request, who, status=exc.status_code if exc.status_code == 409 else 400, error=who.say(exc))
    return RedirectResponse("/portal/operations/users?done=1", status_code=303)


@router.post("/portal/operations/users/{name}/status")
def change_status(request: Request, name: str, change: str = Form("", max_length=16),
                  reason: str = Form("", max_length=1000), csrf_token: str = Form("", max_length=100)):
    def work(session, me, by):
        if change not in STATUS_CHANGES:
            raise NotFound(f"no such change {change[:16]!r} (use {', '.join(STATUS_CHANGES)})")
        users.set_status(session, me, by, users.find(session, me, name[:64], "user_manage"), change, reason)
    return _user_change(request, csrf_token, work)


@router.post("/portal/operations/roles")
def change_role(request: Request, user: str = Form("", max_length=64), role: str = Form("", max_length=32), grant: str = Form("grant", max_length=8),
                reason: str = Form("", max_length=1000), tenant: str = Form("", max_length=64),
                project: str = Form("", max_length=64), csrf_token: str = Form("", max_length=100)):
    """Grant or revoke a role, with a reason: grants.grant/revoke audit it."""
    def work(session, me, by):
        target = users.find(session, me, user.strip(), "user_view")
        act = grants.revoke if grant == "revoke" else grants.grant
        act(session, me, by, target, role.strip(), reason, tenant.strip() or None, project.strip() or None)
    return _user_change(request, csrf_token, work)


# -- audit log -----------------------------------------------------------------------------

@router.get("/portal/operations/audit")
def audit_log(request: Request, before: int | None = None, action: str = "", target: str = ""):
    who = viewer(request)
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        try:
            roles.require(session, me, "audit")
        except ServiceError as exc:
            return refused(request, who, exc)
        size = 50
        rows = audit.events_before(session, before, size + 1, action[:64] or None, target[:128] or None)
        return _ops_page(request, who, session, me, "operations/audit.html", events=rows[:size],
                         older=rows[size - 1].id if len(rows) > size else None, action=action[:64],
                         target=target[:128])


# -- app review ----------------------------------------------------------------------------

@router.get("/portal/operations/apps")
def app_queue(request: Request):
    who = viewer(request)
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        try:
            roles.require(session, me, "app_review")
        except ServiceError as exc:
            return refused(request, who, exc)
        every = apps.visible(session, me, everything=True)
        pending = [r for r in every if r.status == "pending"]
        published = [r for r in every if r.status == "approved" and r.scope != "builtin" and r.namespace == ""]
        return _ops_page(request, who, session, me, "operations/apps.html", pending=pending, published=published)


@router.post("/portal/operations/apps/{name}/{version}/review")
def review_app(request: Request, name: str, version: str, decision: str = Form("", max_length=8),
               note: str = Form("", max_length=2000), csrf_token: str = Form("", max_length=100)):
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with platform_of(request).db.session() as session:
            me = signed_in_user(session, who)
            ref = apps.review(session, me, name[:64], version[:32], decision == "approve", note)
            audit.record(session, portal_who(request, who), "app.review", f"app:{ref.spec.name}",
                         version=ref.spec.version, status=ref.status, note=note[:2000])
    except ServiceError as exc:
        return refused(request, who, exc)
    return RedirectResponse("/portal/operations/apps", status_code=303)


# -- reports (also the finance area's) -------------------------------------------------------

def _default_range() -> tuple[str, str]:
    today = date.today()
    first = date(today.year - 1, today.month, 1) + timedelta(days=31)
    return date(first.year, first.month, 1).isoformat(), today.isoformat()


def may_read_reports(request: Request, who: Viewer):
    """The operations sections this viewer may open, or the refusal page when roles.py does not let them
    read the operator reports (the report pages, the finance area's and the monthly report, all ask here)."""
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        if not roles.allowed(session, me, "reports"):
            return refused(request, who, Forbidden(roles.refusal("reports")))
        return _sections(session, me)


def report_page(request: Request, who: Viewer, name: str, offered: tuple[str, ...], template: str):
    """A report (one of ``offered``) over ?from=&to=&by=, as a table and a chart; bad input is a 400 page."""
    platform = platform_of(request)
    first_default, last_default = _default_range()
    first = request.query_params.get("from", first_default)[:10]
    last = request.query_params.get("to", last_default)[:10]
    by = request.query_params.get("by", "month")[:8]
    sections = may_read_reports(request, who)
    if not isinstance(sections, list):
        return sections
    if name not in offered:
        return refused(request, who, NotFound(f"no report {name!r} here (use {', '.join(offered)})"))
    try:
        as_of, report = _report(platform, name, first, last, by)
    except ServiceError as exc:
        return page(request, who, template, status=400, sections=sections, error=who.say(exc), name=name,
                    offered=offered, titles=REPORT_TITLES, first=first, last=last, by=by, report=None, chart=None)
    return page(request, who, template, sections=sections, error=None, name=name, offered=offered,
                titles=REPORT_TITLES, first=first, last=last, by=by, report=report, as_of=as_of,
                chart=chart_option(report, who), money=MONEY_COLUMNS, ratios=RATIO_COLUMNS,
                columns=COLUMNS, values=VALUES)


def _series(rows, key_of, value_of, buckets) -> list[dict]:
    keys = sorted({key_of(r) for r in rows})
    values = {(r["bucket"], key_of(r)): value_of(r) for r in rows}
    return [{"name": k, "data": [values.get((b, k)) for b in buckets]} for k in keys]


def _num(value) -> float | None:
    return None if value is None else float(Decimal(str(value)))


def _written(who: Viewer, value: float) -> str:
    formats = who.formats or i18n.Formats(who.language, "CNY")
    return formats.number(Decimal(str(value)), 0)


def chart_option(report, who: Viewer) -> dict | None:
    """An ECharts option for the report (data only: the portal's script draws it), None when empty.
    It decides what the PNG charts decide (analytics/chart_scale): money axes name their currency,
    series far outside the others are cut at the axis with their values written on the bars, and
    series that coincide are named together."""
    if report.empty or not report.rows:
        return None
    buckets = sorted({r["bucket"] for r in report.rows})
    percent = lambda r, k: None if r.get(k) is None else round(_num(r[k]) * 100, 2)  # noqa: E731
    money = f" ({report.currency})" if report.currency else ""
    if report.name == "utilization":
        rows = [r for r in report.rows if r["level"] == "cluster"]
        series = _series(rows, lambda r: r["name"], lambda r: percent(r, "core_utilization"), buckets)
        kind, axis = "line", who.gettext("Core utilization (%)")
    elif report.name == "revenue":
        rows = [r for r in report.rows if r["dimension"] == "product_line"]
        series = _series(rows, lambda r: r["key"], lambda r: _num(r["revenue"]), buckets)
        kind, axis = "bar", who.gettext("Revenue") + money
    elif report.name == "margin":
        rows = [r for r in report.rows if r["level"] == "cluster"]
        series = _series(rows, lambda r: r["name"], lambda r: _num(r["gross_profit"]), buckets)
        kind, axis = "bar", who.gettext("Gross profit") + money
    elif report.name == "efficiency":  # the waste per tenant (the totals row is the sum of the bars)
        rows = [r for r in report.rows if r["key"] != "(all)"]
        series = _series(rows, lambda r: r["key"], lambda r: _num(r["wasted"]), buckets)
        kind, axis = "bar", who.gettext("Wasted") + money
    elif report.name == "routing":
        rows = [r for r in report.rows if r["key"] != "(all)"]
        series = _series(rows, lambda r: r["key"], lambda r: _num(r["start_error_p50_h"]), buckets)
        kind, axis = "line", who.gettext("Start error, median (h)")
    elif report.name == "segments":
        series = _series(report.rows, lambda r: r["segment"], lambda r: _num(r["revenue"]), buckets)
        kind, axis = "bar", who.gettext("Revenue") + money
    else:  # customers
        series = _series(report.rows, lambda r: r["customer"], lambda r: _num(r["revenue"]), buckets)
        kind, axis = "bar", who.gettext("Revenue") + money
    stacked = report.name in ("revenue", "segments", "customers", "efficiency")
    if not stacked:
        series = [{"name": name, "data": data}
                  for name, data in named_once([(s["name"], s["data"]) for s in series])]
    y_axis = {"type": "value", "name": axis, "axisLabel": {"formatter": "thousands"}}
    if not stacked:
        values = {s["name"]: [v for v in s["data"] if v is not None] for s in series}
        cut = far_out(values)
        limits = cut_range(values, cut)
        if limits is not None:
            y_axis |= {"min": round(limits[0], 2), "max": round(limits[1], 2)}
            for s in series:
                if s["name"] in cut:  # the true value, written on the cut bar
                    s["data"] = [v if v is None or limits[0] <= v <= limits[1] else
                                 {"value": v, "label": {"show": True, "position": "inside", "rotate": 90,
                                                        "formatter": _written(who, v)}} for v in s["data"]]
    return {"aria": {"enabled": True}, "tooltip": {"trigger": "axis"}, "legend": {"type": "scroll", "top": 0},
            "grid": {"left": 80, "right": 20, "bottom": 40, "top": 60},
            "xAxis": {"type": "category", "data": buckets, "axisLabel": {"hideOverlap": True}}, "yAxis": y_axis,
            "series": [s | {"type": kind} | ({"stack": "all"} if stacked else {}) for s in series]}


@router.get("/portal/operations/reports")
def reports(request: Request, name: str = "utilization"):
    return report_page(request, viewer(request), name[:16], OPERATOR_REPORTS, "operations/reports.html")
