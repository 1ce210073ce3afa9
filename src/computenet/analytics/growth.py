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


def _undefined(base: Optional[Decimal], value: Optional[Decimal], names: tuple[str, str], what: str) -> Optional[str]:
    """Why growth from base to value is undefined (a missing figure, a zero or negative base), or None."""
    if base is None or value is None:
        return f"missing year: no {names[0] if base is None else names[1]} value"
    if base == 0:
        return f"zero base: {what} from 0 is undefined"
    if base < 0:
        return f"negative base ({base}): {what} from a loss is undefined"
    return None


def yoy(previous: Optional[Number], current: Optional[Number]) -> Growth:
    """Year-on-year growth (current - previous) / previous."""
    prev = to_decimal(previous, "previous")
    curr = to_decimal(current, "current")
    problem = _undefined(prev, curr, ("previous", "current"), "growth")
    if problem:
        return Growth(None, problem)
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
    problem = _undefined(start, end, ("first", "last"), "compound growth")
    if problem:
        return Growth(None, problem)
    if end < 0:
        return Growth(None, f"sign change ({start} -> {end}): compound growth is undefined")
    if end == 0:
        return Growth(Decimal(-1))
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        ratio = end / start
        root = (ratio.ln() / steps).exp()
        return Growth(root - 1)
