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

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from ..store.models import Account, Charge, ClosedPeriod, Job, LedgerAccount, Transfer
from .ledger import NANO_PER_CENT, money
from .words import KIND_WORDS  # also re-exported: pdf.py and the portal import it from here

NANO_PER_UNIT = NANO_PER_CENT * 100

_MOVES_MONEY = ("topup", "transfer", "post", "charge", "refund", "adjustment")
# ledger transfer kinds in the words a customer reads on a bill


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """``2026-11`` -> [2026-11-01, 2026-12-01) in UTC."""
    try:
        year, mon = (int(part) for part in month.split("-"))
        start = datetime(year, mon, 1, tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"invalid month {month!r} (use YYYY-MM)") from None
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end


@dataclass(slots=True)
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
    price_core_hour: Decimal | None = None  # the job's unit prices, where the line names a charged job
    price_gpu_hour: Decimal | None = None


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
    # usage charged but under a cent at the close (the ledger posts it once it reaches one):
    # opening + lines = closing to the cent, and charges + this = the usage exactly
    usage_carried: Decimal = Decimal("0")

    def to_json(self) -> dict:
        data = asdict(self)
        return _jsonable(data)

    def to_csv(self) -> str:
        """The lines as one rectangular table (a spreadsheet or a database loads it as is): every
        row has every column, the account and month on each, the kind in a customer's words."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(STATEMENT_CSV_COLUMNS)
        for line in self.lines:
            writer.writerow([self.account, self.month, self.currency, line.date, KIND_WORDS.get(line.kind, line.kind),
                             line.amount, line.job_id or "", line.job_name or "", line.product_line or "",
                             line.core_hours, line.gpu_hours, _or_blank(line.price_core_hour),
                             _or_blank(line.price_gpu_hour), line.memo])
        return out.getvalue()

    def summary_csv(self) -> str:
        """The totals as a table of their own: opening, top-ups, charges per product line,
        closing, held at the close, and usage under a cent still carried (nothing rounded away)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(SUMMARY_CSV_COLUMNS)
        head = [self.account, self.month, self.currency]
        writer.writerow(head + ["opening_balance", "", self.opening_balance])
        writer.writerow(head + ["top_ups", "", self.top_ups])
        for name, total in sorted(self.by_product_line.items()):
            writer.writerow(head + ["charges", name, total])
        writer.writerow(head + ["closing_balance", "", self.closing_balance])
        writer.writerow(head + ["held_at_close", "", self.held_at_close])
        writer.writerow(head + ["usage_carried", "", self.usage_carried])
        return out.getvalue()


STATEMENT_CSV_COLUMNS = ("account", "month", "currency", "date", "kind", "amount", "job_id", "job_name",
                         "product_line", "core_hours", "gpu_hours", "price_core_hour", "price_gpu_hour", "memo")
SUMMARY_CSV_COLUMNS = ("account", "month", "currency", "item", "product_line", "amount")


def _or_blank(value: Decimal | None) -> str:
    return "" if value is None else str(value)


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
    # a 10,000-id IN list makes SQLite walk the ledger by account; for a whole
    # month's run, select by time and drop other accounts here instead
    scoped = (lambda side: [side.in_(ids)]) if account_ids is not None else (lambda side: [])
    opening: dict[int, int] = defaultdict(int)
    for side, sign in ((Transfer.credit_id, 1), (Transfer.debit_id, -1)):
        for lid, total in session.execute(select(side, func.sum(Transfer.amount)).where(
                posted, *scoped(side), Transfer.created_at < start).group_by(side)):
            if lid in customers:
                opening[lid] += sign * int(total)
    rows = _month_lines(session, start, end, ids if account_ids is not None else None)
    result: dict[int, Statement] = {
        lid: Statement(account=acc.name, currency=acc.currency, month=month, opening_balance=money(opening[lid]),
                       closing_balance=money(opening[lid]), top_ups=money(0), charges=money(0))
        for lid, acc in lines_of.items()}
    cents_of: dict[int, list[int]] = {lid: [opening[lid], 0, 0] for lid in result}  # closing, in, charged
    by_line: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    seen_jobs: set[tuple[int, int]] = set()
    first_line_of_job: dict[int, list[Line]] = {}
    zero = Decimal("0.0000")
    hour_places = Decimal("0.0001")
    def add(lid: int, signed: int, other: int, kind, job_id, memo, created_at, job_name) -> None:
        line_name = product_line.get(other) or None
        # scaleb: cents to an exact two-place amount, without a quantize per line
        line = Line(created_at, kind, Decimal(signed).scaleb(-2), job_id, job_name, line_name, zero, zero, memo)
        result[lid].lines.append(line)
        if job_id and (lid, job_id) not in seen_jobs:  # resources once per job, on its first money line
            seen_jobs.add((lid, job_id))
            first_line_of_job.setdefault(job_id, []).append(line)
        totals = cents_of[lid]
        totals[0] += signed
        if kind in ("topup", "transfer"):
            totals[1] += signed
        else:
            totals[2] -= signed
            by_line[lid][line_name or "?"] -= signed

    for part in rows:
        for debit_id, credit_id, amount, kind, job_id, memo, created_at, job_name in part:
            if credit_id in result:
                add(credit_id, amount, debit_id, kind, job_id, memo, created_at, job_name)
            if debit_id in result:
                add(debit_id, -amount, credit_id, kind, job_id, memo, created_at, job_name)
    # core- and GPU-hours of the jobs these lines name (and only those)
    job_ids = list(first_line_of_job)
    for lo in range(0, len(job_ids), 5_000):
        for job_id, cs, gs, core_price, gpu_price in session.execute(
                select(Charge.job_id, func.sum(Charge.core_seconds), func.sum(Charge.gpu_seconds),
                       func.max(Charge.price_core_hour), func.max(Charge.price_gpu_hour))
                .where(Charge.job_id.in_(job_ids[lo:lo + 5_000])).group_by(Charge.job_id)):
            for line in first_line_of_job[job_id]:
                line.core_hours = (Decimal(cs or 0) / 3600).quantize(hour_places)
                line.gpu_hours = (Decimal(gs or 0) / 3600).quantize(hour_places)
                line.price_core_hour, line.price_gpu_hour = core_price, gpu_price
    _zero_cost_jobs(session, start, end, result, lines_of, first_line_of_job, hour_places)
    held: dict[int, int] = defaultdict(int)
    resolution = aliased(Transfer)
    for lid, total in session.execute(select(Transfer.debit_id, func.sum(Transfer.amount)).where(
            Transfer.pending, *scoped(Transfer.debit_id), Transfer.created_at < end,
            ~select(resolution.id).where(resolution.pending_id == Transfer.id, resolution.created_at < end).exists())
            .group_by(Transfer.debit_id)):
        if lid in customers:
            held[lid] = int(total)
    carried: dict[int, int] = defaultdict(int)
    for lid, total in session.execute(select(Transfer.debit_id, func.sum(Transfer.subcent)).where(
            Transfer.subcent.is_not(None), *scoped(Transfer.debit_id), Transfer.created_at < end)
            .group_by(Transfer.debit_id)):
        if lid in customers:
            carried[lid] = int(total)
    closed = session.get(ClosedPeriod, month) is not None
    for lid, st in result.items():
        if carried[lid]:
            st.usage_carried = (Decimal(carried[lid]) / NANO_PER_UNIT).quantize(Decimal("0.000000001"))
        closing, top_ups, charges = cents_of[lid]
        st.closing_balance, st.top_ups, st.charges = money(closing), money(top_ups), money(charges)
        st.by_product_line = {k: money(v) for k, v in by_line[lid].items()}
        st.held_at_close, st.closed = money(held[lid]), closed
    return {st.account: st for st in result.values()}


def _zero_cost_jobs(session: Session, start: datetime, end: datetime, result: dict, lines_of: dict,
                    listed: dict, hour_places: Decimal) -> None:
    """Jobs rated this month that moved no money (free, or under a cent still carried) are listed
    too, at 0.00 with their hours: a customer sees every job that ran, not only the paid ones."""
    ledger_of = {account.id: lid for lid, account in lines_of.items()}
    added = set()
    for job_id, account_id, first, cs, gs, amount, core_price, gpu_price, name in session.execute(
            select(Charge.job_id, Charge.account_id, func.min(Charge.created_at), func.sum(Charge.core_seconds),
                   func.sum(Charge.gpu_seconds), func.sum(Charge.amount), func.max(Charge.price_core_hour),
                   func.max(Charge.price_gpu_hour), Job.name)
            .join(Job, Job.id == Charge.job_id)
            .where(Charge.created_at >= start, Charge.created_at < end, Charge.account_id.in_(list(ledger_of)))
            .group_by(Charge.job_id, Charge.account_id, Job.name)):
        lid = ledger_of[account_id]
        if job_id in listed or Decimal(amount or 0) != 0:
            continue  # its money lines carry it (a charge that moved money has a transfer)
        when = first if isinstance(first, str) else first.strftime("%Y-%m-%d %H:%M:%S")
        result[lid].lines.append(Line(when[:19], "charge", Decimal("0.00"), job_id, name, None,
                                      (Decimal(cs or 0) / 3600).quantize(hour_places),
                                      (Decimal(gs or 0) / 3600).quantize(hour_places),
                                      "no charge this month (free, or under a cent and carried)",
                                      core_price, gpu_price))
        added.add(lid)
    for lid in added:  # in time order with the money lines
        result[lid].lines.sort(key=lambda line: line.date)


def _month_lines(session: Session, start: datetime, end: datetime, ledger_ids: list[int] | None):
    """The month's money lines, in posting order, in chunks, straight from the driver.

    SQLAlchemy's result layer costs about 2 us a row, most of the time for a
    month of a large network, so this one query goes to the DBAPI cursor.
    The date comes back as text ("YYYY-MM-DD HH:MM:SS") on both backends.
    """
    connection = session.connection()
    dialect = connection.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    kinds = ", ".join(f"'{k}'" for k in _MOVES_MONEY)  # constants of this module
    scope = ""
    if ledger_ids is not None:  # ints from our own tables
        id_list = ", ".join(str(int(i)) for i in ledger_ids)
        scope = f" AND (t.debit_id IN ({id_list}) OR t.credit_id IN ({id_list}))"
    sql = ("SELECT t.debit_id, t.credit_id, t.amount, t.kind, t.job_id, t.memo, "
           "substr(CAST(t.created_at AS VARCHAR), 1, 19), j.name "
           "FROM transfers t LEFT OUTER JOIN jobs j ON j.id = t.job_id "
           f"WHERE t.pending = false AND t.kind IN ({kinds}) AND t.created_at >= {mark} AND t.created_at < {mark}"
           f"{scope} ORDER BY t.id")  # ids follow posting order: no sort of a million rows
    bounds = [moment.astimezone(timezone.utc).replace(tzinfo=None) for moment in (start, end)]
    if dialect.name == "sqlite":  # stored as text, compared as text
        bounds = [moment.strftime("%Y-%m-%d %H:%M:%S.%f") for moment in bounds]
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql, bounds)
        while True:
            part = cursor.fetchmany(50_000)
            if not part:
                return
            yield part
    finally:
        cursor.close()


def statement(session: Session, account: Account, month: str) -> Statement:
    found = statements_for_month(session, month, [account.id])
    if account.name in found:
        return found[account.name]
    month_bounds(month)  # a bad month is still an error
    return Statement(account=account.name, currency=account.currency, month=month, opening_balance=money(0),
                     closing_balance=money(0), top_ups=money(0), charges=money(0),
                     closed=session.get(ClosedPeriod, month) is not None)
