"""Growth arithmetic: yoy and CAGR as Decimal fractions, or None with the reason."""

from decimal import Decimal

import pytest

from computenet.analytics.growth import Growth, cagr, yoy


def test_yoy_and_cagr_accept_decimal_int_and_str():
    assert yoy(Decimal("2.00"), "2.60").value == Decimal("0.3")
    assert yoy(100, 80).value == Decimal("-0.2")
    growth = cagr("2.00", "3.38", 2)  # 2.00 x 1.3 x 1.3 = 3.38
    assert isinstance(growth, Growth) and growth.reason is None
    assert abs(growth.value - Decimal("0.3")) < Decimal("1e-20")
    # compounding back gives the end value
    assert abs(Decimal(5) * (1 + cagr(5, 40, 3).value) ** 3 - 40) < Decimal("1e-20")


@pytest.mark.parametrize("first,last,word", [
    ("-2.11", "0.77", "negative base"),
    ("0", "5", "zero base"),
    ("1.5", "-0.3", "sign change"),
    (None, "5", "missing year"),
    ("5", None, "missing year"),
])
def test_undefined_cagr_says_why(first, last, word):
    growth = cagr(first, last, 2)
    assert growth.value is None and word in growth.reason


def test_undefined_yoy_says_why():
    assert "negative base" in yoy("-1", "2").reason and yoy("-1", "2").value is None
    assert "zero base" in yoy(0, 2).reason
    assert "missing year" in yoy(None, 2).reason


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="float"):
        yoy(1.5, 2)
    with pytest.raises(ValueError, match="not a number"):
        cagr("abc", "2", 2)
    with pytest.raises(ValueError, match="periods"):
        cagr("1", "2", 0)


def test_growth_is_frozen_and_rounds_only_for_display():
    growth = yoy("3", "4")
    with pytest.raises(AttributeError):
        growth.value = Decimal(0)
    assert growth.percent() == 33.3 and growth.value != Decimal("0.333")
