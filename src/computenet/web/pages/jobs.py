"""The user's jobs: the list (filters, sort, keyset pages, rows refreshed by htmx polling while any
listed job is live) and a job's page (state and timeline, where it runs and why, output tailing live,
efficiency, files, cost; cancel, hold, release, requeue, resubmit).

Every rule is the services': the list is services/jobs/job_search.py, a job is services/jobs/jobs.get_job (another
user's job is "not found"), cancelling jobs.cancel_job, holding services/jobs/job_hold.py, requeueing
services/jobs/job_requeue.py, resubmitting jobs.submit_job, the detail api/views.job_detail and the efficiency
services/monitoring/monitoring.analyse.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from ...api.views import job_detail
from ...domain.states import JobState
from ...schemas import MAX_OFFSET
from ...services.jobs import job_hold, job_output, job_requeue, job_update, timeline
from ...services.monitoring import monitoring
from ...services.jobs import jobs as job_service
from ...services.tenancy.accounts import accounts_of
from ...services.errors import Conflict, InvalidRequest, NotFound, ServiceError
from ...services.jobs.job_search import JobQuery, search
from ...services.platform import Platform
from ...store.models import Account, Cluster, Job, Partition, User
from ..render import Viewer, page
from ..viewer import check_csrf, viewer
from ... import messages

router = APIRouter(include_in_schema=False)

FILTERS = ("state", "cluster", "account", "app", "submitted_from", "submitted_to")
LIVE_EVERY = "every 3s"  # how often a live list, job state or log is asked again
LOG_CHUNK = 64 * 1024  # a log is sent in pieces this big: a huge log does not arrive in one answer


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def _params(request: Request) -> dict[str, str]:
    """The list's filters and sort as given (unknown parameters are ignored, long ones cut)."""
    names = FILTERS + ("sort", "order", "after")
    return {name: request.query_params.get(name, "")[:200] for name in names}


def _link(params: dict[str, str], **changes) -> str:
    """The list with ``changes`` applied; any other change than a page's starts at the first page."""
    merged = dict(params) | changes
    if "after" not in changes:
        merged["after"] = ""
    return "/portal/jobs?" + urlencode({k: v for k, v in merged.items() if v})


def _bad_request(request: Request, who: Viewer, exc: ServiceError, title: str):
    return page(request, who, "error.html", status=400, title=title, message=who.say(exc))


def _query(platform: Platform, session, user: User, params: dict[str, str]) -> JobQuery:
    query = JobQuery.parse(**{k: params[k] for k in FILTERS + ("sort", "order", "after")})
    # a cluster or account that does not exist is a typo, not an empty list
    if query.cluster and session.scalar(select(Cluster.id).where(Cluster.name == query.cluster)) is None:
        raise InvalidRequest(f"unknown cluster {query.cluster!r}")
    if query.account and session.scalar(select(Account.id).where(Account.name == query.account)) is None:
        raise InvalidRequest(f"unknown account {query.account!r}")
    return query


def _listing(request: Request, template: str):
    who, platform = viewer(request), _platform(request)
    params = _params(request)
    with platform.db.session() as session:
        user = session.get(User, who.user.id)
        try:
            query = _query(platform, session, user, params)
            found = search(session, user, query, platform.settings.display_timezone)
        except InvalidRequest as exc:
            return _bad_request(request, who, exc, who.gettext("This job list cannot be shown"))
        live = any(not JobState(job.state).is_terminal for job in found.jobs)
        rows_url = "/portal/jobs/rows?" + urlencode({k: v for k, v in params.items() if v})
        return page(request, who, template, found=found, params=params, query=query, live=live,
                    rows_url=rows_url, link=lambda **c: _link(params, **c), live_every=LIVE_EVERY,
                    clusters=list(session.scalars(select(Cluster.name).order_by(Cluster.name))),
                    accounts=[a.name for a in accounts_of(session, user)],
                    states=[s.value for s in JobState])


@router.get("/portal/jobs")
def job_list(request: Request):
    return _listing(request, "jobs/list.html")


@router.get("/portal/jobs/rows")
def job_rows(request: Request):
    """The list's table body alone, for htmx: it stops asking again once every listed job has ended."""
    return _listing(request, "jobs/_rows.html")


def _job_id(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
        raise NotFound(f"no job {raw[:40]}")
    return int(raw)


def _not_found(request: Request, who: Viewer, exc: ServiceError):
    return page(request, who, "error.html", status=404, title=who.gettext("No such job"), message=who.say(exc))


def _candidates(routing: dict | None, decided_at) -> list[dict]:
    """Every candidate of the routing decision with its predicted start (decided + wait)."""
    out = []
    for item in (routing or {}).get("candidates", []):
        wait = item.get("wait_s")
        said = item.get("reasons_said") or []  # stored with the decision: the reasons in any language
        reasons = [messages.load(said[i] if i < len(said) else None, reason)
                   for i, reason in enumerate(item.get("reasons") or [])]
        explanation = messages.load(item.get("explanation_said"), item.get("explanation") or "")
        out.append(item | {"name": f"{item['cluster']}/{item['partition']}", "reasons": reasons,
                           "explanation": explanation,
                           "predicted_start": None if wait is None or decided_at is None
                           else decided_at + timedelta(seconds=wait)})
    return out


def _chart(who: Viewer, stats: dict) -> dict | None:
    """An ECharts option of the job's CPU, memory and GPU use over time (None without samples)."""
    series = stats["series"]
    if not series["t"]:
        return None
    times = [t * 1000 for t in series["t"]]
    cores, memory, gpu = who.gettext("Cores in use"), who.gettext("Memory (GiB)"), who.gettext("GPU use (%)")
    lines = [{"name": cores, "type": "line", "showSymbol": False, "yAxisIndex": 0,
              "data": [[t, v] for t, v in zip(times, series["cores"])]},
             {"name": memory, "type": "line", "showSymbol": False, "yAxisIndex": 1,
              "data": [[t, round(v / 2**30, 3)] for t, v in zip(times, series["rss"])]}]
    if any(v is not None for v in series["gpu_util"]):
        lines.append({"name": gpu, "type": "line", "showSymbol": False, "yAxisIndex": 0,
                      "data": [[t, None if v is None else round(v * 100, 1)]
                               for t, v in zip(times, series["gpu_util"])]})
    return {"aria": {"enabled": True}, "animation": False, "tooltip": {"trigger": "axis"},
            "legend": {"data": [line["name"] for line in lines], "bottom": 0},
            "grid": {"left": 48, "right": 56, "bottom": 64, "top": 40, "containLabel": True},
            "xAxis": {"type": "time", "axisLabel": {"hideOverlap": True}},
            "yAxis": [{"type": "value", "name": cores}, {"type": "value", "name": memory}],
            "series": lines}


def _log(job: Job, stream: str, offset: int, platform: Platform) -> dict:
    """A piece of the job's stdout or stderr from ``offset``, and whether to ask again (and how soon)."""
    try:
        data, next_offset, exists = job_output.read_output(job, stream, offset, LOG_CHUNK, platform=platform)
        problem = None
    except ServiceError as exc:
        data, next_offset, exists, problem = "", offset, False, str(exc)
    ended = JobState(job.state).is_terminal
    full = next_offset - offset >= LOG_CHUNK - 4  # a cut chunk: more is there now
    return {"stream": stream, "data": data, "offset": next_offset, "exists": exists, "problem": problem,
            "again": problem is None and (full or not ended), "soon": full, "job": job}


def _status_context(session, job: Job) -> dict:
    detail = job_detail(session, job)
    ended = JobState(job.state).is_terminal
    owner_holds = [e.detail for e in detail.events if e.detail in ("held by its owner", "released by its owner")]
    return {"job": job, "detail": detail, "ended": ended, "event_said": timeline.said,
            "held_by_owner": bool(owner_holds) and owner_holds[-1] == "held by its owner",
            "live": not ended or (not detail.settled and not job.needs_reconcile),
            "resubmittable": job.origin == "platform" and bool(job.script) and not job.inputs}


@router.get("/portal/jobs/{job_id}")
def job_page(request: Request, job_id: str):
    who, platform = viewer(request), _platform(request)
    with platform.db.session() as session:
        try:
            job = job_service.get_job(session, session.get(User, who.user.id), _job_id(job_id))
        except NotFound as exc:
            return _not_found(request, who, exc)
        context = _status_context(session, job)
        routing = job.routing or {}
        stats = monitoring.analyse(session, platform, job)
        updatable = job.owner_id == who.user.id and not context["ended"] and job.native_id is not None
        partitions = sorted(session.scalars(select(Partition.name).where(
            Partition.cluster_id == job.cluster_id, Partition.available.is_(True)))) if updatable else []
        return page(request, who, "jobs/detail.html", **context, routing=routing, updatable=updatable,
                    update_partitions=partitions,
                    candidates=_candidates(routing, _decided_at(routing) or job.submitted_at), stats=stats,
                    chart=_chart(who, stats), logs=[_log(job, s, 0, platform) for s in _streams(job)],
                    live_every=LIVE_EVERY, message=request.query_params.get("done", "")[:20])


def _streams(job: Job) -> list[str]:
    """stdout, and stderr when it goes to a file of its own (sbatch writes both to one by default)."""
    return ["stdout"] + (["stderr"] if job.stderr_path and job.stderr_path != job.stdout_path else [])


def _decided_at(routing: dict):
    try:
        return datetime.fromisoformat(routing["decided_at"]) if routing.get("decided_at") else None
    except (TypeError, ValueError):
        return None


@router.get("/portal/jobs/{job_id}/status")
def job_status(request: Request, job_id: str):
    """The job's state, timeline, cost and actions alone, for htmx while it is live."""
    who, platform = viewer(request), _platform(request)
    with platform.db.session() as session:
        try:
            job = job_service.get_job(session, session.get(User, who.user.id), _job_id(job_id))
        except NotFound as exc:
            return _not_found(request, who, exc)
        return page(request, who, "jobs/_status.html", **_status_context(session, job), live_every=LIVE_EVERY)


@router.get("/portal/jobs/{job_id}/log")
def job_log(request: Request, job_id: str, stream: str = "stdout", offset: str = "0"):
    """The next piece of a log from ``offset`` (appended to the page's <pre> by htmx), and the poller."""
    who, platform = viewer(request), _platform(request)
    if stream not in ("stdout", "stderr"):
        return _bad_request(request, who, InvalidRequest(f"unknown stream {stream[:40]!r}: stdout or stderr"),
                            who.gettext("This log cannot be shown"))
    if not offset.isdigit() or int(offset) > MAX_OFFSET:
        return _bad_request(request, who, InvalidRequest(f"offset {offset[:40]!r} is not a position in the log"),
                            who.gettext("This log cannot be shown"))
    with platform.db.session() as session:
        try:
            job = job_service.get_job(session, session.get(User, who.user.id), _job_id(job_id))
        except NotFound as exc:
            return _not_found(request, who, exc)
        return page(request, who, "jobs/_log.html", log=_log(job, stream, int(offset), platform), piece=True)


def _act(request: Request, job_id: str, csrf_token: str, action, done: str):
    """A form's action on a job: CSRF first, then the service; its refusal is shown on an error page."""
    who, platform = viewer(request), _platform(request)
    check_csrf(who, csrf_token or request.headers.get("x-csrf-token"))
    try:
        number = _job_id(job_id)
        result = action(platform, who.user.id, number)
    except NotFound as exc:
        return _not_found(request, who, exc)
    except ServiceError as exc:
        return page(request, who, "error.html", status=409 if isinstance(exc, Conflict) else 400,
                    title=who.gettext("This was not done"), message=who.say(exc))
    return RedirectResponse(f"/portal/jobs/{result.id}?done={done}", status_code=303)


@router.post("/portal/jobs/{job_id}/cancel")
async def cancel(request: Request, job_id: str, csrf_token: str = Form("", max_length=100)):
    return await run_in_threadpool(_act, request, job_id, csrf_token, job_service.cancel_job, "cancel")


@router.post("/portal/jobs/{job_id}/hold")
async def hold(request: Request, job_id: str, csrf_token: str = Form("", max_length=100)):
    return await run_in_threadpool(_act, request, job_id, csrf_token, job_hold.hold_job, "hold")


@router.post("/portal/jobs/{job_id}/release")
async def release(request: Request, job_id: str, csrf_token: str = Form("", max_length=100)):
    return await run_in_threadpool(_act, request, job_id, csrf_token, job_hold.release_job, "release")


@router.post("/portal/jobs/{job_id}/requeue")
async def requeue(request: Request, job_id: str, csrf_token: str = Form("", max_length=100)):
    return await run_in_threadpool(_act, request, job_id, csrf_token, job_requeue.requeue_job, "requeue")


def _resubmit(platform: Platform, user_id: int, job_id: int) -> Job:
    """The same script, script arguments and account as the job, routed afresh."""
    with platform.db.session() as session:
        job = job_service.get_job(session, session.get(User, user_id), job_id)
        script, args, name, account = job.script, list(job.script_args or []), job.name, job.account.name
    return job_service.submit_job(platform, user_id, script, ["-A", account] + (["--", *args] if args else []),
                                  script_name=name)


@router.post("/portal/jobs/{job_id}/resubmit")
async def resubmit(request: Request, job_id: str, csrf_token: str = Form("", max_length=100)):
    return await run_in_threadpool(_act, request, job_id, csrf_token, _resubmit, "resubmit")


@router.post("/portal/jobs/{job_id}/update")
async def update(request: Request, job_id: str, csrf_token: str = Form("", max_length=100),
                 time_limit: str = Form("", max_length=40), partition: str = Form("", max_length=100),
                 name: str = Form("", max_length=200)):
    """`cnet update` by form: what was left as it is (empty, or the job's own value) is not sent."""
    def change(platform: Platform, user_id: int, number: int) -> Job:
        with platform.db.session() as session:
            job = job_service.get_job(session, session.get(User, user_id), number)
            same_partition, same_name = job.partition, job.name
        return job_update.update_job(platform, user_id, number, time_limit=time_limit.strip() or None,
                                     partition=None if partition.strip() in ("", same_partition) else partition.strip(),
                                     name=None if name.strip() in ("", same_name) else name.strip())
    return await run_in_threadpool(_act, request, job_id, csrf_token, change, "update")
