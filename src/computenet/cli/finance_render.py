"""Rich tables for `cnet finance`: figures unrounded underneath, rounded only here, for reading."""

from __future__ import annotations

from decimal import Decimal
from typing import Optional

from rich.markup import escape
from rich.table import Table

from ..analytics.finance import FinanceReport
from ..analytics.growth import Figure
from ..analytics.peers import Peer
from ..analytics.reconcile import AGREES, Check
from ..analytics.star import MET, NOT_MET, StandardResult
from ..analytics.valuation import Scenario

VERDICT_STYLE = {AGREES: "green", "rounding": "yellow", "contradiction": "red", "undefined": "dim",
                 MET: "green", NOT_MET: "red"}
LABELS = {"revenue": "revenue", "cost_of_revenue": "cost of revenue", "gross_profit": "gross profit",
          "net_profit": "net profit", "rd_expense": "R&D", "operating_cash_flow": "op. cash flow"}


def amount(value: Optional[Decimal]) -> str:
    if value is None:
        return "—"
    text = f"{value:,.4f}".rstrip("0")
    return text + "0" * (2 - len(text.split(".")[1])) if "." in text else text


def percent(figure: Figure, notes: list[str], what: str) -> str:
    """A percentage to 1 place; an undefined one is a dash with its reason as a numbered note."""
    if figure.value is not None:
        return f"{figure.value * 100:.1f} %"
    notes.append(f"{what}: {figure.reason}")
    return f"— [{len(notes)}]"


def verdict(text: str) -> str:
    return f"[{VERDICT_STYLE.get(text, 'white')}]{text}[/]"


def statement_tables(report: FinanceReport) -> tuple[list[Table], list[str]]:
    s, notes = report.statement, []
    items = [i for i in LABELS if any(y.amounts.get(i) is not None for y in report.years)]
    figures = Table(title=escape(f"{s.company}: statement ({s.unit})"))  # company names come from the user's file
    figures.add_column("year")
    for item in items:
        figures.add_column(LABELS[item], justify="right")
    for view in report.years:
        figures.add_row(str(view.year), *(amount(s.shown(view.amounts[i])) for i in items))
    ratios = Table(title="growth and margins")
    for name in ("year", "revenue yoy", "net profit yoy", "gross margin", "net margin", "R&D ratio"):
        ratios.add_column(name, justify="right")
    for view in report.years:
        cells = [percent(view.growth[i], notes, f"{LABELS[i]} yoy {view.year}") if i in view.growth else "—"
                 for i in ("revenue", "net_profit")]
        cells += [percent(view.margins[m], notes, f"{m.replace('_', ' ')} {view.year}")
                  for m in ("gross_margin", "net_margin", "rd_ratio")]
        ratios.add_row(str(view.year), *cells)
    summary = Table(title="compound growth, R&D intensity, valuation", show_header=False)
    for item, (first, last, figure) in report.cagr.items():
        summary.add_row(f"{LABELS[item]} CAGR {first}-{last} ({last - first} periods)",
                        percent(figure, notes, f"{LABELS[item]} CAGR"))
    span = f"{report.rd_years[0]}-{report.rd_years[-1]}"
    summary.add_row(f"R&D / revenue, cumulative {span}", percent(report.rd_cumulative, notes, "cumulative R&D"))
    summary.add_row(f"R&D ratio, mean of yearly {span}", percent(report.rd_mean, notes, "mean R&D ratio"))
    names = {"pe": "P/E", "ps": "P/S", "cap_to_profit_plus_rd": "market cap / (net profit + R&D)"}
    for key, figure in report.valuation.items():
        if figure.value is not None:
            summary.add_row(f"{names[key]} ({s.years[-1]})", f"{figure.value:.2f}")
        else:
            notes.append(f"{names[key]}: {figure.reason}")
            summary.add_row(f"{names[key]} ({s.years[-1]})", f"— [{len(notes)}]")
    return [figures, ratios, summary], notes + report.notes


def star_table(results: list[StandardResult]) -> Table:
    table = Table(title="STAR market listing standards")
    table.add_column("standard", justify="right")
    table.add_column("verdict")
    table.add_column("why")
    for result in results:
        table.add_row(str(result.number), verdict(result.verdict), escape(result.reason))
    return table


def scenario_table(table_data: Scenario) -> Table:
    unit = table_data.unit
    table = Table(title=f"sector valuation scenario: P/E {table_data.sector_pe.yuan} x premium, "
                        f"base {amount(table_data.shown(table_data.base.yuan))} ({unit})")
    for name in ("premium", "P/E", f"market cap ({unit})", "share of sector", "range from rounded inputs"):
        table.add_column(name, justify="right")
    for row in table_data.rows:
        low, high = (table_data.shown(v) for v in row.cap_range)
        share = "—" if row.share is None else f"{row.share * 100:.4f} %"
        table.add_row(f"{row.premium}x", str(row.pe), amount(table_data.shown(row.market_cap)), share,
                      f"{low:,.2f} to {high:,.2f}")
    return table


def checks_table(title: str, checks: list[Check]) -> Table:
    table = Table(title=title)
    for name in ("figure", "printed", "computed", "verdict", "why"):
        table.add_column(name)
    for check in checks:
        table.add_row(escape(check.what), "—" if check.printed is None else str(check.printed),
                      "—" if check.computed is None else f"{check.computed:.2f}", verdict(check.verdict),
                      escape(check.reason))
    return table


def peers_table(peers: list[Peer]) -> Table:
    table = Table(title="peer table: printed vs recomputed (percent)")
    columns = ("company", "rev yoy", "rev CAGR", "profit yoy", "profit CAGR", "net margins", "R&D 3y", "standard")
    for name in columns:
        table.add_column(name)
    for peer in peers:
        by_kind = {}
        for check in peer.checks:
            kind = check.what.split(" ")[0]
            by_kind.setdefault(kind.rsplit("_", 1)[0] if kind.startswith("net_margin") else kind, []).append(check)

        def cell(key: str) -> str:
            found = by_kind.get(key, [])
            return " ".join(f"[{VERDICT_STYLE.get(c.verdict, 'white')}]{_short(c)}[/]" for c in found) or "—"
        yoy = [k for k in by_kind if k.startswith("reported_revenue_yoy")]
        pyoy = [k for k in by_kind if k.startswith("reported_profit_yoy")]
        listing = peer.standard + ("" if peer.listing is None else f": {peer.listing.verdict}")
        table.add_row(escape(peer.company), cell(yoy[0]) if yoy else "—", cell("reported_revenue_cagr"),
                      cell(pyoy[0]) if pyoy else "—", cell("reported_profit_cagr"), cell("net_margin"),
                      cell("rd_ratio_3y_avg"), escape(listing))
    return table


def _short(check: Check) -> str:
    printed = "—" if check.printed is None else str(check.printed)
    places = 1 if check.printed is None else max(1, -check.printed.as_tuple().exponent)
    computed = "—" if check.computed is None else f"{check.computed:.{places}f}"
    return f"{printed}/{computed}"
