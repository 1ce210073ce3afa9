"""The settlement pass: rate final records, settle finished jobs.

Each record is rated in its own transaction and each job settled in its
own, so a process killed at any point leaves only whole steps behind; the
next pass (in any process) carries on, and the unique keys make a repeated
step a no-op. Tests kill -9 this pass at random points.
"""

from __future__ import annotations

from sqlalchemy import select

from ...config import BillingConfig
from ...domain.states import RUN_ENDED_STATES, RUN_REQUEUED, TERMINAL_STATES
from ...store.db import Database
from ...store.models import Charge, Job, UsageRecordRow
from .charging import charge_record, settle_job

_TERMINAL = [s.value for s in TERMINAL_STATES]
_RUN_ENDED = sorted(RUN_ENDED_STATES)  # a record whose run is over: the job's last, or a requeued run


def task_ids(text: str) -> set[int]:
    """``0-9:2,15`` (Slurm's array syntax, a ``%`` limit left out) -> the task ids."""
    ids: set[int] = set()
    for item in text.split(","):
        bounds, _, step = item.partition(":")
        low, _, high = bounds.partition("-")
        ids.update(range(int(low), int(high or low) + 1, int(step or 1)))
    return ids


def expected_tasks(job: Job) -> set[int] | None:
    """The array's task ids (the ``%N`` limit changes concurrency, not the tasks); None for a plain job."""
    array = (job.spec.get("options") or {}).get("array")
    return task_ids(array.split("%")[0]) if array else None


def expected_records(job: Job) -> int:
    """One accounting record per array task that ran, one for a plain job."""
    tasks = expected_tasks(job)
    return len(tasks) if tasks is not None else 1


def covers_all(job: Job, records: list[UsageRecordRow]) -> bool:
    """Whether the records account for every task: Slurm's records name their tasks (one
    row stands for all the tasks still pending when an array was cancelled); a record
    that names none, from a scheduler that does not say, counts as one task."""
    wanted = expected_tasks(job)
    if wanted is None:
        return bool(records)
    seen: set[int] = set()
    unnamed = 0
    for record in records:
        if record.array_tasks:
            seen |= task_ids(record.array_tasks)
        else:
            unnamed += 1
    return len(wanted - seen) <= unnamed


def _unrated(cluster_id: int):
    return select(UsageRecordRow.id).where(
        UsageRecordRow.cluster_id == cluster_id, UsageRecordRow.job_id.is_not(None),
        UsageRecordRow.state.in_(_RUN_ENDED), UsageRecordRow.end_time.is_not(None),
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
            # a requeued run's record is no task's last: the last run's record must come too
            if not covers_all(job, [r for r in records if r.state != RUN_REQUEUED]):
                continue  # an array task's record may still be on its way
            if not all(r.state in _RUN_ENDED and r.end_time is not None for r in records):
                continue
            if not all(session.scalar(select(Charge.id).where(Charge.usage_record_id == r.id)) for r in records):
                continue
            if job.exit_code is None:
                codes = [r.exit_code for r in records if r.exit_code is not None]
                job.exit_code = max(codes) if codes else None
            if settle_job(session, job, billing):
                settled += 1
    return rated, settled
