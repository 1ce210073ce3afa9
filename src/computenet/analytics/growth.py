"""Growth arithmetic shared by the finance view and the operator reports.

Every result is a small frozen dataclass: ``value`` is a Decimal fraction
(0.452 means 45.2 %) or None, and ``reason`` says why the value is None.
A figure that is mathematically undefined is never replaced by a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Optional, Union

Number = Union[Decimal, int, str]

# Enough digits for roots of small ratios without drifting in the 10th place.
_PRECISION = 34


@dataclass(frozen=True)
class Figure:
    """A computed fraction (growth, margin, ratio) as Decimal, or None with the reason."""

    value: Optional[Decimal]
    reason: Optional[str] = None

    @property
    def defined(self) -> bool:
        return self.value is not None

    def percent(self, places: int = 1) -> Optional[float]:
        """Percentage rounded for display only."""
        if self.value is None:
            return None
        return round(float(self.value * 100), places)


Growth = Figure  # the name the growth functions are documented with


def plain(value: Optional[Decimal]) -> Optional[str]:
    """A Decimal as plain digits for JSON (never 9E+1)."""
    if value is None:
        return None
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def to_decimal(value: Optional[Number], what: str = "value") -> Optional[Decimal]:
    """Accept Decimal, int or a numeric string; refuse floats (binary money)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{what}: a boolean is not a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        if not text:
            return None
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{what}: {value!r} is not a number") from None
    else:
        raise TypeError(
            f"{what}: expected Decimal, int or str, got {type(value).__name__}"
            " (floats are refused: money is Decimal)"
        )
    if not result.is_finite():
        raise ValueError(f"{what}: {value!r} is not a finite number")
    return result


def yoy(previous: Optional[Number], current: Optional[Number]) -> Growth:
    """Year-on-year growth (current - previous) / previous."""
    prev = to_decimal(previous, "previous")
    curr = to_decimal(current, "current")
    if prev is None or curr is None:
        missing = "previous" if prev is None else "current"
        return Growth(None, f"missing year: no {missing} value")
    if prev == 0:
        return Growth(None, "zero base: growth from 0 is undefined")
    if prev < 0:
        return Growth(None, f"negative base ({prev}): growth from a loss is undefined")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return Growth((curr - prev) / prev)


def cagr(first: Optional[Number], last: Optional[Number], periods: Number) -> Growth:
    """Compound annual growth (last / first) ** (1 / periods) - 1.

    ``periods`` counts compounding steps: 2016 -> 2018 is 2 periods.
    """
    start = to_decimal(first, "first")
    end = to_decimal(last, "last")
    steps = to_decimal(periods, "periods")
    if steps is None or steps <= 0:
        raise ValueError(f"periods must be positive, got {periods!r}")
    if start is None or end is None:
        missing = "first" if start is None else "last"
        return Growth(None, f"missing year: no {missing} value")
    if start == 0:
        return Growth(None, "zero base: compound growth from 0 is undefined")
    if start < 0:
        return Growth(None, f"negative base ({start}): compound growth from a loss is undefined")
    if end < 0:
        return Growth(None, f"sign change ({start} -> {end}): compound growth is undefined")
    if end == 0:
        return Growth(Decimal(-1))
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        ratio = end / start
        root = (ratio.ln() / steps).exp()
        return Growth(root - 1)
