"""A company's financial statements from CSV or JSON, every amount normalised to yuan.

Every figure must have a unit: its own ("2.86 亿元"), its row's (a ``unit``
column), or the file's (``# unit: 100m-yuan`` / ``"unit": ...``). Mixed units are
converted exactly (Decimal) and each conversion is noted. A file whose figures
jump by a factor of 10,000 or more while relying on one declared unit looks
like it mixes units without saying so (revenue: 1,000-fold from one year to the next), and is
refused rather than guessed at.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Optional

UNIT_FACTORS = {"yuan": Decimal(1), "10k-yuan": Decimal(10_000), "100m-yuan": Decimal(100_000_000)}
UNIT_ALIASES = {
    "yuan": "yuan", "元": "yuan", "cny": "yuan", "rmb": "yuan",
    "10k-yuan": "10k-yuan", "万元": "10k-yuan", "万": "10k-yuan", "10k": "10k-yuan",
    "100m-yuan": "100m-yuan", "亿元": "100m-yuan", "亿": "100m-yuan", "100m": "100m-yuan",
}
ITEMS = ("revenue", "cost_of_revenue", "gross_profit", "net_profit", "rd_expense", "operating_cash_flow")
ITEM_ALIASES = {"营业收入": "revenue", "营业成本": "cost_of_revenue", "毛利": "gross_profit", "净利润": "net_profit",
                "研发费用": "rd_expense", "研发投入": "rd_expense", "经营活动现金流量净额": "operating_cash_flow"}
FACTS = ("state_approval", "large_market_space", "phased_results")  # STAR standard 5, not figures
SCALE_JUMP = Decimal(10_000)  # 万 vs 元, 亿 vs 万: no real series moves this much silently
# revenue never grows or shrinks 1,000-fold in a year, while a 亿/万 mix with growth does look like
# x1,000..x100,000 (2.86 亿 then 46,300 万); profits can cross zero, so they keep SCALE_JUMP
REVENUE_JUMP = Decimal(1_000)
_AMOUNT = re.compile(r"^\s*([-+]?[0-9][0-9,]*(?:\.[0-9]+)?|[-+]?\.[0-9]+)\s*(.*?)\s*$")
_EXPONENT = re.compile(r"^\s*[-+]?(?:[0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+")
# items that cannot be below zero, and those that cannot exceed revenue (a ratio over 100 %)
NON_NEGATIVE = ("revenue", "cost_of_revenue", "rd_expense")
WITHIN_REVENUE = ("gross_profit", "rd_expense")


class StatementError(ValueError):
    """The statement cannot be read without guessing; the message says what is wrong."""


def unit_name(text: str) -> str:
    unit = UNIT_ALIASES.get(text.strip().lower()) if isinstance(text, str) else None
    if unit is None:
        raise StatementError(f"unknown unit {text!r} (use one of: yuan, 10k-yuan (万元), 100m-yuan (亿元))")
    return unit


@dataclass(frozen=True)
class Amount:
    """A figure in yuan, with the rounding it carries as written (half its last digit)."""

    yuan: Decimal
    half_unit: Decimal
    unit: str  # the unit it was written in
    labelled: bool = True  # its own or its row's unit, not only the file's default

    @property
    def low(self) -> Decimal:
        return self.yuan - self.half_unit

    @property
    def high(self) -> Decimal:
        return self.yuan + self.half_unit

    def written(self) -> str:
        return f"{self.yuan / UNIT_FACTORS[self.unit]} {self.unit}"


def parse_amount(text: object, default_unit: Optional[str], where: str, labelled: bool = False) -> Amount:
    """'2.86', '2.86 亿元', '286,000,000 yuan' -> Amount; no unit anywhere is an error."""
    if isinstance(text, float):
        raise StatementError(f"{where}: {text!r} is a float; write amounts as strings or exact numbers")
    if isinstance(text, Decimal) and not text.is_finite():
        raise StatementError(f"{where}: {text} is not a finite number")
    if isinstance(text, (bool, list, dict)) or text is None:
        raise StatementError(f"{where}: {text!r} is not an amount")
    if _EXPONENT.match(str(text)):
        raise StatementError(f"{where}: {str(text)!r} is not an amount (exponent notation is not accepted: "
                             "write the digits, e.g. 2.86 or 28600)")
    match = _AMOUNT.match(str(text))
    if match is None:
        raise StatementError(f"{where}: {text!r} is not an amount")
    number, unit_text = match.groups()
    if unit_text and unit_text[0] in "0123456789.,+-" and unit_text.strip().lower() not in UNIT_ALIASES:
        raise StatementError(f"{where}: {text!r} is not an amount")  # 1.2.3, 1,2-3: not a number and a unit
    if unit_text:
        unit, labelled = unit_name(unit_text), True
    elif default_unit:
        unit = default_unit
    else:
        raise StatementError(f"{where}: {text!r} has no unit (give one: yuan, 10k-yuan or 100m-yuan)")
    try:
        value = Decimal(number.replace(",", ""))
    except InvalidOperation:
        raise StatementError(f"{where}: {text!r} is not an amount") from None
    factor = UNIT_FACTORS[unit]
    half = Decimal(1).scaleb(value.as_tuple().exponent) / 2
    return Amount(value * factor, half * factor, unit, labelled)


def exact_amount(value: Decimal, unit: str = "yuan") -> Amount:
    """A figure known exactly (from the platform's own ledger): no rounding interval."""
    return Amount(Decimal(value) * UNIT_FACTORS[unit], Decimal(0), unit, True)


@dataclass
class Statement:
    company: str
    unit: str  # the unit figures are shown in
    figures: dict[int, dict[str, Amount]]
    market_cap: Optional[Amount] = None
    facts: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def years(self) -> list[int]:
        return sorted(self.figures)

    def get(self, item: str, year: int) -> Optional[Amount]:
        return self.figures.get(year, {}).get(item)

    def value(self, item: str, year: int) -> Optional[Decimal]:
        amount = self.get(item, year)
        return None if amount is None else amount.yuan

    def shown(self, yuan: Optional[Decimal]) -> Optional[Decimal]:
        """An amount in yuan expressed in the statement's display unit."""
        return None if yuan is None else yuan / UNIT_FACTORS[self.unit]


def _item_name(column: str) -> str:
    name = column.strip()
    name = ITEM_ALIASES.get(name, name.lower())
    if name not in ITEMS:
        raise StatementError(f"unknown item {column!r} (known: {', '.join(ITEMS)})")
    return name


def _year(text: object, where: str) -> int:
    try:
        year = int(str(text).strip())
    except ValueError:
        raise StatementError(f"{where}: {text!r} is not a year") from None
    if not 1900 <= year <= 2200:
        raise StatementError(f"{where}: {year} is not a plausible year")
    return year


def _fact(text: object, name: str) -> bool:
    if isinstance(text, bool):
        return text
    word = str(text).strip().lower()
    if word in ("yes", "true", "1", "是"):
        return True
    if word in ("no", "false", "0", "否"):
        return False
    raise StatementError(f"fact {name}: {text!r} is not yes/no")


def _finish(company: str, file_unit: Optional[str], figures: dict[int, dict[str, Amount]],
            market_cap: Optional[Amount], facts: dict[str, bool]) -> Statement:
    if not figures:
        raise StatementError(f"{company}: the statement has no years (a period with no data)")
    for year, items in figures.items():
        if not items:
            raise StatementError(f"{company}: year {year} has no figures (a period with no data)")
    check_sense(company, figures)
    check_scales(company, figures)
    used = Counter(a.unit for items in figures.values() for a in items.values())
    unit = file_unit or used.most_common(1)[0][0]
    notes = [f"{item} {year}: {amount.written()} converted to {unit}"
             for year, items in sorted(figures.items()) for item, amount in items.items() if amount.unit != unit]
    if market_cap is not None and market_cap.unit != unit:
        notes.append(f"market cap: {market_cap.written()} converted to {unit}")
    return Statement(company, unit, figures, market_cap, facts, notes)


def check_sense(company: str, figures: dict[int, dict[str, Amount]],
                cell=lambda item, year: f"{item} {year}") -> None:
    """Refuse figures no company can report: negative revenue, cost or R&D; gross profit or R&D
    above revenue. ``cell`` names the cell as the file does (``revenue 2018``, ``revenue_2018``)."""
    for year in sorted(figures):
        items = figures[year]
        for item in NON_NEGATIVE:
            amount = items.get(item)
            if amount is not None and amount.yuan < 0:
                raise StatementError(f"{company} {cell(item, year)}: {amount.written()} is negative; "
                                     f"{item.replace('_', ' ')} cannot be below zero")
        revenue = items.get("revenue")
        for item in WITHIN_REVENUE:
            amount = items.get(item)
            if amount is None or revenue is None or amount.yuan <= revenue.yuan:
                continue
            if item == "rd_expense" and revenue.yuan == 0:
                continue  # no revenue yet: the ratio is undefined and said so, not a slip
            raise StatementError(f"{company} {cell(item, year)}: {amount.written()} is above revenue "
                                 f"({revenue.written()}), a ratio over 100 %; check the cell and its unit")


def check_scales(company: str, figures: dict[int, dict[str, Amount]]) -> None:
    """Refuse figures 10,000x apart that rely on the file's one unit: an unlabelled unit mix."""
    for item in ITEMS:
        series = [(y, figures[y][item]) for y in sorted(figures) if item in figures[y] and figures[y][item].yuan]
        for (y1, a), (y2, b) in zip(series, series[1:]):
            big, small = max(abs(a.yuan), abs(b.yuan)), min(abs(a.yuan), abs(b.yuan))
            if big / small >= (REVENUE_JUMP if item == "revenue" else SCALE_JUMP) and not (a.labelled and b.labelled):
                raise StatementError(
                    f"{company}: {item} jumps x{big / small:,.0f} from {y1} ({a.written()}) to {y2} ({b.written()}); "
                    "the file looks like it mixes units without saying so: give these figures their own unit")
    for year, items in figures.items():
        revenue = items.get("revenue")
        for item, amount in items.items():
            if revenue is None or revenue.yuan <= 0 or item == "revenue":
                continue
            if abs(amount.yuan) / revenue.yuan >= SCALE_JUMP / 10 and not (amount.labelled and revenue.labelled):
                raise StatementError(
                    f"{company}: {item} {year} ({amount.written()}) is over 1,000 x revenue ({revenue.written()}); "
                    "the file looks like it mixes units without saying so: give these figures their own unit")


def read_json(text: str, name: str = "statement") -> Statement:
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=Decimal)  # NaN is refused by name
    except json.JSONDecodeError as exc:
        raise StatementError(f"{name}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise StatementError(f"{name}: expected a JSON object with company, unit, years")
    company = str(data.get("company") or name)
    if data.get("unit") is not None and not isinstance(data["unit"], str):
        raise StatementError(f"{name}: unit must be text such as \"100m-yuan\", not {data['unit']!r}")
    file_unit = unit_name(data["unit"]) if data.get("unit") else None

    def amount(raw: object, where: str) -> Amount:
        if isinstance(raw, dict):
            unit = raw.get("unit")
            return parse_amount(raw.get("value"), unit_name(unit) if unit else file_unit, where, labelled=bool(unit))
        return parse_amount(raw, file_unit, where)

    years = data.get("years")
    if not isinstance(years, dict):
        raise StatementError(f"{company}: 'years' must map each year to its figures")
    figures: dict[int, dict[str, Amount]] = {}
    for year_text, items in years.items():
        year = _year(year_text, company)
        if not isinstance(items, dict):
            raise StatementError(f"{company} {year}: expected item: amount pairs")
        figures[year] = {_item_name(k): amount(v, f"{company} {k} {year}") for k, v in items.items() if v is not None}
    cap = data.get("market_cap")
    market_cap = amount(cap, f"{company} market cap") if cap is not None else None
    facts = {}
    if not isinstance(data.get("facts") or {}, dict):
        raise StatementError(f"{company}: 'facts' must map each fact to yes or no")
    for key, raw in (data.get("facts") or {}).items():
        if key not in FACTS:
            raise StatementError(f"{company}: unknown fact {key!r} (known: {', '.join(FACTS)})")
        facts[key] = _fact(raw, key)
    return _finish(company, file_unit, figures, market_cap, facts)


def read_csv(text: str, name: str = "statement") -> Statement:
    """One row per year: ``year,revenue,net_profit,...[,unit]``; ``# key: value`` lines
    give company, unit, market_cap and the standard-5 facts."""
    meta: dict[str, str] = {}
    body = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            key, sep, value = line.lstrip()[1:].partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip()
        elif line.strip():
            body.append(line)
    company = meta.get("company") or name
    file_unit = unit_name(meta["unit"]) if meta.get("unit") else None
    rows = list(csv.DictReader(io.StringIO("\n".join(body))))
    if rows and "year" not in rows[0]:
        raise StatementError(f"{company}: the CSV needs a 'year' column")
    figures: dict[int, dict[str, Amount]] = {}
    for row in rows:
        if None in row:  # csv puts cells beyond the header under None
            raise StatementError(f"{company}: a row has more cells than the header has columns: {row[None]}")
        year = _year(row.get("year"), company)
        if year in figures:
            raise StatementError(f"{company}: year {year} appears twice")
        row_unit = unit_name(row["unit"]) if (row.get("unit") or "").strip() else None
        figures[year] = {
            _item_name(column): parse_amount(cell, row_unit or file_unit, f"{company} {column} {year}",
                                             labelled=row_unit is not None)
            for column, cell in row.items() if column not in ("year", "unit") and (cell or "").strip()}
    market_cap = (parse_amount(meta["market_cap"], file_unit, f"{company} market cap")
                  if meta.get("market_cap") else None)
    facts = {key: _fact(meta[key], key) for key in FACTS if meta.get(key)}
    return _finish(company, file_unit, figures, market_cap, facts)


def read_text(path: Path) -> str:
    """A UTF-8 file's text, or a StatementError saying why it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise StatementError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StatementError(f"{path}: cannot be read ({exc})") from None


def read_statement(path: Path) -> Statement:
    path = Path(path)
    text = read_text(path)
    if path.suffix.lower() == ".json":
        return read_json(text, path.stem)
    if path.suffix.lower() == ".csv":
        return read_csv(text, path.stem)
    raise StatementError(f"{path}: expected a .csv or .json statement")
