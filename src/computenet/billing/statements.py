"""Monthly statements, read straight from the ledger.

Opening balance = every posted transfer of the account before the month;
the lines are the month's posted transfers (top-ups, job charges, refunds,
adjustments); closing = opening + lines. Job lines carry the resources
behind the money (core-hours, GPU-hours, prices) from the rated records.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from ..store.models import Account, Charge, ClosedPeriod, Job, LedgerAccount, Transfer
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


def statements_for_month(session: Session, month: str, account_ids: list[int] | None = None) -> dict[str, Statement]:
    """Every account's statement for the month (or those named), from a handful of queries."""
    start, end = month_bounds(month)
    customers = {row.id: row for row in session.scalars(
        select(LedgerAccount).where(LedgerAccount.code == "customer",
                                    *([LedgerAccount.account_id.in_(account_ids)] if account_ids is not None else [])))}
    if not customers:
        return {}
    accounts = {a.id: a for a in session.scalars(select(Account).where(
        Account.id.in_([c.account_id for c in customers.values()])))}
    lines_of = {lid: accounts[c.account_id] for lid, c in customers.items()}
    product_line = dict(session.execute(select(LedgerAccount.id, LedgerAccount.product_line)).all())
    ids = list(customers)
    posted = and_(~Transfer.pending, Transfer.kind.in_(_MOVES_MONEY))
    opening: dict[int, int] = defaultdict(int)
    for side, sign in ((Transfer.credit_id, 1), (Transfer.debit_id, -1)):
        for lid, total in session.execute(select(side, func.sum(Transfer.amount)).where(
                posted, side.in_(ids), Transfer.created_at < start).group_by(side)):
            opening[lid] += sign * int(total)
    resource = (select(Charge.job_id, func.sum(Charge.core_seconds).label("cs"), func.sum(Charge.gpu_seconds).label("gs"))
                .group_by(Charge.job_id).subquery())
    rows = session.execute(
        select(Transfer.debit_id, Transfer.credit_id, Transfer.amount, Transfer.kind, Transfer.job_id, Transfer.memo,
               Transfer.created_at, Job.name, resource.c.cs, resource.c.gs)
        .outerjoin(Job, Job.id == Transfer.job_id).outerjoin(resource, resource.c.job_id == Transfer.job_id)
        .where(posted, or_(Transfer.debit_id.in_(ids), Transfer.credit_id.in_(ids)),
               Transfer.created_at >= start, Transfer.created_at < end)
        .order_by(Transfer.created_at, Transfer.id))
    result: dict[int, Statement] = {
        lid: Statement(account=acc.name, currency=acc.currency, month=month, opening_balance=money(opening[lid]),
                       closing_balance=money(opening[lid]), top_ups=money(0), charges=money(0))
        for lid, acc in lines_of.items()}
    cents_of: dict[int, list[int]] = {lid: [opening[lid], 0, 0] for lid in result}  # closing, in, charged
    by_line: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    seen_jobs: set[tuple[int, int]] = set()
    zero = Decimal("0.0000")
    hour_places = Decimal("0.0001")
    for debit_id, credit_id, amount, kind, job_id, memo, created_at, job_name, cs, gs in rows:
        for lid, signed, other in ((credit_id, amount, debit_id), (debit_id, -amount, credit_id)):
            if lid not in result:
                continue
            core_h = gpu_h = zero
            if job_id and (lid, job_id) not in seen_jobs:  # resources once per job, on its first money line
                seen_jobs.add((lid, job_id))
                core_h = (Decimal(cs or 0) / 3600).quantize(hour_places)
                gpu_h = (Decimal(gs or 0) / 3600).quantize(hour_places)
            line_name = product_line.get(other) or None
            # scaleb: cents to an exact two-place amount, without a quantize per line
            result[lid].lines.append(Line(created_at.isoformat(" ", "seconds")[:19], kind,
                                          Decimal(signed).scaleb(-2), job_id, job_name, line_name, core_h, gpu_h, memo))
            totals = cents_of[lid]
            totals[0] += signed
            if kind in ("topup", "transfer"):
                totals[1] += signed
            else:
                totals[2] -= signed
                by_line[lid][line_name or "?"] -= signed
    held: dict[int, int] = defaultdict(int)
    resolution = aliased(Transfer)
    for lid, total in session.execute(select(Transfer.debit_id, func.sum(Transfer.amount)).where(
            Transfer.debit_id.in_(ids), Transfer.pending, Transfer.created_at < end,
            ~select(resolution.id).where(resolution.pending_id == Transfer.id, resolution.created_at < end).exists())
            .group_by(Transfer.debit_id)):
        held[lid] = int(total)
    closed = session.get(ClosedPeriod, month) is not None
    for lid, st in result.items():
        closing, top_ups, charges = cents_of[lid]
        st.closing_balance, st.top_ups, st.charges = money(closing), money(top_ups), money(charges)
        st.by_product_line = {k: money(v) for k, v in by_line[lid].items()}
        st.held_at_close, st.closed = money(held[lid]), closed
    return {st.account: st for st in result.values()}


def statement(session: Session, account: Account, month: str) -> Statement:
    found = statements_for_month(session, month, [account.id])
    if account.name in found:
        return found[account.name]
    month_bounds(month)  # a bad month is still an error
    return Statement(account=account.name, currency=account.currency, month=month, opening_balance=money(0),
                     closing_balance=money(0), top_ups=money(0), charges=money(0),
                     closed=session.get(ClosedPeriod, month) is not None)
