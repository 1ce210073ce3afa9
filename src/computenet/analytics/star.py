"""The five STAR-market listing standards (科创板上市标准), judged from a statement.

Each standard is met, not met, or cannot be judged, and says why: every
condition shows the figure against its threshold, or what is missing.
Standard 5 rests on facts that are not figures (state approval, market space,
phased results); without them it cannot be judged from figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

from .finance import last_years, rd_intensity
from .statements_io import FACTS, Statement

MET, NOT_MET, CANNOT_JUDGE = "met", "not met", "cannot judge"
YI = Decimal(100_000_000)  # 亿元, the unit the rules are written in
FACT_TEXT = {"state_approval": "main business or product approved by the relevant state authorities",
             "large_market_space": "large market space",
             "phased_results": "phased results achieved (a clear technical advantage)"}


@dataclass(frozen=True)
class Condition:
    rule: str  # "market cap >= 10 亿元"
    passed: Optional[bool]  # None: cannot tell from the data
    detail: str  # the figure against the threshold, or what is missing


@dataclass(frozen=True)
class StandardResult:
    number: int
    verdict: str
    reason: str
    alternatives: tuple[tuple[Condition, ...], ...]

    def as_dict(self) -> dict:
        return {"standard": self.number, "verdict": self.verdict, "reason": self.reason,
                "alternatives": [[{"rule": c.rule, "passed": c.passed, "detail": c.detail} for c in alt]
                                 for alt in self.alternatives]}


def _yi(yuan: Decimal) -> str:
    return f"{yuan / YI:,.4f}".rstrip("0").rstrip(".") + " 亿元"


def _at_least(name: str, value: Optional[Decimal], threshold: Decimal, missing: str,
              half_unit: Decimal = Decimal(0)) -> Condition:
    rule = f"{name} >= {_yi(threshold)}"
    if value is None:
        return Condition(rule, None, f"{name}: {missing}")
    passed = value >= threshold
    detail = f"{name} {_yi(value)} {'>=' if passed else '<'} {_yi(threshold)}"
    if half_unit and value - half_unit <= threshold <= value + half_unit:
        detail += " (the threshold lies within the figure's rounding)"
    return Condition(rule, passed, detail)


def _market_cap(statement: Statement, threshold_yi: int) -> Condition:
    cap = statement.market_cap
    return _at_least("market cap", None if cap is None else cap.yuan, threshold_yi * YI, "not given",
                     Decimal(0) if cap is None else cap.half_unit)


def _last(statement: Statement, item: str, threshold: Decimal, label: str) -> Condition:
    year = statement.years[-1]
    amount = statement.get(item, year)
    return _at_least(f"{label} {year}", None if amount is None else amount.yuan, threshold, "not given",
                     Decimal(0) if amount is None else amount.half_unit)


def _profit_positive(statement: Statement, year: int) -> Condition:
    profit = statement.value("net_profit", year)
    rule = f"net profit {year} > 0"
    if profit is None:
        return Condition(rule, None, f"net profit {year}: not given")
    return Condition(rule, profit > 0, f"net profit {year} {_yi(profit)} {'>' if profit > 0 else '<='} 0")


def _cumulative(statement: Statement, item: str, years: tuple[int, ...], threshold: Decimal, label: str) -> Condition:
    name = f"{label} {years[0]}-{years[-1]}"
    missing = [str(y) for y in years if statement.get(item, y) is None]
    if missing:
        return _at_least(name, None, threshold, f"missing year(s) {', '.join(missing)}")
    return _at_least(name, sum(statement.value(item, y) for y in years), threshold, "")


def _rd_share(statement: Statement, years: tuple[int, ...]) -> Condition:
    rule = f"R&D {years[0]}-{years[-1]} >= 15 % of revenue over those years"
    cumulative, _ = rd_intensity(statement, years)
    if cumulative.value is None:
        return Condition(rule, None, f"cumulative R&D ratio: {cumulative.reason}")
    share = cumulative.value * 100
    passed = share >= 15
    return Condition(rule, passed, f"cumulative R&D / revenue {share:.2f} % {'>=' if passed else '<'} 15 %")


def _fact(statement: Statement, name: str) -> Condition:
    rule = FACT_TEXT[name]
    if name not in statement.facts:
        return Condition(rule, None, f"{rule}: not supplied (a qualitative fact, not a figure)")
    return Condition(rule, statement.facts[name], f"{rule}: {'yes' if statement.facts[name] else 'no'}")


def _judge(number: int, alternatives: tuple[tuple[Condition, ...], ...]) -> StandardResult:
    outcomes = []
    for conditions in alternatives:
        if any(c.passed is False for c in conditions):
            outcomes.append(False)
        elif any(c.passed is None for c in conditions):
            outcomes.append(None)
        else:
            outcomes.append(True)
    if True in outcomes:
        passing = alternatives[outcomes.index(True)]
        return StandardResult(number, MET, "; ".join(c.detail for c in passing), alternatives)
    if all(o is False for o in outcomes):
        failed = [c.detail for alt in alternatives for c in alt if c.passed is False]
        return StandardResult(number, NOT_MET, "; ".join(failed), alternatives)
    missing = sorted({c.detail for alt in alternatives for c in alt if c.passed is None})
    passing = sorted({c.detail for alt, o in zip(alternatives, outcomes) if o is None for c in alt if c.passed})
    reason = "missing: " + "; ".join(missing) + (" (met so far: " + "; ".join(passing) + ")" if passing else "")
    if number == 5:
        reason = "cannot be judged from figures alone; " + reason
    return StandardResult(number, CANNOT_JUDGE, reason, alternatives)


def evaluate_standard(statement: Statement, number: int) -> StandardResult:
    last = statement.years[-1]
    two, three = last_years(statement, 2), last_years(statement, 3)
    if number == 1:
        alternatives = (
            (_market_cap(statement, 10), _profit_positive(statement, last - 1), _profit_positive(statement, last),
             _cumulative(statement, "net_profit", two, Decimal("0.5") * YI, "cumulative net profit")),
            (_market_cap(statement, 10), _profit_positive(statement, last),
             _last(statement, "revenue", 1 * YI, "revenue")),
        )
    elif number == 2:
        alternatives = ((_market_cap(statement, 15), _last(statement, "revenue", 2 * YI, "revenue"),
                         _rd_share(statement, three)),)
    elif number == 3:
        alternatives = ((_market_cap(statement, 20), _last(statement, "revenue", 3 * YI, "revenue"),
                         _cumulative(statement, "operating_cash_flow", three, 1 * YI, "operating cash flow")),)
    elif number == 4:
        alternatives = ((_market_cap(statement, 30), _last(statement, "revenue", 3 * YI, "revenue")),)
    elif number == 5:
        alternatives = ((_market_cap(statement, 40), *(_fact(statement, name) for name in FACTS)),)
    else:
        raise ValueError(f"STAR standards are numbered 1 to 5, not {number}")
    return _judge(number, alternatives)


def evaluate(statement: Statement) -> list[StandardResult]:
    return [evaluate_standard(statement, number) for number in range(1, 6)]
