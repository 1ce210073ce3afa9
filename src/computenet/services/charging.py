"""Charging final accounting records, exactly once each."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..billing.rating import rate
from ..store.models import Account, Charge, Cluster, Job, Partition, UsageRecordRow
from .accounts import post_entry


def charge_key(cluster: str, row: UsageRecordRow) -> str:
    return f"usage:{cluster}:{row.record_id}:{row.submit_time.isoformat()}"


def charge_record(session: Session, row: UsageRecordRow) -> Charge | None:
    """Charge one final record to its job's account; None if already charged.

    The unique keys on the ledger entry and the charge make a second
    charger (another replica, a retried pass) a no-op.
    """
    job = session.get(Job, row.job_id)
    cluster = session.get(Cluster, row.cluster_id)
    if job is None or session.scalar(select(Charge.id).where(Charge.usage_record_id == row.id)):
        return None
    part = session.scalar(
        select(Partition).where(Partition.cluster_id == row.cluster_id, Partition.name == (row.partition or job.partition))
    ) or session.scalar(select(Partition).where(Partition.cluster_id == row.cluster_id, Partition.name == job.partition))
    if part is None or part.price_core_hour is None:
        return None  # no price: left uncharged and visible, never free
    rated = rate(row.elapsed_seconds, row.cpus, row.gpus, part.price_core_hour, part.price_gpu_hour or Decimal(0))
    key = charge_key(cluster.name, row)
    account = session.get(Account, job.account_id)
    try:
        with session.begin_nested():
            entry = post_entry(session, account, -rated.amount, "charge", key, job_id=job.id,
                               memo=f"job {job.id} ({cluster.name} {row.record_id}): "
                                    f"{rated.core_hours:.4f} core-h, {rated.gpu_hours:.4f} GPU-h")
            if entry is None:
                return None
            charge = Charge(
                usage_record_id=row.id, job_id=job.id, account_id=account.id,
                core_seconds=rated.core_seconds, gpu_seconds=rated.gpu_seconds,
                price_core_hour=part.price_core_hour, price_gpu_hour=part.price_gpu_hour or Decimal(0),
                amount=rated.amount, idempotency_key=key, ledger_entry_id=entry.id,
            )
            session.add(charge)
            session.flush()
    except IntegrityError:
        return None
    return charge
