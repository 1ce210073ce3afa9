"""The job list as squeue and sacct filter it: users, partitions, clusters, names, states, a time window.

Pages follow each other by job id ("jobs before N", newest first), so `cnet jobs --all` can page
through every job without OFFSET. One's own jobs unless -u names others one may see
(roles.sees_user: a tenant admin their tenant's users, finance and operators anyone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ...domain.squeue import parse_states
from ...store.models import Cluster, Job, User
from ..tenancy import roles
from ..errors import InvalidRequest, NotFound
from ...messages import When, msg

MAX_PAGE = 1000


@dataclass(frozen=True)
class JobFilter:
    users: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    states: str | None = None  # as typed: "PD,R", "pending,running", "all"
    active_only: bool = False
    start: datetime | None = None  # sacct -S: jobs not ended before this
    end: datetime | None = None  # sacct -E: jobs submitted before this
    before: int | None = None  # page: jobs with a smaller id
    limit: int = 100


def split(text: str | None) -> tuple[str, ...]:
    """A comma list as squeue takes it ('-p a,b'); blanks dropped."""
    return tuple(w.strip() for w in (text or "").split(",") if w.strip())


def list_jobs(session: Session, viewer: User, f: JobFilter) -> list[Job]:
    query = select(Job)
    if f.users:
        ids = []
        for name in f.users:
            other = session.scalar(select(User).where(User.name == name))
            if other is None or not roles.sees_user(viewer, other):
                raise NotFound(msg("no user %(name)r", name=name))  # whom one may not see is not told apart from nobody
            ids.append(other.id)
        query = query.where(Job.owner_id.in_(ids))
    else:
        query = query.where(Job.owner_id == viewer.id)
    if f.states:
        try:
            states = parse_states(f.states)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        query = query.where(Job.state.in_(sorted(s.value for s in states)))
    if f.active_only:
        query = query.where(Job.state.not_in(sorted(s.value for s in parse_states("ended"))))
    if f.partitions:
        query = query.where(Job.partition.in_(f.partitions))
    if f.clusters:
        query = query.where(Job.cluster_id.in_(select(Cluster.id).where(Cluster.name.in_(f.clusters))))
    if f.names:
        query = query.where(Job.name.in_(f.names))
    if f.start and f.end and f.start > f.end:
        raise InvalidRequest(msg("start %(start)s is after end %(end)s", start=When(f.start), end=When(f.end)))
    if f.start:
        query = query.where(or_(Job.end_time.is_(None), Job.end_time >= f.start))
    if f.end:
        query = query.where(Job.submitted_at <= f.end)
    if f.before is not None:
        query = query.where(Job.id < f.before)
    limit = max(1, min(f.limit, MAX_PAGE))
    return list(session.scalars(query.order_by(Job.id.desc()).limit(limit)))
