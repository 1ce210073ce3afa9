"""/jobs: submit, list, show, cancel, output. A user sees only their own jobs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from ...domain.states import JobState
from ...domain.money import MoneyError, to_decimal
from ...schemas import (MAX_OFFSET, MAX_ROW_ID, JobBatch, JobBatchItem, JobBatchResult, JobDetail, JobOut, JobSubmit,
                        OutputChunk, RoutingIn)
from ...services.errors import InvalidRequest, NotFound
from ...services.jobs import job_accept, job_output, jobs as job_service
from ...services.platform import Platform
from ...store.models import Job, User
from ..deps import current_user, get_platform, get_session
from ..responses import errors
from ..views import job_detail, job_out

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=errors(400, 401, 402, 403, 404, 409, 413, 422, 503))
JobId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the platform's job id")]


def routing_request(body: RoutingIn) -> job_service.RoutingRequest:
    try:
        max_price = None if body.max_price is None else to_decimal(body.max_price)
    except MoneyError as exc:
        raise InvalidRequest(f"max_price: {exc}") from None
    return job_service.RoutingRequest(region=body.region, max_price=max_price,
                                      max_wait_minutes=body.max_wait_minutes, policy=body.policy,
                                      data_at=tuple(body.data_at))


def _inputs(platform: Platform, user_id: int, paths: list[str]) -> job_service.JobExtras:
    """Workspace files to stage, checked (each exists, is a file, no two share a name) before anything is written."""
    from ...services.files.job_files import resolve_inputs

    with platform.db.session() as session:
        return job_service.JobExtras(inputs=resolve_inputs(session, platform, session.get(User, user_id), paths))


WAIT = Query("accepted", pattern="^(accepted|native)$", description=(
    "accepted (the default): the job and its hold are written and the request returns (202, SUBMITTING); "
    "a worker's submitter sends it to the cluster (SUBMITTING -> PENDING). native: the request waits for "
    "the cluster's job id (201), trying the next candidate cluster if the first refuses"))


@router.post("", status_code=202, response_model=JobOut,
             responses={200: {"description": "an earlier request with this idempotency key made the job"},
                        201: {"description": "submitted (wait=native): the job has its cluster id"}})
async def submit(body: JobSubmit, response: Response, wait: str = WAIT, user: User = Depends(current_user),
                 platform: Platform = Depends(get_platform)):
    # routing and the database (and sbatch, with wait=native) are blocking I/O: keep them off the event loop
    first = await run_in_threadpool(_by_key, platform, user.id, body.idempotency_key)
    if first is not None:
        response.status_code = 200
        job_id = first
    elif wait == "native":
        extras = await run_in_threadpool(_inputs, platform, user.id, body.inputs) if body.inputs else None
        job = await run_in_threadpool(job_service.submit_job, platform, user.id, body.script, body.args,
                                      body.script_name, routing_request(body.routing), extras,
                                      body.idempotency_key)
        response.status_code, job_id = 201, job.id
    else:
        extras = await run_in_threadpool(_inputs, platform, user.id, body.inputs) if body.inputs else None
        done = await run_in_threadpool(job_accept.accept_job, platform, user.id, body.script, body.args,
                                       body.script_name, routing_request(body.routing), extras, body.idempotency_key)
        response.status_code, job_id = (202 if done.created else 200), done.job_id
    with platform.db.session() as session:
        return job_out(session, session.get(Job, job_id))


def _by_key(platform: Platform, user_id: int, key: str | None) -> int | None:
    if not key:
        return None
    with platform.db.session() as session:
        first = job_service.job_by_key(session, user_id, key)
        return None if first is None else first.id


@router.post(":batch", response_model=JobBatchResult)
async def submit_batch(body: JobBatch, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    """Many jobs in one request, each accepted as POST /jobs accepts one, in its own transaction: a
    refused job gets its status and reason and leaves nothing written; the others get their ids."""
    out: dict[int, JobBatchItem] = {}
    items, where = [], []
    for index, j in enumerate(body.jobs):
        try:
            wanted = routing_request(j.routing)
        except InvalidRequest as exc:
            out[index] = JobBatchItem(index=index, status=exc.status_code, detail=str(exc))
            continue
        items.append(job_accept.Item(j.script, j.args, j.script_name, wanted, tuple(j.inputs), j.idempotency_key))
        where.append(index)
    results = await run_in_threadpool(job_accept.accept_many, platform, user.id, items)
    for r in results:
        index = where[r.index]
        out[index] = JobBatchItem(index=index, id=r.job_id, created=r.created, status=r.status, detail=r.detail)
    refused = sum(1 for r in out.values() if r.id is None)
    return JobBatchResult(accepted=len(out) - refused, refused=refused, results=[out[i] for i in sorted(out)])


@router.get("", response_model=list[JobOut])
def list_jobs(
    request: Request,
    response: Response,
    active: bool = Query(False, description="only jobs that have not ended"),
    state: str | None = Query(None, max_length=200, description="states as squeue -t takes them: PD,R or "
                              "PENDING,RUNNING or all"),
    user_names: str | None = Query(None, alias="user", max_length=1000,
                                   description="owners, comma-separated (squeue -u); default: yourself"),
    partition: str | None = Query(None, max_length=1000, description="partitions, comma-separated (-p)"),
    cluster: str | None = Query(None, max_length=1000, description="clusters, comma-separated (-M)"),
    name: str | None = Query(None, max_length=2000, description="job names, comma-separated (-n)"),
    start: datetime | None = Query(None, description="jobs not ended before this (sacct -S)"),
    end: datetime | None = Query(None, description="jobs submitted before this (sacct -E)"),
    before: int | None = Query(None, ge=1, le=MAX_ROW_ID, description="page: jobs with a smaller id"),
    limit: int = Query(100, ge=1, le=1000),
    user: User = Depends(current_user),
    session=Depends(get_session),
):
    """Newest first; page on by passing the last id as ``before``, or follow the ``Link: rel="next"``
    header, which a full page carries (a cursor: rows added meanwhile neither repeat nor go missing)."""
    from ...services.jobs.job_list import JobFilter, list_jobs as listed, split

    found = listed(session, user, JobFilter(
        users=split(user_names), partitions=split(partition), clusters=split(cluster), names=split(name),
        states=state, active_only=active, start=_utc(start), end=_utc(end), before=before, limit=limit))
    if len(found) == limit:
        following = request.url.include_query_params(before=found[-1].id)
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return [job_out(session, job) for job in found]


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is UTC (as the CLI sends it)."""
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


@router.get("/{job_id}", response_model=JobDetail)
def show(job_id: JobId, user: User = Depends(current_user), session=Depends(get_session)):
    return job_detail(session, job_service.get_job(session, user, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut)
async def cancel(job_id: JobId, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    job = await run_in_threadpool(job_service.cancel_job, platform, user.id, job_id)
    with platform.db.session() as session:
        return job_out(session, session.get(Job, job.id))


@router.post("/{job_id}/hold", response_model=JobOut)
async def hold(job_id: JobId, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    """Keep a waiting job from starting until released (a running job cannot be held: 409)."""
    from ...services.jobs.job_hold import hold_job

    job = await run_in_threadpool(hold_job, platform, user.id, job_id)
    with platform.db.session() as session:
        return job_out(session, session.get(Job, job.id))


@router.post("/{job_id}/release", response_model=JobOut)
async def release(job_id: JobId, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    """Let a job you held start (a job held for lack of funds is released by a top-up, not here)."""
    from ...services.jobs.job_hold import release_job

    job = await run_in_threadpool(release_job, platform, user.id, job_id)
    with platform.db.session() as session:
        return job_out(session, session.get(Job, job.id))


@router.post("/{job_id}/requeue", response_model=JobOut)
async def requeue(job_id: JobId, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    """Put a running job back in the queue to run again from the start (scontrol requeue); each run
    is charged. A waiting or ended job, or a cluster that cannot requeue: 409 with the reason."""
    from ...services.jobs.job_requeue import requeue_job

    job = await run_in_threadpool(requeue_job, platform, user.id, job_id)
    with platform.db.session() as session:
        return job_out(session, session.get(Job, job.id))


class JobUpdate(BaseModel):
    """scontrol update's fields an owner may change."""

    model_config = ConfigDict(extra="forbid")
    time_limit: str | None = Field(None, max_length=32, description="lower only; Slurm's formats (M, H:M:S, D-H…)")
    partition: str | None = Field(None, min_length=1, max_length=64, description="while the job waits")
    name: str | None = Field(None, min_length=1, max_length=200)


@router.post("/{job_id}/update", response_model=JobOut)
async def update(job_id: JobId, body: JobUpdate, user: User = Depends(current_user),
                 platform: Platform = Depends(get_platform)):
    """Lower the time limit, move a waiting job to another partition, rename it (scontrol update)."""
    from ...services.jobs.job_update import update_job

    job = await run_in_threadpool(update_job, platform, user.id, job_id, body.time_limit, body.partition, body.name)
    with platform.db.session() as session:
        return job_out(session, session.get(Job, job.id))


@router.get("/{job_id}/output", response_model=OutputChunk)
def output(
    job_id: JobId,
    stream: str = Query("stdout", pattern="^(stdout|stderr)$"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(job_output.MAX_OUTPUT_CHUNK, ge=1, le=job_output.MAX_OUTPUT_CHUNK),
    user: User = Depends(current_user),
    session=Depends(get_session),
    platform: Platform = Depends(get_platform),
):
    job = job_service.get_job(session, user, job_id)
    # walked from the cluster's workdir root without following links, and only inside the owner's space
    data, next_offset, exists = job_output.read_output(job, stream, offset, limit, platform=platform)
    return OutputChunk(stream=stream, data=data, offset=offset, next_offset=next_offset, exists=exists,
                       finished=JobState(job.state).is_terminal)


@router.get("/{job_id}/stats")
def stats(job_id: JobId, user: User = Depends(current_user), platform: Platform = Depends(get_platform),
          session=Depends(get_session)):
    """What the job did over time (CPU, memory, GPU), its efficiency, and what its waste cost."""
    from ...services.monitoring import monitoring

    return monitoring.analyse(session, platform, job_service.get_job(session, user, job_id))


@router.get("/{job_id}/stats.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def stats_png(job_id: JobId, user: User = Depends(current_user), platform: Platform = Depends(get_platform),
              session=Depends(get_session)):
    """The same as a chart: cores in use, memory and GPU utilisation over time, gaps shaded."""
    from ...monitoring.charts import job_chart
    from ...services.monitoring import monitoring

    stats = monitoring.analyse(session, platform, job_service.get_job(session, user, job_id))
    if not stats["samples"]:
        raise NotFound(f"job {job_id} has no samples (yet)")
    return Response(job_chart(stats), media_type="image/png")


@router.post("/estimate")
async def estimate(body: JobSubmit, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    """Where the job would go and when it would start, per candidate; nothing is submitted."""
    decision = await run_in_threadpool(job_service.estimate_job, platform, user.id, body.script, body.args,
                                       routing_request(body.routing))
    out = decision.to_json()
    now = decision.decided_at
    for item in out["candidates"]:
        item["predicted_start"] = None if item["wait_s"] is None or now is None else \
            (now + timedelta(seconds=item["wait_s"])).isoformat()
    return out
