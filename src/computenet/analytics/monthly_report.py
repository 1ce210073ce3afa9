"""The operator's monthly report (月度运营报告): one month's headline figures against the month before and the
same month a year earlier, with the reports behind them (utilization by day, revenue, margin, top customers,
jobs, efficiency, routing). Every figure is one of reports.run's, so the document says what `cnet report`
says; monthly_render.py lays it out as HTML and PDF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from ..messages import msg
from . import reports
from .periods import ReportError
from .report_model import Report, ratio
from .warehouse import Warehouse

MONTH = re.compile(r"^(\d{4})-(\d{2})$")
TOP_CUSTOMERS = 10
# headline figure -> how it is shown: money, ratio (a share: its change is in percentage points), hours, count
HEADLINE = {"revenue": "money", "gross_profit": "money", "margin": "ratio", "core_hours": "hours",
            "card_hours": "hours", "owned_core_utilization": "ratio", "owned_card_utilization": "ratio",
            "jobs": "count", "customers": "count"}


class NoData(ReportError):
    """The month has no revenue, no usage and no job: there is nothing to report."""


@dataclass
class Headline:
    key: str
    kind: str
    value: Decimal | int | None
    previous: Decimal | int | None = None  # the month before; None: no data then
    last_year: Decimal | int | None = None  # the same month a year earlier

    def change(self, base: Decimal | int | None) -> Decimal | None:
        """Relative change from ``base`` (a ratio: the difference, in points); None when undefined."""
        if self.value is None or base is None:
            return None
        if self.kind == "ratio":
            return Decimal(self.value) - Decimal(base)
        return ratio(Decimal(self.value) - Decimal(base), Decimal(base))


@dataclass
class MonthlyReport:
    month: str  # YYYY-MM
    first: date
    last: date
    currency: str | None
    headline: list[Headline]
    previous_month: str
    last_year_month: str | None
    reports: dict[str, Report] = field(default_factory=dict)  # utilization_daily, revenue_daily, margin, ...

    def figure(self, key: str) -> Headline:
        return next(h for h in self.headline if h.key == key)


def month_range(text: str) -> tuple[date, date]:
    """The first and last day of YYYY-MM; ReportError says what a month looks like."""
    found = MONTH.match((text or "").strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
        raise ReportError(msg("%(text)r is not a month: use YYYY-MM (e.g. 2022-03)", text=text))
    year, number = int(found.group(1)), int(found.group(2))
    if (year, number) == (9999, 12):
        raise ReportError(msg("9999-12 is the last month a date can hold: choose an earlier month"))
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    return first, following - timedelta(days=1)


def _shift(first: date, months: int) -> str | None:
    index = first.year * 12 + first.month - 1 + months
    return None if index < 12 else f"{index // 12:04d}-{index % 12 + 1:02d}"


def _figures(warehouse: Warehouse, first: date, last: date) -> dict | None:
    """The headline figures of first..last (one bucket), None when the month has no data at all."""
    revenue = reports.run("revenue", warehouse, first, last, "month", dimension="total")
    margin = reports.run("margin", warehouse, first, last, "month")
    usage = reports.run("utilization", warehouse, first, last, "month")
    jobs = reports.run("jobs", warehouse, first, last, "month", dimension="cluster")
    customers = reports.run("customers", warehouse, first, last, "month", top=TOP_CUSTOMERS)
    if revenue.empty and usage.empty and jobs.empty:
        return None
    total = next((r for r in margin.rows if r["level"] == "total"), {})
    clusters = [r for r in usage.rows if r["level"] == "cluster"]
    owned = next((r for r in usage.rows if r["level"] == "ownership" and r["name"] == "owned"), {})
    return {"revenue": next((r["revenue"] for r in revenue.rows if r["dimension"] == "total"), None),
            "gross_profit": total.get("gross_profit"), "margin": total.get("margin"),
            "core_hours": sum((r["core_hours"] for r in clusters), Decimal(0)) if clusters else None,
            "card_hours": sum((r["card_hours"] for r in clusters), Decimal(0)) if clusters else None,
            "owned_core_utilization": owned.get("core_utilization"),
            "owned_card_utilization": owned.get("card_utilization"),
            "jobs": sum(r["jobs"] for r in jobs.rows) if not jobs.empty else 0,
            "customers": customers.summary[0]["customers"] if customers.summary else 0}


def build(warehouse: Warehouse, month: str) -> MonthlyReport:
    """The month's report; ReportError for a bad month, NoData for a month with nothing in it."""
    first, last = month_range(month)
    now = _figures(warehouse, first, last)
    if now is None:
        raise NoData(msg("no data for %(month)s: no revenue in the ledger, no usage and no job started in that "
                         "month (is it the right month, and the right database or --data directory?)",
                         month=first.strftime("%Y-%m")))
    previous_month, last_year_month = _shift(first, -1), _shift(first, -12)
    before = _figures(warehouse, *month_range(previous_month)) if previous_month else None
    year_ago = _figures(warehouse, *month_range(last_year_month)) if last_year_month else None
    headline = [Headline(key, kind, now[key], (before or {}).get(key), (year_ago or {}).get(key))
                for key, kind in HEADLINE.items()]
    made = MonthlyReport(f"{first:%Y-%m}", first, last, None, headline, previous_month or "", last_year_month,
                         reports=_details(warehouse, first, last))
    made.currency = made.reports["margin"].currency or made.reports["revenue"].currency
    return made


def _details(warehouse: Warehouse, first: date, last: date) -> dict[str, Report]:
    """The reports the document's charts and tables show."""
    return {"utilization_daily": reports.run("utilization", warehouse, first, last, "day"),
            "revenue_daily": reports.run("revenue", warehouse, first, last, "day", dimension="product_line"),
            "revenue": reports.run("revenue", warehouse, first, last, "month"),
            "margin": reports.run("margin", warehouse, first, last, "month"),
            "customers": reports.run("customers", warehouse, first, last, "month", top=TOP_CUSTOMERS),
            "jobs": reports.run("jobs", warehouse, first, last, "month", dimension="cluster"),
            "efficiency": reports.run("efficiency", warehouse, first, last, "month", dimension="tenant"),
            "routing": reports.run("routing", warehouse, first, last, "month", dimension="cluster")}
