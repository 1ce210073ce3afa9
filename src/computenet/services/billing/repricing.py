"""Re-pricing settled jobs after a price correction, and closing months.

A charge is never edited: re-pricing rates each of the jobs' records again
at the prices in force when they started (so correct the price book first,
with an effective date in the past) and moves only the difference, as an
adjustment transfer. A batch is all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...billing import funds, ledger
from ...billing.rating import Usage
from ...billing.statements import month_bounds
from ...config import BillingConfig
from ...store.models import Account, Charge, ChargeAdjustment, ClosedPeriod, Job, LedgerAccount, UsageRecordRow
from ...store.types import utcnow
from .. import audit
from ..errors import Conflict, InvalidRequest, NotFound
from .charging import record_partition
from .pricing import quote
from ...messages import msg


@dataclass(frozen=True)
class Repriced:
    job_id: int
    charge_id: int
    old_amount: Decimal
    new_amount: Decimal

    @property
    def difference(self) -> Decimal:
        return self.new_amount - self.old_amount


def closed(session: Session, moment) -> bool:
    return session.get(ClosedPeriod, moment.strftime("%Y-%m")) is not None


def close_month(session: Session, month: str, who: audit.Who) -> ClosedPeriod:
    try:
        _, end = month_bounds(month)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    if end > utcnow():
        raise InvalidRequest(msg("%(month)s has not ended yet", month=month))
    if session.get(ClosedPeriod, month):
        raise Conflict(msg("%(month)s is already closed", month=month))
    period = ClosedPeriod(month=month, actor=who.actor)
    session.add(period)
    audit.record(session, who, "month.close", f"month:{month}")
    session.flush()
    _statements_issued(session, month)
    return period


def _statements_issued(session: Session, month: str) -> None:
    """A `statement.issued` event per account with a statement for the month, in the close's transaction."""
    from ...billing.statements import statements_for_month
    from ...store.event_models import add_event

    ids = dict(session.execute(select(Account.name, Account.id)).all())
    for name, st in sorted(statements_for_month(session, month).items()):
        add_event(session, "statement.issued", ids[name], f"statement/{name}/{month}",
                  {"month": month, "currency": st.currency, "opening_balance": str(st.opening_balance),
                   "closing_balance": str(st.closing_balance), "top_ups": str(st.top_ups), "charges": str(st.charges),
                   "lines": len(st.lines)}, dedup_key=f"statement.issued:{name}:{month}")


def current_amount(session: Session, charge: Charge) -> Decimal:
    latest = session.scalar(select(ChargeAdjustment).where(ChargeAdjustment.charge_id == charge.id)
                            .order_by(ChargeAdjustment.id.desc()).limit(1))
    return latest.new_amount if latest else charge.amount


def reprice(session: Session, job_ids: list[int], reason: str, batch: str, who: audit.Who,
            billing: BillingConfig = BillingConfig()) -> list[Repriced]:
    if not reason.strip():
        raise InvalidRequest(msg("re-pricing needs a reason"))
    if not job_ids:
        raise InvalidRequest(msg("name the jobs to re-price"))
    plan: list[tuple[Job, Charge, Decimal, Decimal, str]] = []
    for job_id in sorted(set(job_ids)):
        job = session.get(Job, job_id)
        if job is None:
            raise NotFound(msg("no job %(job_id)s", job_id=job_id))
        if job.settled_at is None:
            raise InvalidRequest(msg("job %(job_id)s is not settled yet; it will be charged at the current prices", job_id=job_id))
        tenant_id = session.get(Account, job.account_id).tenant_id
        for charge in session.scalars(select(Charge).where(Charge.job_id == job.id).order_by(Charge.id)):
            if closed(session, charge.created_at):
                raise InvalidRequest(msg("job %(job_id)s was charged in %(month)s, whose statements are closed; book a "
                                         "manual adjustment in the current month instead", job_id=job_id,
                                         month=charge.created_at.strftime("%Y-%m")))
            row = session.get(UsageRecordRow, charge.usage_record_id)
            part = record_partition(session, row, job)
            rated = quote(session, part, Usage(row.elapsed_seconds, row.cpus, row.gpus, row.mem_mb),
                          row.start_time or row.submit_time, billing, gpu_model=row.gpu_type, tenant_id=tenant_id)
            if rated is None:
                raise InvalidRequest(msg("job %(job_id)s: no price in force when it ran", job_id=job_id))
            plan.append((job, charge, current_amount(session, charge), rated.amount, part.product_line))
    results = []
    for job, charge, old, new, product_line in plan:  # nothing has been written before this point
        transfer_id = None
        if new != old:
            account = session.get(Account, job.account_id)
            me = funds.customer(session, account)
            line = session.scalar(select(LedgerAccount).where(LedgerAccount.id == _revenue_of(session, charge)))
            line = line or funds.revenue(session, product_line, account.currency)
            debit, credit = (me, line) if new > old else (line, me)
            moved = ledger.transfer(session, f"reprice:{batch}:{charge.id}", debit, credit,
                                    ledger.cents(abs(new - old)), "adjustment", job_id=job.id, actor=who.actor,
                                    memo=f"job {job.id} re-priced {old} -> {new}: {reason}")
            transfer_id = moved.id
        session.add(ChargeAdjustment(charge_id=charge.id, batch=batch, old_amount=old, new_amount=new,
                                     transfer_id=transfer_id, reason=reason, actor=who.actor))
        results.append(Repriced(job.id, charge.id, old, new))
    audit.record(session, who, "reprice", f"jobs:{','.join(str(j) for j in sorted(set(job_ids)))}",
                 batch=batch, reason=reason, difference=str(sum((r.difference for r in results), Decimal(0))))
    session.flush()
    return results


def _revenue_of(session: Session, charge: Charge) -> int | None:
    """The revenue account the job's money went to (its product line)."""
    from ...store.models import Transfer

    if charge.transfer_id is None:
        return None
    return session.scalar(select(Transfer.credit_id).where(Transfer.id == charge.transfer_id))


def adjustments_total(session: Session, job_id: int) -> Decimal:
    total = session.scalar(select(func.coalesce(func.sum(ChargeAdjustment.new_amount - ChargeAdjustment.old_amount), 0))
                           .join(Charge, Charge.id == ChargeAdjustment.charge_id).where(Charge.job_id == job_id))
    return Decimal(total or 0)
