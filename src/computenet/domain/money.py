"""Money is Decimal, never float. Amounts are kept to the cent (fen) once
charged; rates and quantities keep more places until then."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CURRENCY = "CNY"
CENT = Decimal("0.01")
HOURS_PLACES = Decimal("0.000001")


class MoneyError(ValueError):
    pass


def to_decimal(value: object) -> Decimal:
    """Strings, ints and Decimals only: a float has already lost the cents."""
    if isinstance(value, float):
        raise MoneyError("money must not be a float; pass a string or Decimal")
    try:
        result = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise MoneyError(f"not an amount: {value!r}") from None
    if not result.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    return result


def round_money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def hours(seconds: int, units: int) -> Decimal:
    """seconds x units (cores, GPUs) in unit-hours, kept to 6 places."""
    return (Decimal(seconds) * Decimal(units) / Decimal(3600)).quantize(HOURS_PLACES, rounding=ROUND_HALF_UP)
