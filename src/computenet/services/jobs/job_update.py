"""`scontrol update` for a job's owner: a lower time limit, another partition while it waits, a new name.

Raising a limit is an operator's decision in Slurm too. A partition is changed only while the job
waits and only to one whose price keeps the job within the money already held for it (the hold
is not grown behind the account's back); the hold itself stays as it is and is trued up when the
job is charged.
"""

from __future__ import annotations

from sqlalchemy import select

from ...clusters.base import ClusterError
from ...domain.resources import RequestError, parse_time_minutes
from ...domain.resources import JobSpec
from ...domain.states import JobState
from ...store.models import Job, JobEvent, Partition, User
from ..errors import Conflict, InvalidRequest, Unavailable
from .job_actions import get_job
from ..platform import Platform
from ...messages import Money, msg


def update_job(platform: Platform, user_id: int, job_id: int, time_limit: str | None = None,
               partition: str | None = None, name: str | None = None) -> Job:
    from .jobs import clean_name
    from ..billing.pricing import max_cost

    if time_limit is None and partition is None and name is None:
        raise InvalidRequest(msg("nothing to update: give TimeLimit, Partition or JobName"))
    with platform.db.session() as session:
        job = get_job(session, session.get(User, user_id), job_id)
        state = JobState(job.state)
        if state.is_terminal:
            raise Conflict(msg("job %(job_id)s has ended (%(state)s): it cannot be updated", job_id=job_id, state=job.state))
        if job.native_id is None:
            raise InvalidRequest(msg("job %(job_id)s is still being submitted; try again in a moment", job_id=job_id))
        changes: dict[str, object] = {}
        limit = job.time_limit_minutes
        if time_limit is not None:
            try:
                limit = parse_time_minutes(time_limit)
            except RequestError as exc:
                raise InvalidRequest(str(exc)) from None
            if limit is None or (job.time_limit_minutes is not None and limit > job.time_limit_minutes):
                raise InvalidRequest(msg("job %(job_id)s's time limit can only be lowered (it is %(minutes)s min); "
                                         "a longer one needs an operator",
                                         job_id=job_id, minutes=job.time_limit_minutes))
            changes["time_limit_minutes"] = limit
        if partition is not None and partition != job.partition:
            if state != JobState.PENDING:
                raise Conflict(msg("job %(job_id)s is %(state)s: only a waiting (PENDING) job can change partition",
                                  job_id=job_id, state=job.state))
            part = session.scalar(select(Partition).where(Partition.cluster_id == job.cluster_id,
                                                          Partition.name == partition))
            if part is None:
                raise InvalidRequest(msg("cluster %(cluster)s has no partition %(partition)r",
                                         cluster=job.cluster.name, partition=partition))
            if part.max_time_minutes is not None and limit is not None and limit > part.max_time_minutes:
                raise InvalidRequest(msg("time limit %(limit)s min is above partition %(partition)s's maximum of "
                                         "%(maximum)s min", limit=limit, partition=partition,
                                         maximum=part.max_time_minutes))
            spec = JobSpec.model_validate(job.spec)
            cost = max_cost(session, platform, spec, limit or 0, part, job.account)
            if cost > job.max_cost:
                raise Conflict(msg("on %(partition)s job %(job_id)s may cost up to %(cost)s, more than the "
                                   "%(held)s held for it; cancel it and submit again there",
                                   partition=partition, job_id=job_id, cost=Money(cost), held=Money(job.max_cost)))
            changes["partition"] = partition
        if name is not None:
            changes["name"] = clean_name(name)
        cluster_name, native_id = job.cluster.name, job.native_id
    if changes:
        adapter = platform.adapter(cluster_name)
        if not hasattr(adapter, "update"):
            raise Unavailable(msg("cluster %(cluster)s cannot update jobs", cluster=cluster_name))
        try:
            adapter.update(native_id, **changes)
        except LookupError:
            raise Conflict(msg("cluster %(cluster)s no longer has job %(job_id)s", cluster=cluster_name, job_id=job_id)) from None
        except ValueError as exc:  # the state does not allow it there (the adapter says why)
            raise Conflict(msg("job %(job_id)s: %(detail)s", job_id=job_id, detail=str(exc))) from None
        except ClusterError as exc:
            raise Unavailable(msg("cluster %(cluster)s could not update job %(job_id)s: %(detail)s",
                                    cluster=cluster_name, job_id=job_id, detail=str(exc))) from None
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        if changes:
            spec = dict(job.spec)
            resources = dict(spec.get("resources") or {})
            if "time_limit_minutes" in changes:
                job.time_limit_minutes = resources["time_limit_minutes"] = changes["time_limit_minutes"]
            if "partition" in changes:
                job.partition = resources["partition"] = changes["partition"]
            if "name" in changes:
                job.name = changes["name"]
            spec["resources"] = resources
            job.spec = spec
            words = {"time_limit_minutes": "TimeLimit", "partition": "Partition", "name": "JobName"}
            session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state,
                                 detail="updated by its owner: " + " ".join(
                                     f"{words[k]}={v}" for k, v in changes.items())))
        return job
