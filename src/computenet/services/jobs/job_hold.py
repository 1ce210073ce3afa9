"""Holding a waiting job (it stays queued but does not start) and releasing it, by its owner.

Only a PENDING job: the adapters' pause() would suspend a running one, which keeps its allocation
(and its charge running). A job held because its account ran out of money is released by the
money coming back (services/billing/enforcement.py), not by its owner.
"""

from __future__ import annotations

from ...clusters.base import ClusterError
from ...domain.states import JobState
from ...store.models import Job, JobEvent, User
from ...messages import msg
from ..errors import Conflict, InvalidRequest, Unavailable
from .job_actions import get_job
from ..platform import Platform


def hold_job(platform: Platform, user_id: int, job_id: int) -> Job:
    return _set_held(platform, user_id, job_id, True)


def release_job(platform: Platform, user_id: int, job_id: int) -> Job:
    return _set_held(platform, user_id, job_id, False)


def _set_held(platform: Platform, user_id: int, job_id: int, held: bool) -> Job:
    with platform.db.session() as session:
        job = get_job(session, session.get(User, user_id), job_id)
        if job.state != JobState.PENDING.value:
            raise Conflict(msg("job %(job_id)s is %(state)s: only a waiting (PENDING) job can be "
                               "%(value)s",
                               job_id=job_id, state=job.state, value=msg("held") if held else msg("released")))
        if not held and job.paused_for_funds_at is not None:
            raise Conflict(msg("job %(job_id)s is held because its account ran out of money; it is "
                               "released when the account is topped up",
                               job_id=job_id))
        if job.native_id is None:
            raise InvalidRequest(msg("job %(job_id)s is still being submitted; try again in a moment",
                                     job_id=job_id))
        cluster_name, native_id = job.cluster.name, job.native_id
    adapter = platform.adapter(cluster_name)
    if not hasattr(adapter, "pause"):
        raise Unavailable(msg("cluster %(cluster_name)s cannot hold or release jobs", cluster_name=cluster_name))
    try:
        (adapter.pause if held else adapter.resume)(native_id)
    except LookupError:
        raise Conflict(msg("cluster %(cluster_name)s no longer has job %(job_id)s",
                           cluster_name=cluster_name, job_id=job_id)) from None
    except ClusterError as exc:
        raise Unavailable(msg("cluster %(cluster_name)s could not %(value)s job %(job_id)s: %(exc)s",
                              cluster_name=cluster_name, value=msg("hold") if held else msg("release"), job_id=job_id,
                              exc=exc)) from None
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state,
                             detail="held by its owner" if held else "released by its owner"))
        return job
