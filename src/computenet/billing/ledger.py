"""A double-entry ledger in the TigerBeetle manner, on the platform's database.

Every money movement is an immutable transfer from a debit account to a
credit account, with an idempotency key. A transfer is either posted at
once, or *pending* (a hold): later exactly one *post* (for any amount up to
the hold, releasing the rest) or *void* resolves it. Each ledger account
keeps four running sums in integer cents, changed in the same transaction
as the transfer row, so at every commit: total debits = total credits, and
every account's sums equal what its transfers add up to (see invariant()).

Customer money is a credit balance: top-ups credit it, charges debit it.
A hold is admitted by one conditional UPDATE (available >= amount), which
is atomic on SQLite and PostgreSQL alike; concurrent submissions cannot
overdraw an account. This module imports nothing from clusters/.

Usage is rated exactly (billionths of the currency), but the ledger moves
whole cents. No usage is rounded away: each customer account carries the
part of its usage not yet posted (``subcent_carry``, under a cent either
way), and a charge posts the cents of carry + its exact amount, by the
configured rounding rule, leaving the rest in the carry. Over any number of
charges the posted total is the exact total rounded once. Each charge
transfer records what it moved into or out of the carry (``subcent``), so
the carry is always the sum of immutable transfers (see invariant()).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..domain.money import CENT, to_decimal
from ..store.models import LedgerAccount, Transfer
from ..store.types import utcnow
from ..messages import Money, msg


class LedgerError(ValueError):
    pass


class InsufficientFunds(LedgerError):
    pass


class AlreadyResolved(LedgerError):
    pass


# ledger account codes
CUSTOMER = "customer"  # what a customer account holds (credit balance)
CASH = "cash"  # money received (top-ups)
REVENUE = "revenue"  # earned, one per product line
ADJUSTMENT = "adjustment"  # corrections and re-pricing


NANO_PER_CENT = 10_000_000  # billionths of the currency in a cent


def usage_cents(session: Session, account: LedgerAccount, exact: Decimal, rounding: str = "half_up") -> tuple[int, int]:
    """(cents to post, sub-cent change of the carry) for ``exact`` worth of usage on ``account``.

    The account's row is locked first, so concurrent charges see each other's
    carry; the carry itself changes only with the transfer that records it
    (``transfer``/``resolve`` with ``subcent``). Rounding is floor-based, so it
    is the same at any carry: half_up posts when the carry reaches half a cent,
    up at once, down only at a whole cent. Never a negative number of cents.
    """
    nano = to_decimal(exact) * NANO_PER_CENT * 100
    if nano != nano.to_integral_value() or nano < 0:
        raise LedgerError(f"{exact} is not a non-negative amount in billionths")
    session.execute(update(LedgerAccount).where(LedgerAccount.id == account.id)
                    .values(subcent_carry=LedgerAccount.subcent_carry))  # takes the row lock
    carry = session.scalar(select(LedgerAccount.subcent_carry).where(LedgerAccount.id == account.id)) or 0
    total = carry + int(nano)
    if rounding == "up":
        posted = -(-total // NANO_PER_CENT)
    elif rounding == "down":
        posted = total // NANO_PER_CENT
    else:
        posted = (total + NANO_PER_CENT // 2) // NANO_PER_CENT
    posted = max(posted, 0)
    return posted, int(nano) - posted * NANO_PER_CENT


def cents(amount: Decimal | str | int) -> int:
    value = to_decimal(amount)
    if value != value.quantize(CENT):
        raise LedgerError(f"{value} has more than two decimal places")
    return int(value * 100)


def money(cents_value: int) -> Decimal:
    return (Decimal(cents_value) / 100).quantize(CENT)


def ledger_account(session: Session, code: str, *, account_id: int | None = None, owner_key: str = "",
                   product_line: str = "", currency: str = "CNY") -> LedgerAccount:
    """The ledger account for (code, owner, product line, currency), created on first use."""
    where = (LedgerAccount.code == code, LedgerAccount.owner_key == owner_key,
             LedgerAccount.product_line == product_line, LedgerAccount.currency == currency)
    row = session.scalar(select(LedgerAccount).where(*where))
    if row is None:
        try:
            with session.begin_nested():
                row = LedgerAccount(code=code, account_id=account_id, owner_key=owner_key,
                                    product_line=product_line, currency=currency)
                session.add(row)
                session.flush()
        except IntegrityError:  # created at the same moment by another transaction
            row = session.scalar(select(LedgerAccount).where(*where))
    return row


@dataclass(frozen=True)
class Balance:
    posted: int  # credits_posted - debits_posted
    pending: int  # debits_pending (held)
    credit_limit: int

    @property
    def available(self) -> int:
        return self.posted + self.credit_limit - self.pending


def balance_of(session: Session, account: LedgerAccount) -> Balance:
    session.refresh(account)
    return Balance(account.credits_posted - account.debits_posted, account.debits_pending, account.credit_limit)


def _existing(session: Session, key: str) -> Transfer | None:
    return session.scalar(select(Transfer).where(Transfer.key == key))


find_transfer = _existing  # the transfer made with this idempotency key, if any


def _same(existing: Transfer, debit: LedgerAccount, credit: LedgerAccount, amount: int, kind: str) -> Transfer:
    if (existing.debit_id, existing.credit_id, existing.amount, existing.kind) != (debit.id, credit.id, amount, kind):
        raise LedgerError(msg("idempotency key %(key)r was used for a different transfer", key=existing.key))
    return existing


def transfer(session: Session, key: str, debit: LedgerAccount, credit: LedgerAccount, amount: int, kind: str, *,
             pending: bool = False, check_funds: bool = False, job_id: int | None = None, memo: str = "",
             actor: str = "system", subcent: int | None = None) -> Transfer:
    """Post (or hold, when ``pending``) ``amount`` cents from debit to credit.

    Idempotent: the same key returns the first transfer. ``check_funds``
    refuses a debit that would take the debit account's available funds
    (posted + credit limit - held) below zero.
    """
    if amount < 0:
        raise LedgerError(msg("a transfer amount cannot be negative"))
    if debit.id == credit.id:
        raise LedgerError("a transfer needs two different accounts")
    if debit.currency != credit.currency:
        raise LedgerError(msg("cannot move %(source)s into a %(target)s account", source=debit.currency, target=credit.currency))
    existing = _existing(session, key)
    if existing is not None:
        return _same(existing, debit, credit, amount, kind)
    try:
        with session.begin_nested():
            side = "pending" if pending else "posted"
            debit_col = getattr(LedgerAccount, f"debits_{side}")
            credit_col = getattr(LedgerAccount, f"credits_{side}")
            stmt = update(LedgerAccount).where(LedgerAccount.id == debit.id)
            if check_funds:
                available = (LedgerAccount.credits_posted + LedgerAccount.credit_limit
                             - LedgerAccount.debits_posted - LedgerAccount.debits_pending)
                stmt = stmt.where(available >= amount)
            if session.execute(stmt.values({debit_col: debit_col + amount})).rowcount != 1:
                raise InsufficientFunds(msg("available funds do not cover %(amount)s",
                                               amount=Money(money(amount), debit.currency)))
            session.execute(update(LedgerAccount).where(LedgerAccount.id == credit.id)
                            .values({credit_col: credit_col + amount}))
            _carry(session, debit.id, subcent)
            row = Transfer(key=key, debit_id=debit.id, credit_id=credit.id, amount=amount, kind=kind,
                           pending=pending, job_id=job_id, memo=memo, actor=actor, created_at=utcnow(),
                           subcent=subcent or None)
            session.add(row)
            session.flush()
    except IntegrityError:
        existing = _existing(session, key)
        if existing is None:
            raise
        return _same(existing, debit, credit, amount, kind)
    return row


def _carry(session: Session, account_id: int, subcent: int | None) -> None:
    """Move the account's sub-cent carry with the transfer that records it (same transaction)."""
    if subcent:
        if abs(subcent) >= 2 * NANO_PER_CENT:
            raise LedgerError(f"a sub-cent change of {subcent} billionths is not below a cent")
        session.execute(update(LedgerAccount).where(LedgerAccount.id == account_id)
                        .values(subcent_carry=LedgerAccount.subcent_carry + subcent))


def resolve(session: Session, key: str, hold: Transfer, amount: int, *, memo: str = "",
            actor: str = "system", job_id: int | None = None, subcent: int | None = None) -> Transfer:
    """Post ``amount`` (<= the hold) of a pending transfer; 0 voids it. The rest is released.

    A hold resolves once: a second post or void (another key) raises
    AlreadyResolved; the same key returns the first resolution.
    """
    if not hold.pending:
        raise LedgerError(f"transfer {hold.key!r} is not a hold")
    if amount < 0 or amount > hold.amount:
        raise LedgerError(f"can post between 0 and {money(hold.amount)} of hold {hold.key!r}, not {money(amount)}")
    existing = _existing(session, key)
    if existing is not None:
        return existing
    kind = "post" if amount else "void"
    try:
        with session.begin_nested():
            session.execute(update(LedgerAccount).where(LedgerAccount.id == hold.debit_id).values(
                debits_pending=LedgerAccount.debits_pending - hold.amount,
                debits_posted=LedgerAccount.debits_posted + amount))
            session.execute(update(LedgerAccount).where(LedgerAccount.id == hold.credit_id).values(
                credits_pending=LedgerAccount.credits_pending - hold.amount,
                credits_posted=LedgerAccount.credits_posted + amount))
            _carry(session, hold.debit_id, subcent)
            row = Transfer(key=key, debit_id=hold.debit_id, credit_id=hold.credit_id, amount=amount, kind=kind,
                           pending=False, pending_id=hold.id, job_id=job_id or hold.job_id, memo=memo, actor=actor,
                           created_at=utcnow(), subcent=subcent or None)
            session.add(row)
            session.flush()
    except IntegrityError:
        existing = _existing(session, key)
        if existing is not None:
            return existing
        raise AlreadyResolved(f"hold {hold.key!r} was already posted or voided") from None
    return row


def open_hold(session: Session, hold: Transfer) -> bool:
    return session.scalar(select(Transfer.id).where(Transfer.pending_id == hold.id)) is None


@dataclass(frozen=True)
class Violation:
    what: str
    expected: int
    found: int


def invariant(session: Session) -> list[Violation]:
    """Everything that must hold at every commit; [] when the ledger is sound.

    Total debits equal total credits (posted and pending), and each account's
    running sums equal the sums of its transfers.
    """
    problems: list[Violation] = []
    totals = session.execute(select(
        func.coalesce(func.sum(LedgerAccount.debits_posted), 0), func.coalesce(func.sum(LedgerAccount.credits_posted), 0),
        func.coalesce(func.sum(LedgerAccount.debits_pending), 0), func.coalesce(func.sum(LedgerAccount.credits_pending), 0),
    )).one()
    if totals[0] != totals[1]:
        problems.append(Violation("posted debits = posted credits", int(totals[0]), int(totals[1])))
    if totals[2] != totals[3]:
        problems.append(Violation("pending debits = pending credits", int(totals[2]), int(totals[3])))
    posted = ~Transfer.pending
    resolved = select(Transfer.pending_id).where(Transfer.pending_id.is_not(None))
    open_pending = Transfer.pending & Transfer.id.not_in(resolved)
    sums = {}
    for side, column in (("debit", Transfer.debit_id), ("credit", Transfer.credit_id)):
        for label, condition in (("posted", posted), ("pending", open_pending)):
            sums[(side, label)] = dict(session.execute(
                select(column, func.sum(Transfer.amount)).where(condition).group_by(column)).all())
    carried = dict(session.execute(select(Transfer.debit_id, func.sum(Transfer.subcent))
                                   .where(Transfer.subcent.is_not(None)).group_by(Transfer.debit_id)).all())
    for account in session.scalars(select(LedgerAccount)):
        for side, label in sums:
            found = getattr(account, f"{side}s_{label}")
            expected = int(sums[(side, label)].get(account.id, 0) or 0)
            if found != expected:
                problems.append(Violation(f"account {account.id} ({account.code}) {side}s {label}", expected, found))
        # the sub-cent carry is what its transfers put there, and stays under a cent
        expected = int(carried.get(account.id, 0) or 0)
        if account.subcent_carry != expected:
            problems.append(Violation(f"account {account.id} ({account.code}) sub-cent carry", expected,
                                      account.subcent_carry))
        elif abs(account.subcent_carry) >= NANO_PER_CENT:
            problems.append(Violation(f"account {account.id} ({account.code}) sub-cent carry under a cent",
                                      NANO_PER_CENT - 1, account.subcent_carry))
    return problems
