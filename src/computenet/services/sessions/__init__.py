"""Interactive sessions: JupyterLab (a shell, a desktop) on a compute node, opened through the
platform's proxy under /sessions/<id>/ and billed as the job that runs it.

A session is an interactive app run as a normal batch job (routed, funds-checked, held, charged:
services/apps/app_runs + services/jobs/jobs), plus two private files staged into its directory (the
one-time secret and the base URL). states: queued -> starting -> running -> ended. The watch
(watch.py) moves it along; the proxy (api/session_proxy.py) serves the owner only.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...billing import funds, ledger
from ...catalog.interactive import BASE_FILE, SECRET_FILE, probe_path
from ...clusters.base import ClusterError, SubmitRejected
from ...domain.money import CENT
from ...messages import msg
from ...domain.states import JobState
from ...store.models import Account, Charge, InteractiveSession, Job, Partition, User
from ...store.types import utcnow
from ..errors import Conflict, InsufficientFunds, InvalidRequest, NotFound, Unavailable
from ..platform import Platform

STATES = ("queued", "starting", "running", "ended")
LIVE = ("queued", "starting", "running")
MAX_HOURS = 24 * 7


def base_url(session_id: int) -> str:
    return f"/sessions/{session_id}/"


def start(platform: Platform, user_id: int, app: str, cores: int | None = None, hours: float | None = None,
          params: dict | None = None, account: str | None = None, cluster: str | None = None,
          partition: str | None = None, wanted=None) -> int:
    """Submit the app's job and return the new session's id; a refused start leaves no session, job or hold."""
    from ..apps import app_runs, apps
    from ..jobs.jobs import JobExtras, RoutingRequest, submit_job

    params = dict(params or {})
    if cores is not None:
        if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
            raise InvalidRequest("cores must be a positive whole number")
    if hours is not None and (not isinstance(hours, (int, float)) or isinstance(hours, bool)
                              or not 0 < hours <= MAX_HOURS):
        raise InvalidRequest(f"hours must be more than 0 and at most {MAX_HOURS}")
    with platform.db.session() as session:  # the kind first: a batch app's parameters are not the point
        found = apps.find(session, session.get(User, user_id), app).spec
    if not found.interactive:
        raise InvalidRequest(f"app {found.name} is not interactive: run it as a job (POST /apps/{found.name}/runs)")
    if cores is not None and found.properties().get("cores", {}).get("x-resource") == "cores":
        params["cores"] = cores
    ref, values, resources, inputs, scripts, envs, _ = app_runs.prepare(
        platform, user_id, app, params, found.version, account, cluster, partition)
    spec = ref.spec
    maximum = spec.resources.get("maximum") or {}
    if cores is not None and resources.cores != cores:
        resources = replace(resources, cores=cores)
    if hours is not None:
        resources = replace(resources, time_minutes=max(1, round(hours * 60)))
    for key, value in (("cores", resources.cores), ("time_minutes", resources.time_minutes)):
        if key in maximum and value > maximum[key]:
            raise InvalidRequest(f"{spec.name}: {key.replace('_', ' ')} {value} is above the app's maximum of "
                                 f"{maximum[key]}")
    flags = app_runs.sbatch_flags(resources, spec.name, account, cluster, partition)
    with platform.db.session() as session:
        row = InteractiveSession(owner_id=user_id, app=spec.name, app_version=spec.version,
                                 kind=spec.interactive["type"], probe=probe_path(spec.interactive), state="queued",
                                 secret=secrets.token_urlsafe(32), detail="")
        session.add(row)
        session.flush()
        session_id, secret = row.id, row.secret
    wanted = replace(wanted or RoutingRequest(), only_clusters=frozenset(scripts),
                     only_reason=f"does not offer app {spec.name}")
    extras = JobExtras(scripts=scripts, inputs=inputs, outputs=None,
                       app={"name": spec.name, "version": spec.version, "scope": ref.scope, "params": values,
                            "environments": envs, "scripts": scripts, "session": session_id,
                            "runtime_hint_minutes": spec.runtime_hint_minutes},
                       private_files={SECRET_FILE: secret, BASE_FILE: base_url(session_id)})
    try:
        job = submit_job(platform, user_id, next(iter(scripts.values())), flags, script_name=spec.name,
                         wanted=wanted, extras=extras)
    except BaseException:
        with platform.db.session() as session:  # nothing of a refused start stays behind
            session.query(InteractiveSession).filter(InteractiveSession.id == session_id).delete()
        raise
    with platform.db.session() as session:
        session.get(InteractiveSession, session_id).job_id = job.id
    return session_id


def not_open(row: InteractiveSession | None, session_id: int):
    """Why the proxy cannot open a session (a translatable message), or None when it can."""
    if row is None:
        return msg("no session %(session)s", session=session_id)
    if row.state == "ended":
        return msg("session %(session)s has ended (%(reason)s): %(detail)s", session=session_id,
                   reason=row.ended_reason or "ended", detail=row.detail or "-")
    if row.state != "running" or row.address is None or row.port is None:
        return msg("session %(session)s is not ready yet: its job is queued or its server is starting",
                   session=session_id)
    return None


def not_answering(session_id: int, problem: str):
    return msg("the server of session %(session)s does not answer (%(problem)s): its node may have stopped. "
               "The sessions page shows what became of it.", session=session_id, problem=problem)


def owned(session: Session, user: User, session_id: int) -> InteractiveSession:
    """The user's own session; anyone else's is not found (not even that it exists)."""
    row = session.get(InteractiveSession, session_id)
    if row is None or row.owner_id != user.id:
        raise NotFound(f"no session {session_id}")
    return row


def listing(session: Session, user: User, include_ended: bool = True) -> list[InteractiveSession]:
    query = select(InteractiveSession).where(InteractiveSession.owner_id == user.id)
    if not include_ended:
        query = query.where(InteractiveSession.state.in_(LIVE))
    return list(session.scalars(query.order_by(InteractiveSession.id.desc()).limit(200)))


def cost_so_far(session: Session, job: Job | None, now: datetime) -> Decimal:
    """Charged so far for an ended job; while it runs, its share of the hold for the time it ran."""
    if job is None:
        return Decimal("0.00")
    charged = session.scalar(select(func.sum(Charge.amount)).where(Charge.job_id == job.id))
    if JobState(job.state).is_terminal or job.start_time is None or not job.time_limit_minutes:
        return Decimal(charged or 0).quantize(CENT)
    ran = max(0.0, (now - job.start_time).total_seconds())
    share = Decimal(str(min(1.0, ran / (job.time_limit_minutes * 60))))
    return max(Decimal(charged or 0), (job.max_cost * share)).quantize(CENT, rounding=ROUND_HALF_UP)


def to_json(session: Session, row: InteractiveSession, now: datetime | None = None) -> dict:
    now = now or utcnow()
    job = row.job
    time_left = None
    if job is not None and job.start_time is not None and job.time_limit_minutes and row.state != "ended":
        end = job.start_time + timedelta(minutes=job.time_limit_minutes)
        time_left = max(0, int((end - now).total_seconds()))
    return {
        "id": row.id, "app": row.app, "version": row.app_version, "kind": row.kind, "state": row.state,
        "ready": row.state == "running", "url": base_url(row.id) if row.state == "running" else None,
        "job_id": row.job_id, "cluster": job.cluster.name if job else None,
        "cores": job.cores if job else None, "gpus": job.gpus if job else None,
        "time_limit_minutes": job.time_limit_minutes if job else None, "time_left_s": time_left,
        "predicted_start": job.predicted_start.isoformat() if job and job.predicted_start and row.state == "queued"
        else None,
        "cost_so_far": str(cost_so_far(session, job, now)), "max_cost": str(job.max_cost) if job else None,
        "created_at": row.created_at.isoformat(), "ready_at": row.ready_at.isoformat() if row.ready_at else None,
        "ended_at": row.ended_at.isoformat() if row.ended_at else None, "ended_reason": row.ended_reason,
        "detail": row.detail,
    }


def end(session: Session, row: InteractiveSession, reason: str, detail: str = "") -> None:
    if row.state == "ended":
        return
    row.state, row.ended_reason, row.ended_at = "ended", reason, utcnow()
    row.detail = detail[:2000]


def stop(platform: Platform, user_id: int, session_id: int) -> None:
    """Cancel the session's job; the session ends at once (the job's charge follows as for any job)."""
    from ..jobs.jobs import cancel_job

    with platform.db.session() as session:
        row = owned(session, session.get(User, user_id), session_id)
        if row.state == "ended":
            return
        job_id = row.job_id
    if job_id is not None:
        cancel_job(platform, user_id, job_id)
    with platform.db.session() as session:
        end(session, session.get(InteractiveSession, session_id), "stopped", "stopped by its owner")
    from .reach import release

    release(platform, session_id)  # this process's forward to it, if any


def extend(platform: Platform, user_id: int, session_id: int, minutes: int) -> None:
    """A longer time limit: within the partition's maximum, and the extra time held like the rest."""
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= MAX_HOURS * 60:
        raise InvalidRequest(f"minutes must be a whole number from 1 to {MAX_HOURS * 60}")
    with platform.db.session() as session:
        row = owned(session, session.get(User, user_id), session_id)
        if row.state == "ended" or row.job is None:
            raise Conflict(f"session {session_id} has ended")
        job = row.job
        if job.native_id is None or not job.time_limit_minutes:
            raise Conflict(f"session {session_id} is still being submitted; try again in a moment")
        new_limit = job.time_limit_minutes + minutes
        part = session.scalar(select(Partition).where(Partition.cluster_id == job.cluster_id,
                                                      Partition.name == job.partition))
        if part is not None and part.max_time_minutes is not None and new_limit > part.max_time_minutes:
            raise InvalidRequest(f"the session would run {new_limit} min; partition {job.partition} on "
                                 f"{job.cluster.name} allows at most {part.max_time_minutes} min")
        extra = (job.max_cost * minutes / job.time_limit_minutes).quantize(CENT, rounding=ROUND_UP)
        try:
            funds.extend_hold(session, job, extra)
        except ledger.InsufficientFunds:
            available = funds.funds(session, session.get(Account, job.account_id)).available
            raise InsufficientFunds(f"{minutes} more minutes may cost up to {extra}, and {available} is available") \
                from None
        except ledger.LedgerError as exc:
            raise Conflict(f"session {session_id} cannot be extended: {exc}") from None
        adapter = platform.adapter(job.cluster.name)
        if not hasattr(adapter, "set_time_limit"):
            raise InvalidRequest(f"cluster {job.cluster.name} cannot change a job's time limit")
        try:  # the money first, in this transaction: a refusal by the scheduler undoes it
            adapter.set_time_limit(job.native_id, new_limit)
        except SubmitRejected as exc:
            raise InvalidRequest(str(exc)) from None
        except LookupError:
            raise Conflict(f"session {session_id}'s job has ended") from None
        except ClusterError as exc:
            raise Unavailable(f"cluster {job.cluster.name} could not extend the session: {exc}") from None
        job.max_cost = job.max_cost + extra
        job.time_limit_minutes = new_limit
