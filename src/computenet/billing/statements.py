"""Monthly statements, read straight from the ledger.

Opening balance = every posted transfer of the account before the month;
the lines are the month's posted transfers (top-ups, job charges, refunds,
adjustments); closing = opening + lines. Job lines carry the resources
behind the money (core-hours, GPU-hours, prices) from the rated records.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from ..store.models import Account, Charge, ClosedPeriod, Job, LedgerAccount, Transfer
from .funds import customer
from .ledger import money

_MOVES_MONEY = ("topup", "transfer", "post", "charge", "refund", "adjustment")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """``2026-11`` -> [2026-11-01, 2026-12-01) in UTC."""
    try:
        year, mon = (int(part) for part in month.split("-"))
        start = datetime(year, mon, 1, tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"invalid month {month!r} (use YYYY-MM)") from None
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end


@dataclass
class Line:
    date: str
    kind: str
    amount: Decimal  # + money in, - money out
    job_id: int | None
    job_name: str | None
    product_line: str | None
    core_hours: Decimal
    gpu_hours: Decimal
    memo: str


@dataclass
class Statement:
    account: str
    currency: str
    month: str
    opening_balance: Decimal
    closing_balance: Decimal
    top_ups: Decimal
    charges: Decimal  # net of refunds, as a positive number
    by_product_line: dict[str, Decimal] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    held_at_close: Decimal = Decimal("0.00")
    closed: bool = False  # issued: final, no re-pricing

    def to_json(self) -> dict:
        data = asdict(self)
        return _jsonable(data)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["account", self.account, "month", self.month, "currency", self.currency])
        writer.writerow(["opening_balance", self.opening_balance])
        writer.writerow(["date", "kind", "amount", "job_id", "job_name", "product_line", "core_hours",
                         "gpu_hours", "memo"])
        for line in self.lines:
            writer.writerow([line.date, line.kind, line.amount, line.job_id or "", line.job_name or "",
                             line.product_line or "", line.core_hours, line.gpu_hours, line.memo])
        writer.writerow(["closing_balance", self.closing_balance])
        for name, total in sorted(self.by_product_line.items()):
            writer.writerow(["product_line_total", name, total])
        return out.getvalue()


def _jsonable(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _signed(me_id: int):
    return case((Transfer.credit_id == me_id, Transfer.amount), else_=-Transfer.amount)


def statement(session: Session, account: Account, month: str) -> Statement:
    start, end = month_bounds(month)
    me = customer(session, account)
    mine = or_(Transfer.debit_id == me.id, Transfer.credit_id == me.id)
    posted = and_(mine, ~Transfer.pending, Transfer.kind.in_(_MOVES_MONEY))
    opening = session.scalar(select(func.coalesce(func.sum(_signed(me.id)), 0))
                             .where(posted, Transfer.created_at < start)) or 0
    rows = session.execute(
        select(Transfer, Job.name, LedgerAccount.product_line)
        .outerjoin(Job, Job.id == Transfer.job_id)
        .join(LedgerAccount, LedgerAccount.id == case((Transfer.credit_id == me.id, Transfer.debit_id),
                                                       else_=Transfer.credit_id))
        .where(posted, Transfer.created_at >= start, Transfer.created_at < end)
        .order_by(Transfer.created_at, Transfer.id)
    ).all()
    resources = dict(
        (job_id, (Decimal(cs or 0) / 3600, Decimal(gs or 0) / 3600))
        for job_id, cs, gs in session.execute(
            select(Charge.job_id, func.sum(Charge.core_seconds), func.sum(Charge.gpu_seconds))
            .where(Charge.job_id.in_({t.job_id for t, _, _ in rows if t.job_id}))
            .group_by(Charge.job_id))
    )
    lines, seen_jobs = [], set()
    top_ups = charges = 0
    by_line: dict[str, int] = {}
    for t, job_name, line_name in rows:
        amount = t.amount if t.credit_id == me.id else -t.amount
        core_h = gpu_h = Decimal("0")
        if t.job_id and t.job_id not in seen_jobs:  # resources once per job, on its first money line
            core_h, gpu_h = resources.get(t.job_id, (core_h, gpu_h))
            seen_jobs.add(t.job_id)
        lines.append(Line(t.created_at.strftime("%Y-%m-%d %H:%M:%S"), t.kind, money(amount), t.job_id, job_name,
                          line_name or None, core_h.quantize(Decimal("0.0001")), gpu_h.quantize(Decimal("0.0001")),
                          t.memo))
        if t.kind in ("topup", "transfer"):  # money in (or out to another account)
            top_ups += amount
        elif t.kind in ("post", "charge", "refund", "adjustment"):
            charges -= amount
            by_line[line_name or "?"] = by_line.get(line_name or "?", 0) - amount
    resolution = aliased(Transfer)
    held = session.scalar(
        select(func.coalesce(func.sum(Transfer.amount), 0)).where(
            Transfer.debit_id == me.id, Transfer.pending, Transfer.created_at < end,
            ~select(resolution.id).where(resolution.pending_id == Transfer.id, resolution.created_at < end).exists()))
    closing = int(opening) + sum(int(l.amount * 100) for l in lines)
    return Statement(
        account=account.name, currency=account.currency, month=month, opening_balance=money(int(opening)),
        closing_balance=money(closing), top_ups=money(top_ups), charges=money(charges),
        by_product_line={k: money(v) for k, v in by_line.items()}, lines=lines,
        held_at_close=money(int(held or 0)),
        closed=session.get(ClosedPeriod, month) is not None,
    )
