"""The sector valuation scenario (图表14): our unrounded arithmetic against the printed table and text."""

from decimal import Decimal
from pathlib import Path

import pytest

from computenet.analytics.peers import read_peers
from computenet.analytics.printed_claims import check_peer_totals, check_scenario, implied_base, read_claims
from computenet.analytics.reconcile import AGREES, CONTRADICTION, ROUNDING
from computenet.analytics.valuation import ScenarioError, scenario

FIXTURES = Path(__file__).parent / "fixtures" / "finance"
CLAIMS = FIXTURES / "star-2019-printed-claims.json"


@pytest.fixture(scope="module")
def claims():
    return read_claims(CLAIMS)


def test_unrounded_arithmetic(claims):
    table = scenario(claims.sector_pe, claims.premiums, claims.profit_base, claims.sector_cap, claims.unit)
    pe, base, cap = Decimal(claims.sector_pe), Decimal(claims.profit_base), Decimal(claims.sector_cap)
    assert [r.premium for r in table.rows] == [Decimal(p) for p in claims.premiums]
    for row in table.rows:
        assert row.pe == row.premium * pe
        assert table.shown(row.market_cap) == row.premium * pe * base
        assert row.share == row.premium * pe * base / cap
        low, high = (table.shown(v) for v in row.cap_range)
        assert low < table.shown(row.market_cap) < high


def test_the_printed_table_is_the_same_arithmetic_rounded(claims):
    _, table_checks, _ = check_scenario(claims)
    assert len(table_checks) == 12  # four rows x P/E, market cap, share
    by_kind = {}
    for check in table_checks:
        by_kind.setdefault(check.what.split("x ", 1)[1], []).append(check)
    # P/E and share round exactly to the printed figures
    assert all(c.verdict == AGREES for c in by_kind["P/E"] + by_kind["share %"])
    # printed caps sit 1-2 below ours, inside what 61.1 and 12.1 (rounded) allow
    for check in by_kind["market cap"]:
        assert check.verdict in (AGREES, ROUNDING) and check.low <= check.printed <= check.high
        assert Decimal(0) < check.computed - check.printed < 2


def test_the_text_contradicts_the_table(claims):
    _, _, text_checks = check_scenario(claims)
    cap = next(c for c in text_checks if c.what.endswith("market cap"))
    share = next(c for c in text_checks if c.what.endswith("share %"))
    assert cap.verdict == CONTRADICTION and cap.printed == 1107
    assert "1.5x row's market cap" in cap.reason and "contradict each other" in cap.reason
    assert share.verdict == AGREES  # the text's 4.1 % is the 1.3x row's share


def test_the_base_is_not_the_sum_of_the_17_firms(claims):
    sums, notes = check_peer_totals(claims, read_peers(FIXTURES / "star-market-2019-computer-firms.csv"))
    assert [s.verdict for s in sums] == [AGREES, AGREES]  # the stated 78 and 16.9 do add up
    assert "12.1 differs from the sum of all 17 firms" in notes[0] and "16.85" in notes[0]
    assert "without 视联动力 (4.75)" in notes[1]
    table, _, _ = check_scenario(claims)
    low, high = implied_base(table, claims)
    # the printed caps imply a base a little under 12.1, still inside its rounding
    assert Decimal("12.05") <= low <= high < Decimal(claims.profit_base)


@pytest.mark.parametrize("args,message", [
    (("0", ["1.2"], "12.1"), "sector P/E must be a positive number"),
    (("61.1", [], "12.1"), "at least one premium"),
    (("61.1", ["1.2"], "-3"), "profit base must be positive"),
    (("61.1", ["1.2"], "0"), "profit base must be positive"),
    (("61.1", ["-1"], "12.1"), "premium must be a positive"),
    (("61.1", ["1.2"], "12.1 dollars"), "unknown unit"),
    (("x", ["1.2"], "12.1"), "not an amount"),
])
def test_bad_scenario_input(args, message):
    with pytest.raises(ScenarioError, match=message):
        scenario(*args)
    with pytest.raises(ScenarioError, match="sector market cap must be positive"):
        scenario("61.1", ["1.2"], "12.1", "0")


def test_units_of_base_and_cap_are_explicit():
    in_yi = scenario("61.1", ["1.2"], "12.1", "23280")
    mixed = scenario("61.1", ["1.2"], "1210000000 yuan", "23280 亿元", unit="100m-yuan")
    assert in_yi.rows[0].market_cap == mixed.rows[0].market_cap and in_yi.rows[0].share == mixed.rows[0].share
