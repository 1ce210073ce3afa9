"""The seed report's 17-firm table: its printed columns recomputed, and every difference explained."""

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from computenet.analytics.peers import (check_sum, checks, detect_unit, explain_base, period_fit,
                                        rd_cumulative_percent, rd_method, read_peers)
from computenet.analytics.reconcile import AGREES, CONTRADICTION, ROUNDING, UNDEFINED
from computenet.analytics.star import CANNOT_JUDGE
from computenet.analytics.statements_io import StatementError

FIXTURES = Path(__file__).parent / "fixtures" / "finance"
TABLE = FIXTURES / "star-market-2019-computer-firms.csv"


@pytest.fixture(scope="module")
def peers():
    return read_peers(TABLE)


def _checks(peers, prefix):
    return {p.company: c for p in peers for c in p.checks if c.what.startswith(prefix)}


def test_all_17_firms_in_100m_yuan(peers):
    assert len(peers) == 17 and peers[0].statement.unit == "100m-yuan"
    assert {p.company for p in peers} >= {"山石网科", "安恒信息", "优刻得", "视联动力"}


@pytest.mark.parametrize("column", ["reported_revenue_cagr", "reported_profit_cagr"])
def test_cagr_within_half_a_point_or_the_gap_is_explained(peers, column):
    checks = _checks(peers, column)
    assert len(checks) == 17
    for company, check in checks.items():
        if check.verdict == AGREES:
            assert abs(check.computed - check.printed) <= Decimal("0.5"), company
        elif check.verdict == UNDEFINED:
            assert check.printed is None and "negative base" in check.reason, company
        else:  # never a silent mismatch: rounding with the input to blame, or a contradiction
            assert check.verdict == ROUNDING, (company, check.reason)
            assert abs(check.computed - check.printed) > Decimal("0.5")
            assert check.low <= check.printed + Decimal("0.05") and check.printed - Decimal("0.05") <= check.high
            assert "known only to" in check.reason


def test_tiny_profit_bases_are_rounding_not_errors(peers):
    checks = _checks(peers, "reported_profit_cagr")
    for company in ("山石网科", "安恒信息"):  # net profit 2016 printed as 0.01
        check = checks[company]
        assert check.verdict == ROUNDING and abs(check.computed - check.printed) > 50
        assert "0.01 100m-yuan is known only to ±50.0 %" in check.reason
    ucloud = checks["优刻得"]  # -2.11 in 2016
    assert ucloud.verdict == UNDEFINED and ucloud.computed is None and "negative base (-2.11)" in ucloud.reason


def test_the_printed_cagr_is_over_two_periods(peers):
    for column in ("reported_revenue_cagr", "reported_profit_cagr"):
        fit = period_fit(peers, column)
        hits, tried = fit[2]
        assert hits == tried >= 16
        assert fit[1][0] == 0 and fit[3][0] == 0


def test_yoy_and_net_margins_all_reproduced_or_rounding(peers):
    for prefix in ("reported_revenue_yoy_2018", "reported_profit_yoy_2018", "net_margin_"):
        found = [c for p in peers for c in p.checks if c.what.startswith(prefix)]
        assert len(found) == (51 if prefix == "net_margin_" else 17)
        assert all(c.verdict in (AGREES, ROUNDING) for c in found), [c.reason for c in found]
        assert all(c.verdict == AGREES or "known only to" in c.reason for c in found)


def test_a_printed_figure_its_inputs_cannot_give_is_a_contradiction(peers):
    peer = next(p for p in peers if p.company == "宝兰德")  # 0.51 / 1.22: 41.6 % printed
    altered = replace(peer, printed={**peer.printed, "net_margin_2018": "45.0"})
    wrong = next(c for c in checks(altered) if c.what == "net_margin_2018")
    assert wrong.verdict == CONTRADICTION and "contradict" in wrong.reason
    assert wrong.high < Decimal("45.0")


def test_the_analysts_r_and_d_average_is_the_mean_of_yearly_ratios(peers):
    method = rd_method(peers)
    assert method.mean_matches == method.firms == 17 and method.cumulative_matches == 0
    company, printed, cumulative = method.largest_gap
    assert company == "视联动力" and printed - cumulative > 2
    # standard 2 counts cumulative R&D / cumulative revenue: over 15 % by one reading, under by the other
    assert [f[0] for f in method.flips] == ["优刻得"]
    ucloud = next(p for p in peers if p.company == "优刻得")
    assert rd_cumulative_percent(ucloud) < 15 <= Decimal(ucloud.printed["rd_ratio_3y_avg"])


def test_the_report_totals_and_the_profit_base(peers):
    revenue = check_sum(peers, "revenue", 2018, "78")
    profit = check_sum(peers, "net_profit", 2018, "16.9")
    assert revenue.verdict == profit.verdict == AGREES
    assert revenue.computed == sum(p.statement.value("revenue", 2018) for p in peers) / 100_000_000
    assert abs(profit.computed - Decimal("16.9")) <= Decimal("0.05")
    notes = explain_base(peers, "net_profit", 2018, "12.1")
    assert "differs from the sum of all 17 firms" in notes[0]
    assert len(notes) == 2 and "without 视联动力" in notes[1]


def test_listing_standards_from_the_table(peers):
    by_name = {p.company: p for p in peers}
    # no market caps in the table: never "met", but the other conditions are checked and shown
    arcsoft = by_name["虹软科技"].listing
    assert arcsoft.number == 4 and arcsoft.verdict == CANNOT_JUDGE
    assert "market cap: not given" in arcsoft.reason and "revenue 2018 4.58 亿元 >= 3 亿元" in arcsoft.reason
    quantum = by_name["国盾量子"].listing
    assert quantum.number == 2 and ">= 15 %" in quantum.reason
    assert by_name["优刻得"].listing is None  # 红筹2: a red-chip standard, not one of the five


def test_unit_detection_refuses_guessing(tmp_path):
    assert detect_unit(["# Units: revenue in 100 million CNY (亿元)"]) == "100m-yuan"
    with pytest.raises(StatementError, match="does not say its unit"):
        detect_unit(["# revenue and profit"])
    with pytest.raises(StatementError, match="several units"):
        detect_unit(["# revenue in 亿元, profit in 万元"])
    bare = tmp_path / "bare.csv"
    bare.write_text("company,revenue_2017,revenue_2018\nA,1.0,2.0\n")
    with pytest.raises(StatementError, match="unit"):
        read_peers(bare)
    assert read_peers(bare, unit="万元")[0].statement.value("revenue", 2018) == 20_000
    empty = tmp_path / "empty.csv"
    empty.write_text("# Units: 亿元\ncompany,revenue_2018\n")
    with pytest.raises(StatementError, match="no firms"):
        read_peers(empty)
