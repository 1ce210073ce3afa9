"""Requeueing a running job, by its owner (scontrol requeue): it goes back to the queue and runs again
from the start.

Only a running (or suspended) job: a waiting one has nothing to requeue, and an ended job has been
charged and settled (submit it again). The run that ends here is charged on its own when its
accounting record arrives, and the job's hold is grown to cover the next run (poller.py, charging.py).
A cluster kind that cannot requeue says why (the option table's verdict for --requeue).
"""

from __future__ import annotations

from ...clusters.base import ClusterError
from ...domain.states import JobState
from ...messages import msg
from ...store.models import Job, JobEvent, User
from ..errors import Conflict, InvalidRequest, Unavailable
from .job_actions import get_job
from ..platform import Platform

REQUESTED = "requeue requested by its owner"
_RUNNING = (JobState.RUNNING, JobState.SUSPENDED)


def requeue_job(platform: Platform, user_id: int, job_id: int) -> Job:
    with platform.db.session() as session:
        job = get_job(session, session.get(User, user_id), job_id)
        state = JobState(job.state)
        if state.is_terminal:
            raise Conflict(msg("job %(job_id)s has ended (%(state)s): it cannot be requeued; submit it again",
                               job_id=job_id, state=job.state))
        if job.native_id is None:
            raise InvalidRequest(msg("job %(job_id)s is still being submitted; try again in a moment",
                                     job_id=job_id))
        if state not in _RUNNING:
            raise Conflict(msg("job %(job_id)s is %(state)s: only a running job can be requeued",
                               job_id=job_id, state=job.state))
        cluster_name, native_id = job.cluster.name, job.native_id
    adapter = platform.adapter(cluster_name)
    if not hasattr(adapter, "requeue"):
        why = getattr(adapter, "requeue_refusal", None) or "it has no way to requeue a job"
        raise Conflict(msg("cluster %(cluster)s cannot requeue job %(job_id)s: %(why)s",
                           cluster=cluster_name, job_id=job_id, why=why))
    try:
        adapter.requeue(native_id)
    except LookupError:
        raise Conflict(msg("cluster %(cluster)s no longer has job %(job_id)s", cluster=cluster_name,
                           job_id=job_id)) from None
    except ValueError as exc:  # Slurm refuses it for this job (it says why)
        raise Conflict(msg("job %(job_id)s: %(detail)s", job_id=job_id, detail=str(exc))) from None
    except ClusterError as exc:
        raise Unavailable(msg("cluster %(cluster)s could not requeue job %(job_id)s: %(detail)s",
                              cluster=cluster_name, job_id=job_id, detail=str(exc))) from None
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state, detail=REQUESTED))
        return job
