"""The seff/reportseff view over many jobs: whose jobs one may see, over which period, with money.

Users see their own jobs; a project's PI, its tenant's admin, finance and operators see every
job of the project (``--project``) and, for another user (``--user``), tenant admins see their
tenant's users and finance and operators everyone. Anything else is refused, naming why.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ...domain.states import TERMINAL_STATES
from ...store.models import Account, Job, User
from ...messages import msg
from ..errors import Forbidden, InvalidRequest, NotFound
from .monitoring import analyse
from ..platform import Platform
from ..tenancy.roles import manages_project, sees_user
from ..tenancy.tenants import can_see_account


def _user_in_view(session: Session, viewer: User, name: str) -> User:
    other = session.scalar(select(User).where(User.name == name))
    # a user one may not see answers as a missing one: which names exist is not told
    if other is None or not sees_user(viewer, other):
        raise NotFound(msg("no user %(name)r whose jobs you may see (your own; your tenant's as its "
                           "admin; everyone's as finance or an operator)",
                           name=name))
    return other


def efficiency_report(session: Session, platform: Platform, viewer: User, *, user: str | None = None,
                      project: str | None = None, since: datetime | None = None, until: datetime | None = None,
                      limit: int = 50) -> list[dict]:
    """One row per ended job that ran, newest first."""
    if since is not None and until is not None and since >= until:
        raise InvalidRequest(msg("--from (%(value)s) must be before --to (%(value2)s)",
                                 value=since.isoformat(), value2=until.isoformat()))
    query = select(Job).where(Job.state.in_([s.value for s in TERMINAL_STATES]), Job.start_time.is_not(None))
    if project is not None:
        account = session.scalar(select(Account).where(Account.name == project))
        if account is None or not can_see_account(session, viewer, account):
            raise NotFound(msg("no project %(project)r of yours", project=project))
        query = query.where(Job.account_id == account.id)
        if not manages_project(session, viewer, account) and user is None:
            query = query.where(Job.owner_id == viewer.id)  # a plain member: their own jobs in it
    if user is not None:
        owner = _user_in_view(session, viewer, user)
        if project is not None and owner.id != viewer.id and not manages_project(session, viewer, account):
            raise Forbidden(msg("the jobs of %(user)s in %(project)s are not yours to see",
                                user=user, project=project))
        query = query.where(Job.owner_id == owner.id)
    elif project is None:
        query = query.where(Job.owner_id == viewer.id)
    if since is not None:
        query = query.where(Job.end_time >= since)
    if until is not None:
        query = query.where(Job.end_time < until)
    rows = []
    related = (selectinload(Job.owner), selectinload(Job.account), selectinload(Job.cluster))  # not one query a row
    for job in session.scalars(query.options(*related).order_by(Job.id.desc()).limit(limit)):
        result = analyse(session, platform, job)
        eff, top = result["efficiency"], (result["findings"] or [None])[0]
        rows.append({"job": job.id, "name": job.name, "user": job.owner.name, "project": job.account.name,
                     "state": job.state, "cluster": job.cluster.name, "cores": job.cores, "gpus": job.gpus,
                     "runtime_s": result["runtime_s"], "samples": result["samples"],
                     "cpu_efficiency": eff["cpu_efficiency"], "mem_efficiency": eff["mem_efficiency"],
                     "gpu_utilisation": eff["gpu_utilisation"], "price": result["price"], "wasted": result["wasted"],
                     "finding": top["code"] if top else None})
    return rows
