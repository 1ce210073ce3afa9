"""A user's jobs: one, many, and cancelling one."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ...clusters.base import ClusterError
from ...domain.states import JobState, TERMINAL_STATES
from ...store.models import Job, JobEvent, User
from ...store.types import utcnow
from ...messages import msg
from ..errors import InvalidRequest, NotFound, Unavailable
from ..platform import Platform

_TERMINAL = [s.value for s in TERMINAL_STATES]


def get_job(session: Session, user: User, job_id: int) -> Job:
    job = session.get(Job, job_id)
    # someone else's job is "not found": its existence is not our business
    if job is None or (job.owner_id != user.id and not user.is_admin):
        raise NotFound(msg("no job %(job_id)s", job_id=job_id))
    return job


def list_jobs(session: Session, user: User, active_only: bool = False, state: str | None = None,
              limit: int = 100) -> list[Job]:
    query = select(Job).where(Job.owner_id == user.id)
    if active_only:
        query = query.where(Job.state.not_in(_TERMINAL))
    if state:
        try:
            query = query.where(Job.state == JobState(state.upper()).value)
        except ValueError:
            raise InvalidRequest(msg("unknown state %(state)r", state=state)) from None
    return list(session.scalars(query.order_by(Job.id.desc()).limit(max(1, min(limit, 1000)))))


def _withdraw_unsent(platform: Platform, job_id: int) -> bool:
    """An accepted job the submitter has not claimed yet: claimed here instead (so it is never sent)
    and withdrawn, its hold released. False when the submitter has it already."""
    from .reconcile import withdraw

    with platform.db.session() as session:
        taken = session.execute(update(Job).where(Job.id == job_id, Job.queued_at.is_not(None),
                                                  Job.submit_claim.is_(None), Job.native_id.is_(None),
                                                  Job.state == JobState.SUBMITTING.value)
                                .values(submit_claim="cancelled", submit_claimed_at=utcnow())
                                .execution_options(synchronize_session=False)).rowcount
        if taken != 1:
            return False
        job = session.get(Job, job_id)
        session.refresh(job)
        withdraw(session, job, "cancelled by its owner before it was sent to the cluster")
        return True


def cancel_job(platform: Platform, user_id: int, job_id: int) -> Job:
    with platform.db.session() as session:
        user = session.get(User, user_id)
        job = get_job(session, user, job_id)
        if JobState(job.state).is_terminal:
            return job
        cluster_name, native_id = job.cluster.name, job.native_id
    if native_id is None:
        if _withdraw_unsent(platform, job_id):
            with platform.db.session() as session:
                return session.get(Job, job_id)
        raise InvalidRequest(msg("job %(job_id)s is still being submitted; try again in a moment", job_id=job_id))
    try:
        platform.adapter(cluster_name).cancel(native_id)
    except LookupError:
        pass  # the cluster has forgotten it: the poller settles it from accounting
    except ClusterError as exc:
        raise Unavailable(msg("cluster %(cluster_name)s could not cancel job %(job_id)s: %(exc)s",
                              cluster_name=cluster_name, job_id=job_id, exc=exc)) from None
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state, detail="cancel requested"))
        return job
