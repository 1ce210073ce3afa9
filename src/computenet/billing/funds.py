"""Customer money on the ledger: top-ups, holds for jobs, settlement, balances.

Holds are taken at submission for the job's maximum cost, so an account can
never promise more than it has; settlement posts the actual cost against
the hold and releases the rest in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..domain.money import CENT, to_decimal
from ..store.models import Account, Job, LedgerAccount, Transfer
from . import ledger
from .ledger import CASH, CUSTOMER, REVENUE, LedgerError, cents, money


def customer(session: Session, account: Account) -> LedgerAccount:
    return ledger.ledger_account(session, CUSTOMER, account_id=account.id, currency=account.currency,
                                 owner_key=str(account.id))


def revenue(session: Session, product_line: str, currency: str) -> LedgerAccount:
    return ledger.ledger_account(session, REVENUE, product_line=product_line, currency=currency)


def cash(session: Session, currency: str) -> LedgerAccount:
    return ledger.ledger_account(session, CASH, currency=currency)


@dataclass(frozen=True)
class Funds:
    currency: str
    balance: Decimal  # posted: top-ups minus charges
    held: Decimal  # open holds of unsettled jobs
    credit_limit: Decimal

    @property
    def available(self) -> Decimal:
        return self.balance + self.credit_limit - self.held


def funds(session: Session, account: Account) -> Funds:
    b = ledger.balance_of(session, customer(session, account))
    return Funds(account.currency, money(b.posted), money(b.pending), money(b.credit_limit))


def top_up(session: Session, account: Account, amount: object, key: str, memo: str = "top-up",
           actor: str = "system") -> tuple[Transfer, bool]:
    """Credit money received; returns (transfer, created). Same key, same transfer."""
    value = to_decimal(amount)
    if value <= 0:
        raise LedgerError("a top-up must be a positive amount")
    before = session.scalar(select(Transfer.id).where(Transfer.key == key))
    row = ledger.transfer(session, key, cash(session, account.currency), customer(session, account), cents(value),
                          "topup", memo=memo, actor=actor)
    return row, before is None


def set_credit_limit(session: Session, account: Account, amount: object) -> None:
    value = to_decimal(amount)
    if value < 0:
        raise LedgerError("a credit limit cannot be negative")
    customer(session, account).credit_limit = cents(value)
    session.flush()


def hold_for_job(session: Session, job: Job, account: Account, amount: Decimal, product_line: str) -> Transfer:
    """Reserve the job's maximum cost (a sub-cent part rounds up: the hold covers the charge);
    raises ledger.InsufficientFunds."""
    key = f"hold:job:{job.id}:{uuid.uuid4().hex[:12]}"  # row ids can be reused after a refusal
    held = cents(to_decimal(amount).quantize(CENT, rounding=ROUND_UP))
    hold = ledger.transfer(session, key, customer(session, account), revenue(session, product_line, account.currency),
                           held, "hold", pending=True, check_funds=True,
                           memo=f"hold for job {job.id} (at most {amount} {account.currency})")
    job.hold_id = hold.id
    return hold


def release(session: Session, job: Job, memo: str) -> None:
    """Void the hold of a job the cluster refused (its row is then deleted,
    so the void names the job in its memo, not by reference)."""
    hold = session.get(Transfer, job.hold_id) if job.hold_id else None
    if hold is not None and ledger.open_hold(session, hold):
        ledger.resolve(session, f"void:{hold.key}", hold, 0, memo=memo)


def interim(session: Session, job: Job, cost_so_far: Decimal) -> Transfer | None:
    """Post what a running job has cost since the last interim charge.

    The open hold is posted for that amount and the rest of it is held
    again at once (same transaction), so available funds do not change.
    """
    hold = session.get(Transfer, job.hold_id) if job.hold_id else None
    increment = cents(cost_so_far) - cents(job.interim_charged)
    if hold is None or increment <= 0 or not ledger.open_hold(session, hold):
        return None
    increment = min(increment, hold.amount)
    stamp = uuid.uuid4().hex[:12]
    posted = ledger.resolve(session, f"interim:{hold.key}", hold, increment, job_id=job.id,
                            memo=f"job {job.id} ({job.name}): interim charge, running")
    rest = hold.amount - increment
    again = ledger.transfer(session, f"hold:job:{job.id}:{stamp}", session.get(LedgerAccount, hold.debit_id),
                            session.get(LedgerAccount, hold.credit_id), rest, "hold", pending=True,
                            memo=f"hold for job {job.id}, rest after an interim charge")
    job.hold_id = again.id
    job.interim_charged = money(cents(job.interim_charged) + increment)
    return posted


def settle(session: Session, job: Job, total: Decimal, product_line: str, rounding: str = "half_up") -> Transfer | None:
    """Charge the job's actual cost: post it against the hold, release the rest.

    ``total`` is exact (sub-cent usage included): the cents posted are those
    of the account's sub-cent carry plus it (ledger.usage_cents), and the
    transfer that carries the charge records the carry's change. A cost above
    the hold (Slurm lets a job run past its limit by KillWait seconds) is
    posted as an overrun on top: usage that happened is charged. Returns the
    transfer that carries the charge.
    """
    hold = session.get(Transfer, job.hold_id) if job.hold_id else None
    account = session.get(Account, job.account_id)
    me = customer(session, account)
    done = ledger.find_transfer(session, f"settle:{hold.key}" if hold is not None else f"charge:job:{job.id}")
    if done is not None:  # settled before: the same answer, and the carry moved only then
        return done
    job_cents, subcent = ledger.usage_cents(session, me, total, rounding)
    amount = job_cents - cents(job.interim_charged)  # what interim charges have not covered
    if amount < 0:
        # interim estimates ran ahead of what accounting says: give it back
        refund_from = session.get(LedgerAccount, hold.credit_id) if hold else revenue(session, product_line,
                                                                                       account.currency)
        ledger.transfer(session, f"refund:job:{job.id}", refund_from, customer(session, account), -amount, "refund",
                        job_id=job.id, memo=f"job {job.id}: interim charges above the final cost")
        amount = 0
    if hold is None:  # a job without a hold (direct sbatch, adopted): a plain charge
        line_account = revenue(session, product_line, account.currency)
        return ledger.transfer(session, f"charge:job:{job.id}", me, line_account, amount,
                               "charge", job_id=job.id, memo=f"job {job.id}", subcent=subcent)
    posted = ledger.resolve(session, f"settle:{hold.key}", hold, min(amount, hold.amount), job_id=job.id,
                            memo=f"job {job.id} ({job.name}): {_shown(total)} {account.currency}", subcent=subcent)
    if amount > hold.amount:
        credit = session.get(LedgerAccount, hold.credit_id)
        ledger.transfer(session, f"overrun:{hold.key}", session.get(LedgerAccount, hold.debit_id), credit,
                        amount - hold.amount, "charge", job_id=job.id,
                        memo=f"job {job.id} ran past its limit: {money(amount - hold.amount)} above the hold")
    return posted


def charge(session: Session, job: Job, amount: Decimal, key: str, memo: str, product_line: str,
           rounding: str = "half_up") -> Transfer:
    """A charge outside settlement (a record that came after the job was settled); ``amount``
    may have sub-cent usage, carried as in settle()."""
    account = session.get(Account, job.account_id)
    me = customer(session, account)
    existing = ledger.find_transfer(session, key)
    if existing is not None:  # idempotent: the carry moved with the first one
        return ledger.transfer(session, key, me, revenue(session, product_line, account.currency), existing.amount,
                               "charge", job_id=job.id, memo=memo)
    posted, subcent = ledger.usage_cents(session, me, to_decimal(amount), rounding)
    return ledger.transfer(session, key, me, revenue(session, product_line, account.currency),
                           posted, "charge", job_id=job.id, memo=memo, subcent=subcent)


def _shown(total: Decimal) -> Decimal:
    """An exact amount as a memo shows it: to the cent when it is whole cents, else as exact as it is."""
    value = to_decimal(total)
    return value.quantize(CENT) if value == value.quantize(CENT) else value.normalize()


@dataclass(frozen=True)
class Entry:
    id: int
    kind: str
    amount: Decimal  # as the customer sees it: + money in, - money out
    pending: bool
    job_id: int | None
    memo: str
    created_at: object


def entries(session: Session, account: Account, limit: int = 20) -> list[Entry]:
    me = customer(session, account)
    rows = session.scalars(select(Transfer).where(or_(Transfer.debit_id == me.id, Transfer.credit_id == me.id))
                           .order_by(Transfer.id.desc()).limit(limit))
    return [Entry(t.id, t.kind, money(t.amount if t.credit_id == me.id else -t.amount), t.pending, t.job_id,
                  t.memo, t.created_at) for t in rows]


def extend_hold(session: Session, job: Job, extra: Decimal) -> Transfer:
    """Hold ``extra`` more for a job whose time limit grows (an interactive session's extend): the
    open hold is voided and held again, larger, in one savepoint; ledger.InsufficientFunds leaves
    the old hold as it was."""
    hold = session.get(Transfer, job.hold_id) if job.hold_id else None
    if hold is None or not ledger.open_hold(session, hold):
        raise LedgerError(f"job {job.id} has no open hold to extend")
    add = cents(to_decimal(extra).quantize(CENT, rounding=ROUND_UP))
    with session.begin_nested():
        ledger.resolve(session, f"void:{hold.key}", hold, 0, memo=f"job {job.id}: held again for a longer time limit")
        again = ledger.transfer(session, f"hold:job:{job.id}:{uuid.uuid4().hex[:12]}",
                                session.get(LedgerAccount, hold.debit_id), session.get(LedgerAccount, hold.credit_id),
                                hold.amount + add, "hold", pending=True, check_funds=True,
                                memo=f"hold for job {job.id}, extended by {extra}")
    job.hold_id = again.id
    return again


def cover_next_run(session: Session, job: Job, ended_runs: Decimal) -> Transfer | None:
    """A requeued job runs again: its hold must cover what its ended runs cost (posted only at
    settlement, less what interim charges have posted already) plus a whole new run (its maximum
    cost). A smaller hold is voided and held again at that size (one savepoint, as extend_hold).

    Without the funds check: whether the job runs again is Slurm's decision, not a request this
    account could be refused; an account that cannot cover it goes below zero available, where
    its exhaustion policy applies (services/billing/exhaustion.py). Returns the new hold, or None when
    the hold is big enough or the job has none (a direct sbatch)."""
    hold = session.get(Transfer, job.hold_id) if job.hold_id else None
    if hold is None or not ledger.open_hold(session, hold):
        return None
    round_up = lambda amount: cents(to_decimal(amount).quantize(CENT, rounding=ROUND_UP))  # noqa: E731
    needed = max(0, round_up(ended_runs) - cents(job.interim_charged)) + round_up(job.max_cost)
    if hold.amount >= needed:
        return None
    with session.begin_nested():
        ledger.resolve(session, f"void:{hold.key}", hold, 0, memo=f"job {job.id}: held again, requeued to run again")
        again = ledger.transfer(session, f"hold:job:{job.id}:{uuid.uuid4().hex[:12]}",
                                session.get(LedgerAccount, hold.debit_id), session.get(LedgerAccount, hold.credit_id),
                                needed, "hold", pending=True,
                                memo=f"hold for job {job.id}: its ended runs and one more run")
    job.hold_id = again.id
    return again
