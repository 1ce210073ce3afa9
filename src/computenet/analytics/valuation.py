"""The sector valuation scenario: premium multiples of a sector P/E on a profit base.

P/E = premium x sector P/E; market cap = P/E x profit base; share = market cap /
the sector's market cap. The arithmetic is shown unrounded. Because the sector
P/E, the base and the sector cap are printed rounded, every figure also gets
the range those roundings allow, so a printed table can be checked honestly:
a printed figure inside the range is rounding, outside it a contradiction.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import product
from typing import Optional, Sequence

from .growth import plain
from .reconcile import AGREES, CONTRADICTION, ROUNDING, Check, half_of_last_digit
from .statements_io import UNIT_FACTORS, Amount, StatementError, parse_amount


class ScenarioError(ValueError):
    pass


def _number(text: object, what: str) -> Amount:
    """A unitless figure (a P/E, a premium) with the rounding it was written with."""
    if isinstance(text, float):
        raise ScenarioError(f"{what}: pass {text!r} as a string (no floats)")
    try:
        amount = parse_amount(str(text), "yuan", what)
    except StatementError as exc:
        raise ScenarioError(str(exc)) from None
    if amount.unit != "yuan" or amount.yuan <= 0:
        raise ScenarioError(f"{what} must be a positive number, got {text!r}")
    return amount


@dataclass(frozen=True)
class ScenarioRow:
    premium: Decimal
    pe: Decimal
    market_cap: Decimal  # yuan
    share: Optional[Decimal]  # fraction of the sector's market cap
    pe_range: tuple[Decimal, Decimal]
    cap_range: tuple[Decimal, Decimal]
    share_range: Optional[tuple[Decimal, Decimal]]


@dataclass(frozen=True)
class Scenario:
    sector_pe: Amount
    base: Amount  # yuan
    sector_cap: Optional[Amount]
    unit: str
    rows: tuple[ScenarioRow, ...]

    def shown(self, yuan: Decimal) -> Decimal:
        return yuan / UNIT_FACTORS[self.unit]

    def row(self, premium: object) -> ScenarioRow:
        wanted = Decimal(str(premium))
        for row in self.rows:
            if row.premium == wanted:
                return row
        raise ScenarioError(f"no {wanted}x row (premiums: {', '.join(str(r.premium) for r in self.rows)})")

    def as_dict(self) -> dict:
        def span(pair):
            return None if pair is None else [plain(pair[0]), plain(pair[1])]
        return {"sector_pe": plain(self.sector_pe.yuan), "base": plain(self.shown(self.base.yuan)),
                "sector_cap": None if self.sector_cap is None else plain(self.shown(self.sector_cap.yuan)),
                "unit": self.unit,
                "rows": [{"premium": plain(r.premium), "pe": plain(r.pe), "market_cap": plain(self.shown(r.market_cap)),
                          "share": plain(r.share), "pe_range": span(r.pe_range),
                          "market_cap_range": span(tuple(self.shown(v) for v in r.cap_range)),
                          "share_range": span(r.share_range)} for r in self.rows]}


def _span(values: Sequence[Decimal]) -> tuple[Decimal, Decimal]:
    return min(values), max(values)


def scenario(sector_pe: object, premiums: Sequence[object], base: object, sector_cap: object = None,
             unit: str = "100m-yuan") -> Scenario:
    """The table; amounts are strings like '12.1' (in ``unit``) or '12.1 亿元'."""
    pe = _number(sector_pe, "sector P/E")
    if not premiums:
        raise ScenarioError("give at least one premium multiple")
    multiples = [_number(p, "premium").yuan for p in premiums]
    try:
        profit = parse_amount(str(base), unit, "profit base")
        cap = None if sector_cap in (None, "") else parse_amount(str(sector_cap), unit, "sector market cap")
    except StatementError as exc:
        raise ScenarioError(str(exc)) from None
    if profit.yuan <= 0:
        raise ScenarioError(f"the profit base must be positive (got {profit.written()}): "
                            "a multiple of a loss is not a valuation")
    if cap is not None and cap.yuan <= 0:
        raise ScenarioError(f"the sector market cap must be positive (got {cap.written()})")
    rows = []
    for premium in multiples:
        pes = [premium * p for p in (pe.low, pe.high)]
        caps = [premium * p * b for p, b in product((pe.low, pe.high), (profit.low, profit.high))]
        value = premium * pe.yuan * profit.yuan
        share = share_range = None
        if cap is not None:
            share = value / cap.yuan
            share_range = _span([c / s for c, s in product(caps, (cap.low, cap.high))])
        rows.append(ScenarioRow(premium, premium * pe.yuan, value, share, _span(pes), _span(caps), share_range))
    return Scenario(pe, profit, cap, unit, tuple(rows))


def _check(what: str, printed: Decimal, computed: Decimal, allowed: tuple[Decimal, Decimal], inputs: str) -> Check:
    half = half_of_last_digit(printed)
    low, high = allowed
    if abs(computed - printed) <= half:
        return Check(what, printed, computed, low, high, AGREES, f"computed {computed:.4f} rounds to printed {printed}")
    if printed - half <= high and printed + half >= low:
        return Check(what, printed, computed, low, high, ROUNDING,
                     f"computed {computed:.2f} vs printed {printed}: the rounding of {inputs} allows "
                     f"{low:.2f} to {high:.2f}, so the printed figure is consistent (rounded inputs)")
    return Check(what, printed, computed, low, high, CONTRADICTION,
                 f"printed {printed} is outside {low:.2f} to {high:.2f}, all that {inputs} allow "
                 f"(computed {computed:.2f})")


def _ranges(table: Scenario, kind: str, row: ScenarioRow) -> Optional[tuple[Decimal, Decimal]]:
    if kind == "P/E":
        return row.pe_range
    if kind == "market cap":
        return table.shown(row.cap_range[0]), table.shown(row.cap_range[1])
    if row.share_range is None:
        return None
    return row.share_range[0] * 100, row.share_range[1] * 100


def check_row(table: Scenario, premium: object, pe: object = None, market_cap: object = None,
              share_percent: object = None, source: str = "table") -> list[Check]:
    """A printed row (or a claim in the text) against the premium's computed row."""
    row = table.row(premium)
    if share_percent is not None and row.share is None:
        raise ScenarioError("checking a share needs the sector market cap")
    inputs = f"P/E {table.sector_pe.yuan} and base {table.shown(table.base.yuan)}"
    wanted = (("P/E", pe, row.pe, f"P/E {table.sector_pe.yuan}"),
              ("market cap", market_cap, table.shown(row.market_cap), inputs),
              ("share %", share_percent, None if row.share is None else row.share * 100, inputs + " and sector cap"))
    checks = []
    for kind, printed, computed, rounding in wanted:
        if printed is None:
            continue
        printed = Decimal(str(printed).replace(",", ""))
        check = _check(f"{source} {row.premium}x {kind}", printed, computed, _ranges(table, kind, row), rounding)
        checks.append(_explain_elsewhere(table, check, kind))
    return checks


def _explain_elsewhere(table: Scenario, check: Check, kind: str) -> Check:
    """For a contradiction, say which row the printed figure does belong to, if any."""
    if check.verdict != CONTRADICTION:
        return check
    half = half_of_last_digit(check.printed)
    matches = [f"{row.premium}x" for row in table.rows
               if (span := _ranges(table, kind, row)) and check.printed - half <= span[1]
               and check.printed + half >= span[0]]
    where = (f"; it is the {' or '.join(matches)} row's {kind}: the printed figures contradict each other"
             if matches else f"; it matches no row's {kind}")
    return Check(check.what, check.printed, check.computed, check.low, check.high, check.verdict, check.reason + where)
