"""A sector report's peer table: its printed columns recomputed, and where they disagree, why.

The table gives revenue and net profit per year (rounded to the unit's 0.01)
and printed percentages: year-on-year growth, CAGR, margins, R&D ratios.
Each percentage that can be recomputed is checked against the rounded inputs
(see reconcile.py); gross margins cannot (the table has no gross profit).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from statistics import median_low
from typing import Optional

from .finance import ratio
from .growth import Figure, cagr, yoy
from .reconcile import AGREES, CONTRADICTION, HUNDRED, ROUNDING, Check, compare, half_of_last_digit, printed_percent
from .star import StandardResult, evaluate_standard
from .statements_io import (UNIT_FACTORS, Amount, Statement, StatementError, check_scales, check_sense, parse_amount,
                            read_text, unit_name)

_UNIT_WORDS = {"100m-yuan": r"亿元|100 ?million|100m-yuan", "10k-yuan": r"万元|10 ?thousand|10k-yuan"}
_MONEY = re.compile(r"^(revenue|net_profit)_(\d{4})$")
_REPORTED_YOY = re.compile(r"^reported_(revenue|profit)_yoy_(\d{4})$")
ITEM_OF = {"revenue": "revenue", "profit": "net_profit"}
_PERCENT = re.compile(r"^[-+]?(?:[0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)$")
PERCENT_COLUMNS = ("reported_", "gross_margin_", "net_margin_", "rd_ratio_")
BOUNDED_PERCENT = ("gross_margin_", "rd_ratio_")  # shares of revenue: never over 100 %
FIRM_JUMP = Decimal(1_000)  # a unit (万 vs 亿) is x10,000; peers in one sector differ far less
# printed columns that the table's own figures cannot reproduce, and why
NOT_RECOMPUTABLE = {
    "gross_margin": "the table gives no gross profit or cost of sales, so printed gross margins cannot be checked",
    "rd_ratio": "the table gives no R&D expense, so the yearly R&D ratios are inputs (R&D expense is derived "
                "from them as ratio x revenue), not checks",
}


@dataclass
class Peer:
    company: str
    statement: Statement  # revenue, net profit; R&D expense derived from the printed ratios
    printed: dict[str, str]
    rd_ratios: dict[int, Amount]  # printed yearly R&D ratios, in percent
    standard: str
    checks: list[Check] = field(default_factory=list)
    listing: Optional[StandardResult] = None


def detect_unit(comments: list[str]) -> str:
    """The money unit the header names; none, or more than one, is refused."""
    found = {unit for line in comments for unit, words in _UNIT_WORDS.items() if re.search(words, line, re.I)}
    if not found:
        raise StatementError("the table does not say its unit: pass one (yuan, 10k-yuan, 100m-yuan)")
    if len(found) > 1:
        raise StatementError(f"the header names several units ({', '.join(sorted(found))}): "
                             "say which one the figures are in")
    return found.pop()


def read_peers(path: Path, unit: Optional[str] = None) -> list[Peer]:
    text = read_text(path)
    comments = [line for line in text.splitlines() if line.startswith("#")]
    unit = unit_name(unit) if unit else detect_unit(comments)
    rows = list(csv.DictReader(io.StringIO("\n".join(l for l in text.splitlines() if l and not l.startswith("#")))))
    if not rows:
        raise StatementError(f"{path}: no firms in the table (a period with no data)")
    peers = [_peer(row, unit) for row in rows]
    check_firm_scales(peers)
    for peer in peers:
        peer.checks = checks(peer)
        if peer.standard.isdigit() and 1 <= int(peer.standard) <= 5:
            peer.listing = evaluate_standard(peer.statement, int(peer.standard))
    return peers


def _percent_cell(text: str, where: str, column: str) -> str:
    """A printed percentage as written (a trailing % allowed), refused by name when it is none."""
    number = text.strip().removesuffix("%").strip()
    if not _PERCENT.match(number):
        raise StatementError(f"{where}: printed percentage {text.strip()!r} is not a number")
    if column.startswith(BOUNDED_PERCENT):
        if Decimal(number.replace(",", "")) > HUNDRED:
            raise StatementError(f"{where}: {number} % is above 100 %; a share of revenue cannot exceed it")
        if column.startswith("rd_ratio_") and Decimal(number.replace(",", "")) < 0:
            raise StatementError(f"{where}: {number} % is negative; R&D spending cannot be below zero")
    return number


def _peer(row: dict[str, str], unit: str) -> Peer:
    if None in row or not (row.get("company") or "").strip():
        raise StatementError(f"a row has no company or more cells than the header has columns: {row}")
    company = row["company"].strip()
    missing = [column for column, cell in row.items() if cell is None]
    if missing:  # csv fills a short row's last columns with None
        raise StatementError(f"{company} {missing[0]}: the cell is missing (the row has "
                             f"{len(row) - len(missing)} cells, the header {len(row)} columns)")
    figures: dict[int, dict[str, Amount]] = {}
    rd: dict[int, Amount] = {}
    for column, cell in row.items():
        match = _MONEY.match(column)
        if match and cell.strip():
            item, year = match.group(1), int(match.group(2))
            figures.setdefault(year, {})[item] = parse_amount(cell, unit, f"{company} {column}")
        elif column.startswith(PERCENT_COLUMNS) and cell.strip():
            number = _percent_cell(cell, f"{company} {column}", column)
            if column.startswith("rd_ratio_") and column[9:].isdigit():
                rd[int(column[9:])] = parse_amount(number, "yuan", f"{company} {column}")
    if not figures:
        raise StatementError(f"{company}: no revenue or net profit figures (a period with no data)")
    check_sense(company, figures, cell=lambda item, year: f"{item}_{year}")
    check_scales(company, figures)
    for year, share in rd.items():  # R&D expense = ratio x revenue, with both roundings carried
        revenue = figures.get(year, {}).get("revenue")
        if revenue is not None:
            value = share.yuan / HUNDRED * revenue.yuan
            half = abs(share.yuan) / HUNDRED * revenue.half_unit + share.half_unit / HUNDRED * revenue.yuan
            figures[year]["rd_expense"] = Amount(value, half, unit, True)
    statement = Statement(company, unit, figures)
    return Peer(company, statement, dict(row), rd, (row.get("listing_standard") or "").strip())


def check_firm_scales(peers: list[Peer]) -> None:
    """Refuse a firm whose unlabelled revenue is 1,000x the median firm's, or 1/1,000 of it: one
    firm in 万元 under a 亿元 header (the table's firms differ, but not by the factor of a unit)."""
    sizes = {}
    for peer in peers:
        cells = [(y, a) for y in peer.statement.years if (a := peer.statement.get("revenue", y)) and a.yuan]
        if cells and not all(a.labelled for _, a in cells):
            sizes[peer.company] = (median_low(abs(a.yuan) for _, a in cells), cells[-1])
    if len(sizes) < 2:
        return
    reference = median_low(size for size, _ in sizes.values())
    for company, (size, (year, amount)) in sizes.items():
        factor = size / reference
        if factor >= FIRM_JUMP or factor <= 1 / FIRM_JUMP:
            shown = f"{factor:,.0f} x" if factor >= 1 else f"1/{1 / factor:,.0f} of"
            number = amount.yuan / UNIT_FACTORS[amount.unit]
            other = "万元" if factor >= 1 else "元"  # the likelier slip: a smaller unit's digits, or a bigger one's
            raise StatementError(
                f"{company} revenue_{year} ({amount.written()}): the firm's revenue is {shown} the median firm's "
                f"({reference / UNIT_FACTORS[amount.unit]:,} {amount.unit}); the row looks like it is in another "
                f"unit than the header's {amount.unit}: give its cells their own unit (e.g. '{number} {other}')")


def _cagr_over(periods: int):
    return lambda first, last: cagr(first, last, periods)


def checks(peer: Peer) -> list[Check]:
    """Every printed percentage that the table's own figures can reproduce, checked."""
    s, out = peer.statement, []

    def shown(amount: Amount) -> Decimal:  # reasons then quote the table's own figures
        return s.shown(amount.yuan)

    for column, text in peer.printed.items():
        printed = printed_percent(text) if column.startswith(("reported_", "net_margin_", "rd_ratio_3y")) else None
        if (match := _REPORTED_YOY.match(column)):
            item, year = ITEM_OF[match.group(1)], int(match.group(2))
            pair = [(f"{item} {year - 1}", s.get(item, year - 1)), (f"{item} {year}", s.get(item, year))]
            if all(a for _, a in pair):
                out.append(compare(column, printed, yoy(shown(pair[0][1]), shown(pair[1][1])), yoy, pair))
        elif column in ("reported_revenue_cagr", "reported_profit_cagr"):
            item = ITEM_OF[column.split("_")[1]]
            years = [y for y in s.years if s.get(item, y)]
            if len(years) < 2:  # a row with one year of this item: no growth period to check against
                why = f"{item}: {'only ' + str(years[0]) if years else 'no year'} given, no growth period"
                out.append(compare(column, printed, Figure(None, why), yoy, []))
                continue
            first, last = years[0], years[-1]
            pair = [(f"{item} {first}", s.get(item, first)), (f"{item} {last}", s.get(item, last))]
            growth = cagr(shown(pair[0][1]), shown(pair[1][1]), last - first)
            out.append(compare(f"{column} {first}-{last}", printed, growth, _cagr_over(last - first), pair))
        elif column.startswith("net_margin_"):
            year = int(column[-4:])
            pair = [(f"net profit {year}", s.get("net_profit", year)), (f"revenue {year}", s.get("revenue", year))]
            if all(a for _, a in pair):
                out.append(compare(column, printed, ratio(shown(pair[0][1]), shown(pair[1][1])), ratio, pair))
        elif column == "rd_ratio_3y_avg" and peer.rd_ratios:
            ratios = [(f"R&D ratio {y}", peer.rd_ratios[y]) for y in sorted(peer.rd_ratios)]
            out.append(compare(f"{column} (mean of the yearly ratios)", printed,
                               _mean_percent(*(a.yuan for _, a in ratios)), _mean_percent, ratios))
    return out


def _mean_percent(*percents: Decimal) -> Figure:
    return Figure(sum(percents) / len(percents) / HUNDRED)


def rd_cumulative_percent(peer: Peer) -> Optional[Decimal]:
    """Cumulative R&D / cumulative revenue (the STAR definition), from the printed ratios."""
    years = sorted(peer.rd_ratios)
    revenue = [peer.statement.value("revenue", y) for y in years]
    if not years or None in revenue:
        return None
    rd = sum(peer.statement.value("rd_expense", y) for y in years)
    return rd / sum(revenue) * HUNDRED


def period_fit(peers: list[Peer], column: str = "reported_revenue_cagr") -> dict[int, tuple[int, int]]:
    """For 1, 2, 3 ... compounding periods: (firms whose printed CAGR it reproduces, within the
    tolerance or the inputs' rounding; firms with a defined CAGR)."""
    item = ITEM_OF[column.split("_")[1]]
    span = max(p.statement.years[-1] - p.statement.years[0] for p in peers)
    result = {}
    for periods in range(1, span + 2):
        hits = tried = 0
        for peer in peers:
            s = peer.statement
            pair = [("first", s.get(item, s.years[0])), ("last", s.get(item, s.years[-1]))]
            if pair[0][1] is None or pair[1][1] is None:
                continue  # a firm without this item in its first or last year says nothing here
            growth = cagr(pair[0][1].yuan, pair[1][1].yuan, periods)
            printed = printed_percent(peer.printed.get(column))
            if printed is None or growth.value is None:
                continue
            tried += 1
            hits += compare(column, printed, growth, _cagr_over(periods), pair).verdict in (AGREES, ROUNDING)
        result[periods] = (hits, tried)
    return result


@dataclass(frozen=True)
class RdMethod:
    """Which 3-year R&D ratio the analysts printed, and what the STAR definition gives instead."""

    mean_matches: int  # printed = mean of the yearly ratios (to the printed 0.01)
    cumulative_matches: int  # printed = cumulative R&D / cumulative revenue
    firms: int
    largest_gap: Optional[tuple[str, Decimal, Decimal]]  # firm, printed, cumulative; None: none printed
    flips: list[tuple[str, Decimal, Decimal]]  # the 15 % threshold of standard 2 read differently


def rd_method(peers: list[Peer]) -> RdMethod:
    mean_hits = cumulative_hits = 0
    gaps, flips = [], []
    for peer in peers:
        printed = printed_percent(peer.printed.get("rd_ratio_3y_avg"))
        cumulative = rd_cumulative_percent(peer)
        if printed is None or cumulative is None or not peer.rd_ratios:
            continue
        half = half_of_last_digit(printed)
        mean = sum(a.yuan for a in peer.rd_ratios.values()) / len(peer.rd_ratios)
        mean_hits += abs(mean - printed) <= half
        cumulative_hits += abs(cumulative - printed) <= half
        gaps.append((peer.company, printed, cumulative))
        if (printed >= 15) != (cumulative >= 15):
            flips.append((peer.company, printed, cumulative))
    largest = max(gaps, key=lambda g: abs(g[1] - g[2])) if gaps else None  # no firm prints it
    return RdMethod(mean_hits, cumulative_hits, len(gaps), largest, flips)


@dataclass(frozen=True)
class SumCheck:
    what: str
    printed: Decimal
    computed: Decimal  # in the table's unit
    low: Decimal
    high: Decimal
    verdict: str
    reason: str


def check_sum(peers: list[Peer], item: str, year: int, printed_text: str) -> SumCheck:
    """A printed total against the sum of the rows (whose own rounding adds up)."""
    amounts = [p.statement.get(item, year) for p in peers]
    missing = [p.company for p, a in zip(peers, amounts) if a is None]
    if missing:
        raise StatementError(f"{item} {year} is missing for {', '.join(missing)}: no sum")
    factor = UNIT_FACTORS[peers[0].statement.unit]
    total = sum(a.yuan for a in amounts) / factor
    spread = sum(a.half_unit for a in amounts) / factor
    printed = Decimal(printed_text.replace(",", ""))
    half = half_of_last_digit(printed)
    what = f"sum of {item} {year} over {len(peers)} firms"
    if abs(total - printed) <= half:
        return SumCheck(what, printed, total, total - spread, total + spread, AGREES,
                        f"{total} rounds to the printed {printed}")
    inside = printed - half <= total + spread and printed + half >= total - spread
    verdict = ROUNDING if inside else CONTRADICTION
    return SumCheck(what, printed, total, total - spread, total + spread, verdict,
                    f"rows add up to {total} (±{spread} from their rounding); printed {printed}")


def explain_base(peers: list[Peer], item: str, year: int, base_text: str) -> list[str]:
    """Which single firm, left out, makes the rows add up to a printed base (a hypothesis, not a fact)."""
    base = Decimal(base_text.replace(",", ""))
    half = half_of_last_digit(base)
    missing = [p.company for p in peers if p.statement.value(item, year) is None]
    if missing:
        raise StatementError(f"{item} {year} is missing for {', '.join(missing)}: no sum to relate the base to")
    factor = UNIT_FACTORS[peers[0].statement.unit]
    values = {p.company: p.statement.value(item, year) / factor for p in peers}
    total = sum(values.values())
    if abs(total - base) <= half:
        return [f"the base {base} is the sum of all {len(peers)} firms ({total})"]
    found = [f"the base {base} equals the sum without {name} ({value}): {total - value}"
             for name, value in values.items() if abs(total - value - base) <= half]
    head = f"the base {base} differs from the sum of all {len(peers)} firms' {item} {year} ({total})"
    return [head] + (found or ["no single firm left out explains it"])
