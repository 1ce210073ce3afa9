"""/jobs: submit, list, show, cancel, output. A user sees only their own jobs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from ...domain.states import JobState
from ...schemas import JobDetail, JobOut, JobSubmit, OutputChunk
from ...services import jobs as job_service
from ...services.platform import Platform
from ...store.models import Job, User
from ..deps import current_user, get_platform, get_session
from ..views import job_detail, job_out

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post("", status_code=201, response_model=JobOut)
async def submit(body: JobSubmit, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    # sbatch is blocking I/O: keep it off the event loop
    job = await run_in_threadpool(job_service.submit_job, platform, user.id, body.script, body.args, body.script_name)
    with platform.db.session() as session:
        return job_out(session, session.get(Job, job.id))


@router.get("", response_model=list[JobOut])
def list_jobs(
    active: bool = Query(False, description="only jobs that have not ended"),
    state: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    user: User = Depends(current_user),
    session=Depends(get_session),
):
    return [job_out(session, job) for job in job_service.list_jobs(session, user, active, state, limit)]


@router.get("/{job_id}", response_model=JobDetail)
def show(job_id: int, user: User = Depends(current_user), session=Depends(get_session)):
    return job_detail(session, job_service.get_job(session, user, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut)
async def cancel(job_id: int, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    job = await run_in_threadpool(job_service.cancel_job, platform, user.id, job_id)
    with platform.db.session() as session:
        return job_out(session, session.get(Job, job.id))


@router.get("/{job_id}/output", response_model=OutputChunk)
def output(
    job_id: int,
    stream: str = Query("stdout", pattern="^(stdout|stderr)$"),
    offset: int = Query(0, ge=0),
    limit: int = Query(job_service.MAX_OUTPUT_CHUNK, ge=1, le=job_service.MAX_OUTPUT_CHUNK),
    user: User = Depends(current_user),
    session=Depends(get_session),
):
    job = job_service.get_job(session, user, job_id)
    data, next_offset, exists = job_service.read_output(job, stream, offset, limit)
    return OutputChunk(stream=stream, data=data, offset=offset, next_offset=next_offset, exists=exists,
                       finished=JobState(job.state).is_terminal)
