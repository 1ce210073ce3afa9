"""Idle GPUs: a running job whose cards all sit under a few percent for a while is reported to its
owner once, and cancelled when the platform's policy says so (the cards go to people who use them)."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from ...domain.states import ON_NODES
from ...messages import msg
from ...store.models import Job, JobSample, Notification, User
from ..integration.notifications import IDLE_GPU, IDLE_GPU_CANCELLED
from ..platform import Platform

log = logging.getLogger(__name__)

IDLE_GPU_UTIL = 5  # percent: under this on every card the GPUs are idle


def idle_gpu_minutes(samples: list[JobSample], interval_s: float) -> float:
    """How long every GPU of the job has been under IDLE_GPU_UTIL, up to the last sample (a gap ends it)."""
    stretch_start = None
    previous = None
    for s in reversed(samples):
        if not s.gpus or any(g.get("util", 0) >= IDLE_GPU_UTIL for g in s.gpus):
            break
        if previous is not None and previous.t - s.t > 2 * interval_s:
            break  # unknown in between: not counted as idle
        stretch_start, previous = s, s
    return 0.0 if stretch_start is None else (samples[-1].t - stretch_start.t) / 60


def watch_idle_gpus(platform: Platform, job_id: int) -> str | None:
    """Tell the owner of a running job whose GPUs sit idle (once), and cancel it if the policy says so."""
    from sqlalchemy.exc import IntegrityError

    from ...store.models import Account, JobEvent
    from ..integration.delivery import enqueue

    cfg = platform.settings.monitoring
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        if not job.gpus or job.state not in ON_NODES:
            return None
        if session.scalar(select(Notification.id).where(Notification.key == f"idle_gpu:{job.id}:{job.owner_id}")):
            return None  # told (and acted) already
        last = session.scalar(select(func.max(JobSample.t)).where(JobSample.job_id == job_id))
        if last is None:
            return None
        interval = job.sample_interval_s or cfg.interval_s
        since = last - (cfg.idle_gpu_minutes * 60 + 4 * interval)  # node time, not ours
        samples = list(session.scalars(select(JobSample).where(JobSample.job_id == job_id, JobSample.t >= since)
                                       .order_by(JobSample.t)))
        # every card of the job must be seen (the agent sees the first node's only): otherwise no verdict
        if not samples or len(samples[-1].gpus or []) < job.gpus:
            return None
        minutes = idle_gpu_minutes(samples, interval)
        if minutes < cfg.idle_gpu_minutes:
            return None
        action, owner_id = cfg.idle_gpu_action, job.owner_id
    if action == "cancel":
        from ..jobs.job_actions import cancel_job

        try:  # cancelled first: a notice saying so is only written once it is true
            cancel_job(platform, owner_id, job_id)
        except Exception as exc:
            log.warning("cancelling idle-GPU job %s: %s (next pass tries again)", job_id, exc)
            return None
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        owner, account = session.get(User, job.owner_id), session.get(Account, job.account_id)
        template = IDLE_GPU_CANCELLED if action == "cancel" else IDLE_GPU
        message = msg(template, job=job.id, name=job.name, cluster=job.cluster.name, gpus=job.gpus,
                      minutes=format(minutes, ".0f"))
        try:
            with session.begin_nested():
                notice = Notification(user_id=owner.id, account_id=account.id, kind="idle_gpu", message=message,
                                      key=f"idle_gpu:{job.id}:{owner.id}")
                session.add(notice)
                session.flush()
                enqueue(session, notice, owner, account, first_of_event=True)
                session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state, detail=message))
        except IntegrityError:
            return None  # told already
    return "cancelled" if action == "cancel" else "notified"
