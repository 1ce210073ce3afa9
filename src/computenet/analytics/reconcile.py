"""Recomputed percentages against printed ones, honest about the inputs' rounding.

A printed input such as 0.01 (100 million yuan) stands for anything in
[0.005, 0.015); a growth rate from such a base can be almost anything. So a
recomputed figure is compared three ways: within the tolerance of the printed
one (agrees); outside it, but the printed figure is among those the rounded
inputs allow (rounding, and which input's rounding); or outside everything the
inputs allow (contradiction).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import product
from typing import Callable, Optional, Sequence

from .growth import Figure, plain
from .statements_io import Amount, StatementError

TOLERANCE_PP = Decimal("0.5")  # percentage points
HUNDRED = Decimal(100)

AGREES, ROUNDING, CONTRADICTION, UNDEFINED, NOT_PRINTED = (
    "agrees", "rounding", "contradiction", "undefined", "not printed")


@dataclass(frozen=True)
class Check:
    what: str
    printed: Optional[Decimal]  # percent, as printed
    computed: Optional[Decimal]  # percent, unrounded
    low: Optional[Decimal]  # percent: the range the rounded inputs allow (None: unbounded)
    high: Optional[Decimal]
    verdict: str
    reason: str

    @property
    def gap_pp(self) -> Optional[Decimal]:
        if self.printed is None or self.computed is None:
            return None
        return self.computed - self.printed

    def as_dict(self) -> dict:
        return {"what": self.what, "printed": plain(self.printed), "computed": plain(self.computed),
                "low": plain(self.low), "high": plain(self.high),
                "verdict": self.verdict, "reason": self.reason}


def printed_percent(text: Optional[str]) -> Optional[Decimal]:
    text = (text or "").strip().rstrip("%")
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise StatementError(f"printed percentage {text!r} is not a number") from None


def half_of_last_digit(value: Decimal) -> Decimal:
    return Decimal(1).scaleb(value.as_tuple().exponent) / 2


def bounds(formula: Callable[..., Figure], inputs: Sequence[Amount]) -> tuple[Optional[Decimal], Optional[Decimal]]:
    """Smallest and largest value of ``formula`` over the inputs' rounding intervals.

    The formulas used here (growth, CAGR, a ratio with a positive denominator)
    are monotone in each input, so the extremes lie at the corners. A corner
    where the figure is undefined (a base that may be zero) leaves it unbounded.
    """
    values = []
    for corner in product(*[(a.low, a.high) for a in inputs]):
        figure = formula(*corner)
        if figure.value is None:
            return None, None
        values.append(figure.value * HUNDRED)
    return min(values), max(values)


def _coarsest(inputs: Sequence[tuple[str, Amount]]) -> str:
    """The input whose rounding weighs most: the one to blame for a gap."""
    def relative(pair: tuple[str, Amount]) -> Decimal:
        amount = pair[1]
        return amount.half_unit / abs(amount.yuan) if amount.yuan else Decimal("Infinity")
    name, amount = max(inputs, key=relative)
    if not amount.yuan:
        return f"{name} {amount.written()} may be zero within its rounding"
    share = relative((name, amount)) * HUNDRED
    return f"{name} {amount.written()} is known only to ±{share:.1f} % as printed"


def compare(what: str, printed: Optional[Decimal], figure: Figure, formula: Callable[..., Figure],
            inputs: Sequence[tuple[str, Amount]], tolerance: Decimal = TOLERANCE_PP) -> Check:
    """Check one printed percentage against its recomputation from the printed inputs."""
    computed = None if figure.value is None else figure.value * HUNDRED
    if computed is None:
        if printed is None:
            return Check(what, None, None, None, None, UNDEFINED, f"{figure.reason}; none printed either")
        return Check(what, printed, None, None, None, CONTRADICTION,
                     f"printed {printed} %, but the figure is undefined: {figure.reason}")
    low, high = bounds(formula, [amount for _, amount in inputs])
    if printed is None:
        return Check(what, None, computed, low, high, NOT_PRINTED, f"computed {computed:.1f} %; none printed")
    gap = computed - printed
    if abs(gap) <= tolerance:
        return Check(what, printed, computed, low, high, AGREES,
                     f"computed {computed:.2f} % vs printed {printed} % ({gap:+.2f} pp, within {tolerance} pp)")
    half = half_of_last_digit(printed)
    allowed = "anything" if low is None else f"{low:.1f} % to {high:.1f} %"
    if low is None or (printed - half <= high and printed + half >= low):
        return Check(what, printed, computed, low, high, ROUNDING,
                     f"computed {computed:.1f} % vs printed {printed} % ({gap:+.1f} pp), but the rounded inputs allow "
                     f"{allowed}, which includes the printed figure: rounding, not an error ({_coarsest(inputs)})")
    return Check(what, printed, computed, low, high, CONTRADICTION,
                 f"printed {printed} % is outside {allowed}, everything the printed inputs allow "
                 f"(computed {computed:.1f} %): the printed figures contradict each other")
