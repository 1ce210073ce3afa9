"""Operations: the simulator, what `cnet sim` does (services/network/simulations.py runs both): pick a trace the
server can see or upload an SWF log, the network (name:ownership:share[:price:cost]), the policies, a job
limit and --kill-at-limit; the run goes on in the background (a bounded number at once) and its page
shows progress, then the CLI's table and bar charts. Operators only (roles.py ``cluster_admin``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ...services import audit
from ...services.tenancy import roles
from ...services.network import simulations
from ...services.errors import Forbidden, InvalidRequest, ServiceError, TooLarge
from ..i18n import N_
from ..render import Viewer
from ..viewer import check_csrf, viewer
from .operations import VALUES, _ops_page
from .projects import platform_of, portal_who, refused, signed_in_user

router = APIRouter(include_in_schema=False)
STATUS_WORDS = {"running": N_("running"), "done": N_("done"), "failed": N_("failed"),
                "interrupted": N_("interrupted (the server stopped)")}
FORM_SLACK = 64 * 1024  # the form's other fields around an upload


def _policy_names() -> tuple[str, ...]:
    from ...sim.compare import POLICY_NAMES  # numpy loads with it: only when the page is asked for

    return POLICY_NAMES


def _operator(request: Request, who: Viewer, work):
    """``work(session, me)`` for an operator; anyone else gets the refusal page (403)."""
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        if not roles.allowed(session, me, "cluster_admin"):
            return refused(request, who, Forbidden(roles.refusal("cluster_admin")))
        return work(session, me)


def _form_page(request: Request, who: Viewer, status: int = 200, error: str | None = None, values=None):
    platform = platform_of(request)
    settings = platform.settings
    runner = simulations.runner(settings)
    found = simulations.traces(settings)
    values = values or {"clusters": simulations.DEFAULT_CLUSTERS, "policies": simulations.DEFAULT_POLICIES.split(","),
                        "jobs": "", "cores": "", "gpus": "", "kill_at_limit": False, "trace": "", "nodes": ""}
    runs = runner.listing()
    return _operator(request, who, lambda session, me: _ops_page(
        request, who, session, me, "network/simulator.html", status=status, error=error, values=values,
        shared=[t for t in found if t["kind"] == "shared" and not t["nodes"]],
        uploaded=[t for t in found if t["kind"] == "uploaded"], node_lists=[t for t in found if t["nodes"]],
        traces_dir=str(simulations.traces_dir(settings)), policy_names=_policy_names(), runs=runs,
        busy=any(r["status"] == "running" for r in runs), status_words=STATUS_WORDS, sim=settings.sim))


@router.get("/portal/operations/simulator")
def simulator(request: Request):
    return _form_page(request, viewer(request))


def _number(text: str, what: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 9:
        raise InvalidRequest(f"{what}: a whole number, please ({text[:20]!r})")
    return int(text)


def _start(request: Request, who: Viewer, form: dict, upload: tuple[str, bytes] | None) -> str:
    """Check the form, keep an upload, start the run: its id. Refusals are ServiceErrors."""
    settings = platform_of(request).settings
    with platform_of(request).db.session() as session:
        roles.require(session, signed_in_user(session, who), "cluster_admin")
    if upload is not None:
        label, kind = simulations.save_upload(settings, *upload), "uploaded"
    else:
        kind, _, label = form["trace"].partition(":")
        if not label:
            raise InvalidRequest("pick a trace, or upload an SWF log")
    path = simulations.trace_path(settings, label, kind)
    nodes = simulations.trace_path(settings, form["nodes"], "shared") if form["nodes"] else None
    spec = simulations.Spec(trace=path, clusters=form["clusters"].strip(), policies=form["policies"],
                            jobs=_number(form["jobs"], "jobs"), cores=_number(form["cores"], "cores"),
                            gpus=_number(form["gpus"], "GPUs"), nodes=nodes, kill_at_limit=form["kill_at_limit"])
    by = portal_who(request, who)
    run_id = simulations.runner(settings).start(spec, label, by.actor)
    with platform_of(request).db.session() as session:
        audit.record(session, by, "simulation.start", f"simulation:{run_id}", trace=label,
                     policies=",".join(spec.policies), jobs=spec.jobs)
    return run_id


@router.post("/portal/operations/simulator")
async def start(request: Request):
    who = viewer(request)
    limit = platform_of(request).settings.sim.max_upload_mb * 1024 * 1024
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + FORM_SLACK:  # refused before the body is read
        return await run_in_threadpool(_form_page, request, who, 413, str(TooLarge(
            f"the trace is over {platform_of(request).settings.sim.max_upload_mb} MB")))
    form = await request.form(max_files=1, max_fields=40)
    check_csrf(who, str(form.get("csrf_token") or ""))
    values = {"trace": str(form.get("trace") or "")[:300], "nodes": str(form.get("nodes") or "")[:200],
              "clusters": str(form.get("clusters") or "")[:2000], "jobs": str(form.get("jobs") or "")[:12],
              "cores": str(form.get("cores") or "")[:12], "gpus": str(form.get("gpus") or "")[:12],
              "policies": [str(p)[:40] for p in form.getlist("policies")][:20],
              "kill_at_limit": form.get("kill_at_limit") == "on"}
    upload = None
    try:
        file = form.get("upload")
        if isinstance(file, UploadFile) and file.filename:
            data = await file.read(limit + 1)
            if len(data) > limit:
                raise TooLarge(f"the trace is over {platform_of(request).settings.sim.max_upload_mb} MB")
            upload = (file.filename, data)
        run_id = await run_in_threadpool(_start, request, who, values, upload)
    except Forbidden as exc:
        return refused(request, who, exc)
    except ServiceError as exc:
        status = exc.status_code if exc.status_code in (409, 413) else 400
        return await run_in_threadpool(_form_page, request, who, status, who.say(exc), values)
    finally:
        await form.close()
    return RedirectResponse(f"/portal/operations/simulator/runs/{run_id}", status_code=303)


# -- one run -----------------------------------------------------------------------------------

def _hours(seconds) -> float:
    return round(float(seconds) / 3600, 2)


def charts(result: dict, who: Viewer) -> list[dict]:
    """ECharts options (data only: portal.js draws them): waits, slowdown, utilization, money per policy."""
    rows = result["results"]
    policies = [r["policy"] for r in rows]

    def bar(title: str, axis: str, series: list[tuple[str, list]]) -> dict:
        return {"title": title, "option": {
            "aria": {"enabled": True}, "tooltip": {"trigger": "axis"}, "legend": {"type": "scroll", "top": 0},
            "grid": {"left": 60, "right": 16, "bottom": 70, "top": 40},
            "xAxis": {"type": "category", "data": policies, "axisLabel": {"rotate": 30}},
            "yAxis": {"type": "value", "name": axis},
            "series": [{"name": name, "type": "bar", "data": data} for name, data in series]}}

    _ = who.gettext
    return [
        bar(_("Wait per policy"), _("hours"), [(_("Mean wait"), [_hours(r["mean_wait_s"]) for r in rows]),
                                               (_("95th percentile wait"), [_hours(r["p95_wait_s"]) for r in rows])]),
        bar(_("Bounded slowdown per policy"), "", [(_("Mean bounded slowdown"),
                                                    [r["mean_bounded_slowdown"] for r in rows])]),
        bar(_("Utilization per cluster"), "%", [(c["name"], [round(r["utilization"].get(c["name"], 0) * 100, 1)
                                                             for r in rows]) for c in result["clusters"]]
            + [(_("Owned capacity"), [round(r["owned_utilization"] * 100, 1) for r in rows])]),
        bar(_("Revenue and cost"), who.formats.currency, [(_("Revenue"), [float(r["revenue"]) for r in rows]),
                                                          (_("Cost"), [float(r["cost"]) for r in rows])]),
    ]


@router.get("/portal/operations/simulator/runs/{run_id}")
def run_page(request: Request, run_id: str):
    who = viewer(request)

    def work(session, me):
        try:
            run = simulations.runner(platform_of(request).settings).get(run_id[:40])
        except ServiceError as exc:
            return refused(request, who, exc)
        result = run.get("result")
        return _ops_page(request, who, session, me, "network/simulation.html", run=run, result=result,
                         charts=charts(result, who) if result else [], status_words=STATUS_WORDS,
                         values=VALUES)
    return _operator(request, who, work)
