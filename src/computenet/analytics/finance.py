"""The finance view of one company: growth, margins, R&D intensity and valuation multiples.

Everything is computed from a Statement (amounts in yuan, Decimal). A figure
that cannot be computed (zero revenue, a loss as base, a missing year) is None
with the reason; nothing is filled in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Optional

from .growth import Figure, cagr, plain, to_decimal, yoy
from .statements_io import ITEMS, Statement, StatementError

CAGR_ITEMS = ("revenue", "gross_profit", "net_profit", "rd_expense", "operating_cash_flow")
MARGIN_ITEMS = {"gross_margin": "gross_profit", "net_margin": "net_profit", "rd_ratio": "rd_expense"}


def ratio(numerator: Optional[object], denominator: Optional[object], what: str = "ratio",
          base: str = "the denominator") -> Figure:
    """numerator / denominator as a Decimal; undefined (with why) for a missing or non-positive base."""
    top, bottom = to_decimal(numerator, what), to_decimal(denominator, base)
    if top is None or bottom is None:
        return Figure(None, f"{what}: {'numerator' if top is None else base} not given")
    if bottom == 0:
        return Figure(None, f"{what}: {base} is zero")
    if bottom < 0:
        return Figure(None, f"{what}: {base} is negative ({bottom}), the ratio is not meaningful")
    with localcontext() as ctx:
        ctx.prec = 34
        return Figure(top / bottom)


def gross_profit(statement: Statement, year: int) -> tuple[Optional[Decimal], Optional[str]]:
    """Gross profit as given, else revenue - cost of revenue (noted)."""
    given = statement.value("gross_profit", year)
    if given is not None:
        return given, None
    revenue, cost = statement.value("revenue", year), statement.value("cost_of_revenue", year)
    if revenue is not None and cost is not None:
        return revenue - cost, "revenue - cost of revenue"
    return None, None


@dataclass
class YearView:
    year: int
    amounts: dict[str, Optional[Decimal]]  # in yuan
    growth: dict[str, Figure]  # item -> year-on-year
    margins: dict[str, Figure]  # gross_margin, net_margin, rd_ratio


@dataclass
class FinanceReport:
    statement: Statement
    years: list[YearView]
    cagr: dict[str, tuple[int, int, Figure]]  # item -> (first year, last year, CAGR)
    rd_cumulative: Figure  # last three years: sum R&D / sum revenue (the STAR definition)
    rd_mean: Figure  # mean of the same years' ratios (what analysts often print)
    rd_years: tuple[int, ...]
    valuation: dict[str, Figure] = field(default_factory=dict)  # pe, ps, cap_to_profit_plus_rd
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        def fig(f: Figure) -> dict:
            return {"value": plain(f.value), "reason": f.reason}
        s = self.statement
        return {
            "company": s.company, "unit": s.unit,
            "market_cap": None if s.market_cap is None else plain(s.shown(s.market_cap.yuan)),
            "years": [{"year": y.year,
                       "amounts": {k: plain(s.shown(v)) for k, v in y.amounts.items()},
                       "yoy": {k: fig(v) for k, v in y.growth.items()},
                       **{k: fig(v) for k, v in y.margins.items()}} for y in self.years],
            "cagr": {k: {"from": a, "to": b, **fig(f)} for k, (a, b, f) in self.cagr.items()},
            "rd_cumulative": {"years": list(self.rd_years), **fig(self.rd_cumulative)},
            "rd_mean_of_yearly_ratios": fig(self.rd_mean),
            "valuation": {k: fig(v) for k, v in self.valuation.items()},
            "notes": self.notes,
        }


def _cagrs(views: list[YearView]) -> dict[str, tuple[int, int, Figure]]:
    """Each item's compound growth from the first to the last year shown."""
    first, last = views[0], views[-1]
    result = {}
    for item in CAGR_ITEMS:
        if all(view.amounts[item] is None for view in views):
            continue
        if first is last:
            result[item] = (first.year, last.year, Figure(None, "one year only: no growth period"))
        elif first.amounts[item] is None or last.amounts[item] is None:
            gap = first.year if first.amounts[item] is None else last.year
            result[item] = (first.year, last.year, Figure(None, f"missing year: no {item} for {gap}"))
        else:
            result[item] = (first.year, last.year,
                            cagr(first.amounts[item], last.amounts[item], last.year - first.year))
    return result


def rd_intensity(statement: Statement, years: tuple[int, ...]) -> tuple[Figure, Figure]:
    """(cumulative R&D / cumulative revenue, mean of the yearly ratios) over ``years``."""
    missing = [f"{item} {y}" for y in years for item in ("rd_expense", "revenue") if statement.get(item, y) is None]
    if missing:
        why = f"missing {', '.join(missing)}"
        return Figure(None, why), Figure(None, why)
    rd = sum(statement.value("rd_expense", y) for y in years)
    revenue = sum(statement.value("revenue", y) for y in years)
    cumulative = ratio(rd, revenue, "cumulative R&D ratio", "cumulative revenue")
    yearly = [ratio(statement.value("rd_expense", y), statement.value("revenue", y), "R&D ratio", f"revenue {y}")
              for y in years]
    undefined = [f.reason for f in yearly if f.value is None]
    mean = Figure(None, "; ".join(undefined)) if undefined else Figure(sum(f.value for f in yearly) / len(yearly))
    return cumulative, mean


def last_years(statement: Statement, count: int) -> tuple[int, ...]:
    last = statement.years[-1]
    return tuple(range(last - count + 1, last + 1))


def valuation(statement: Statement, year: int) -> dict[str, Figure]:
    """P/E, P/S and market cap / (net profit + R&D) on ``year``'s figures."""
    cap = None if statement.market_cap is None else statement.market_cap.yuan
    if cap is None:
        missing = Figure(None, "market cap not given")
        return {"pe": missing, "ps": missing, "cap_to_profit_plus_rd": missing}
    if cap <= 0:
        raise StatementError(f"{statement.company}: market cap must be positive, got {statement.shown(cap)}")
    profit, revenue = statement.value("net_profit", year), statement.value("revenue", year)
    rd = statement.value("rd_expense", year)
    pe = ratio(cap, profit, "P/E", f"net profit {year}")
    if profit is not None and profit < 0:
        pe = Figure(None, f"P/E: net loss in {year} ({statement.shown(profit)} {statement.unit}), not meaningful")
    earnings_and_rd = None if profit is None or rd is None else profit + rd
    return {"pe": pe, "ps": ratio(cap, revenue, "P/S", f"revenue {year}"),
            "cap_to_profit_plus_rd": ratio(cap, earnings_and_rd, "market cap / (net profit + R&D)",
                                           f"net profit + R&D {year}")}


def analyse(statement: Statement, first: Optional[int] = None, last: Optional[int] = None) -> FinanceReport:
    """The whole view; ``first``/``last`` restrict it to a period, which must hold data."""
    if first is not None or last is not None:
        if first is not None and last is not None and first > last:
            raise StatementError(f"period {first}-{last}: the first year is after the last")
        asked = (f"{first}-{last}" if first is not None and last is not None
                 else f"from {first}" if first is not None else f"up to {last}")
        kept = {y: v for y, v in statement.figures.items()
                if (first is None or y >= first) and (last is None or y <= last)}
        if not kept:
            raise StatementError(f"{statement.company}: no data {'in ' if '-' in asked else ''}{asked} "
                                 f"(the statement covers {statement.years[0]}-{statement.years[-1]})")
        statement = Statement(statement.company, statement.unit, kept, statement.market_cap, statement.facts,
                              statement.notes)
    notes = list(statement.notes)
    views = []
    shown: dict[int, dict[str, Optional[Decimal]]] = {}  # as given, gross profit derived where it is not
    for year in statement.years:
        amounts = {item: statement.value(item, year) for item in ITEMS}
        amounts["gross_profit"], derived = gross_profit(statement, year)
        if derived:
            notes.append(f"gross profit {year} = {derived}")
        shown[year] = amounts
        previous = shown.get(year - 1)
        growth = {item: (yoy(previous[item], amounts[item]) if previous is not None
                         else Figure(None, f"missing year: no {year - 1} figures"))
                  for item in ITEMS if amounts[item] is not None}
        revenue = amounts["revenue"]
        margins = {name: ratio(amounts[item], revenue, name.replace("_", " "), f"revenue {year}")
                   for name, item in MARGIN_ITEMS.items()}
        if revenue is None:
            margins = {name: Figure(None, f"no revenue for {year}") for name in MARGIN_ITEMS}
        views.append(YearView(year, amounts, growth, margins))
    rd_years = last_years(statement, 3)
    cumulative, mean = rd_intensity(statement, rd_years)
    return FinanceReport(statement, views, _cagrs(views), cumulative, mean, rd_years,
                         valuation(statement, statement.years[-1]), notes)
