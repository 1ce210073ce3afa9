"""The platform operator's own statement, from its database, for the finance view.

Built from the operator reports' margin report (money_reports.margin) by calendar year, so
`cnet finance operator` and `cnet report margin --by year` can never disagree: revenue is the
ledger's (posted money into the revenue accounts less money out of them; open holds are not
revenue) and cost of revenue is the cost of capacity (owned clusters every hour at their
node-hour cost, leased ones per hour used; analytics/costs.py). A year whose cost cannot be
computed has no cost figure (and so no gross margin), with the reason, never a zero. The
current year runs to today and says so.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from .money_reports import margin
from .periods import make_period
from .statements_io import Amount, Statement, StatementError, exact_amount
from .warehouse import Warehouse

_REVENUE_SPAN = """
SELECT min(t.created_at), max(t.created_at)
FROM transfers t JOIN ledger_accounts a ON a.id = t.credit_id OR a.id = t.debit_id
WHERE a.code = 'revenue' AND NOT t.pending
"""


def operator_statement(warehouse: Warehouse, currency: str = "CNY", name: str = "platform operator",
                       today: date | None = None) -> Statement:
    """The operator as a company: revenue and cost of capacity per calendar year (UTC), in yuan."""
    currencies = sorted(c for (c,) in warehouse.query(
        "SELECT DISTINCT currency FROM ledger_accounts WHERE code = 'revenue'")[1])
    if currencies and currencies != [currency]:
        raise StatementError(f"the ledger holds revenue in {', '.join(currencies)}; this view adds amounts without "
                             f"converting them, so it reports a ledger in one currency only ({currency} asked)")
    first, last = warehouse.query(_REVENUE_SPAN)[1][0]
    if first is None:
        raise StatementError(f"no {currency} revenue in the ledger yet (a period with no data)")
    today = today or datetime.now(timezone.utc).date()
    end = min(date(last.year, 12, 31), max(today, last.date()))
    report = margin(warehouse, make_period(date(first.year, 1, 1), end, "year"))
    figures: dict[int, dict[str, Amount]] = {}
    notes = []
    for row in report.rows:
        if row["level"] != "total":
            continue
        year = int(str(row["bucket"])[:4])
        figures[year] = {"revenue": exact_amount(row["revenue"])}
        if row["cost"] is None:
            notes.append(f"cost of revenue {year} unknown: {row['note'] or 'no cost of capacity configured'}")
        else:
            figures[year]["cost_of_revenue"] = exact_amount(row["cost"])
    if end < date(end.year, 12, 31):
        notes.append(f"{end.year} runs to {end} (part of the year)")
    notes += report.notes
    return Statement(name, "yuan", figures, None, {}, notes)
