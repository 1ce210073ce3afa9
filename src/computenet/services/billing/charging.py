"""Rating final accounting records and settling finished jobs, exactly once each.

A final record is rated into a Charge (one per record, ever: unique keys).
While its job is unsettled the money stays in the job's hold; settlement
posts the sum of the job's charges against the hold in one transaction. A
record that arrives after settlement is charged on its own.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...billing import funds
from ...billing.rating import Usage, rate_usage
from ...config import BillingConfig
from ...domain.states import RUN_REQUEUED, JobState
from .pricing import prices_for, rules_for
from ...store.models import Account, Charge, Cluster, Job, Partition, UsageRecordRow
from ...store.types import utcnow


def charge_key(cluster: str, row: UsageRecordRow) -> str:
    return f"usage:{cluster}:{row.record_id}:{row.submit_time.isoformat()}"


def requeued_runs_cost(session: Session, job: Job) -> Decimal:
    """What the job's runs that ended in a requeue cost, exactly (rated so far)."""
    rows = session.execute(select(Charge.amount, Charge.exact_amount).join(
        UsageRecordRow, UsageRecordRow.id == Charge.usage_record_id).where(
        Charge.job_id == job.id, UsageRecordRow.state == RUN_REQUEUED)).all()
    return sum((amount if exact is None else exact for amount, exact in rows), Decimal("0"))


def record_partition(session: Session, row: UsageRecordRow, job: Job) -> Partition | None:
    """The partition that prices a record: its own, else its job's."""
    for name in (row.partition, job.partition):
        if name:
            part = session.scalar(select(Partition).where(Partition.cluster_id == row.cluster_id, Partition.name == name))
            if part is not None:
                return part
    return None


def charge_record(session: Session, row: UsageRecordRow, billing: BillingConfig = BillingConfig()) -> Charge | None:
    """Rate one final record of a job; None if already rated or not priceable."""
    job = session.get(Job, row.job_id)
    if job is None or session.scalar(select(Charge.id).where(Charge.usage_record_id == row.id)):
        return None
    part = record_partition(session, row, job)
    if part is None:
        return None
    at = row.start_time or row.submit_time  # priced as when it started
    tenant_id = session.get(Account, job.account_id).tenant_id
    prices = prices_for(session, part, at, tenant_id, row.gpu_type)
    if prices is None:
        return None  # no price: left unrated and visible, never free
    rated = rate_usage(Usage(row.elapsed_seconds, row.cpus, row.gpus, row.mem_mb), prices, rules_for(part, billing))
    cluster = session.get(Cluster, row.cluster_id)
    key = charge_key(cluster.name, row)
    try:
        with session.begin_nested():
            charge = Charge(
                usage_record_id=row.id, job_id=job.id, account_id=job.account_id,
                core_seconds=rated.core_seconds, gpu_seconds=rated.gpu_seconds,
                price_core_hour=prices.core_hour, price_gpu_hour=prices.gpu_hour,
                amount=rated.amount, exact_amount=rated.exact_amount, idempotency_key=key,
            )
            session.add(charge)
            session.flush()
            if job.settled_at is not None:  # late: the job's hold is gone
                moved = funds.charge(session, job, rated.exact_amount, f"charge:{key}",
                                     f"job {job.id} ({cluster.name} {row.record_id}), after settlement",
                                     part.product_line, billing.rounding)
                charge.transfer_id = moved.id
            elif row.state == RUN_REQUEUED and not JobState(job.state).is_terminal:
                # a run of a requeued job: its charge waits in the hold for settlement like the last
                # run's, and the hold must still cover the run to come
                funds.cover_next_run(session, job, requeued_runs_cost(session, job))
    except IntegrityError:
        return None
    return charge


def settle_job(session: Session, job: Job, billing: BillingConfig = BillingConfig()) -> bool:
    """Post the job's rated charges against its hold and release the rest.

    The charges are summed exactly (sub-cent usage included, rated before it
    was kept: to the cent) and the ledger carries what is below a cent."""
    if job.settled_at is not None:
        return False
    charges = list(session.scalars(select(Charge).where(Charge.job_id == job.id)))
    total = sum((c.amount if c.exact_amount is None else c.exact_amount for c in charges), Decimal("0.00"))
    part = session.scalar(select(Partition).where(Partition.cluster_id == job.cluster_id,
                                                  Partition.name == job.partition))
    with session.begin_nested():
        moved = funds.settle(session, job, total, part.product_line if part else "hpc", billing.rounding)
        for c in charges:
            if c.transfer_id is None:
                c.transfer_id = moved.id if moved is not None else None
        job.settled_at = utcnow()
        job.needs_reconcile = False
        from ..integration.job_notices import job_ended  # its owner is told, in this transaction (an outbox)

        job_ended(session, job, total)
    return True
