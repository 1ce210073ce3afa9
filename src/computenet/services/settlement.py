"""The settlement pass: rate final records, settle finished jobs.

Each record is rated in its own transaction and each job settled in its
own, so a process killed at any point leaves only whole steps behind; the
next pass (in any process) carries on, and the unique keys make a repeated
step a no-op. Tests kill -9 this pass at random points.
"""

from __future__ import annotations

from sqlalchemy import select

from ..config import BillingConfig
from ..domain.states import TERMINAL_STATES
from ..store.db import Database
from ..store.models import Charge, Job, UsageRecordRow
from .charging import charge_record, settle_job

_TERMINAL = [s.value for s in TERMINAL_STATES]


def expected_records(job: Job) -> int:
    """One accounting record per array task, one for a plain job."""
    array = (job.spec.get("options") or {}).get("array")
    if not array:
        return 1
    count = 0
    for item in array.split("%")[0].split(","):
        bounds, _, step = item.partition(":")
        low, _, high = bounds.partition("-")
        count += len(range(int(low), int(high or low) + 1, int(step or 1)))
    return count


def _unrated(cluster_id: int):
    return select(UsageRecordRow.id).where(
        UsageRecordRow.cluster_id == cluster_id, UsageRecordRow.job_id.is_not(None),
        UsageRecordRow.state.in_(_TERMINAL), UsageRecordRow.end_time.is_not(None),
        ~select(Charge.id).where(Charge.usage_record_id == UsageRecordRow.id).exists(),
    ).order_by(UsageRecordRow.id)


def settle_pass(db: Database, cluster_id: int, billing: BillingConfig = BillingConfig()) -> tuple[int, int]:
    """Rate every unrated final record, then settle every job whose records are rated.

    Returns (records rated, jobs settled).
    """
    rated = settled = 0
    with db.session() as session:
        record_ids = list(session.scalars(_unrated(cluster_id)))
    for record_id in record_ids:
        with db.session() as session:
            if charge_record(session, session.get(UsageRecordRow, record_id), billing) is not None:
                rated += 1
    with db.session() as session:
        job_ids = list(session.scalars(select(Job.id).where(
            Job.cluster_id == cluster_id, Job.state.in_(_TERMINAL), Job.settled_at.is_(None)).order_by(Job.id)))
    for job_id in job_ids:
        with db.session() as session:
            job = session.get(Job, job_id)
            if job.settled_at is not None:
                continue
            # the records of where it ran (a re-routed job also has the cancelled copy's elsewhere)
            records = session.scalars(select(UsageRecordRow).where(
                UsageRecordRow.job_id == job.id, UsageRecordRow.cluster_id == job.cluster_id)).all()
            if not records or len(records) < expected_records(job):
                continue  # an array task's record may still be on its way
            if not all(r.state in _TERMINAL and r.end_time is not None for r in records):
                continue
            if not all(session.scalar(select(Charge.id).where(Charge.usage_record_id == r.id)) for r in records):
                continue
            if job.exit_code is None:
                codes = [r.exit_code for r in records if r.exit_code is not None]
                job.exit_code = max(codes) if codes else None
            if settle_job(session, job):
                settled += 1
    return rated, settled
