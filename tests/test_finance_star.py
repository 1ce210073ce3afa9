"""The five STAR listing standards: met, not met or cannot judge, each with the figure against its threshold."""

import json

import pytest

from computenet.analytics.star import CANNOT_JUDGE, MET, NOT_MET, evaluate, evaluate_standard
from computenet.analytics.statements_io import read_json


def company(cap="45", facts=None, **years):
    """Three years in 亿元; each keyword overrides one year's figures."""
    base = {"2016": {"revenue": "2.00", "net_profit": "0.20", "rd_expense": "0.40", "operating_cash_flow": "0.30"},
            "2017": {"revenue": "2.60", "net_profit": "0.35", "rd_expense": "0.50", "operating_cash_flow": "0.40"},
            "2018": {"revenue": "3.38", "net_profit": "0.50", "rd_expense": "0.62", "operating_cash_flow": "0.50"}}
    for year, items in years.items():
        base[year.lstrip("y")] = {**base.get(year.lstrip("y"), {}), **items}
    data = {"company": "T", "unit": "100m-yuan", "years": base, "market_cap": cap, "facts": facts or {}}
    return read_json(json.dumps(data))


def test_all_five_judged_with_reasons():
    results = evaluate(company())
    assert [r.number for r in results] == [1, 2, 3, 4, 5]
    verdicts = {r.number: r.verdict for r in results}
    assert verdicts == {1: MET, 2: MET, 3: MET, 4: MET, 5: CANNOT_JUDGE}
    assert "cumulative R&D / revenue 19.05 % >= 15 %" in results[1].reason
    assert "operating cash flow 2016-2018 1.2 亿元 >= 1 亿元" in results[2].reason
    five = results[4].reason
    assert "cannot be judged from figures" in five and "approved by the relevant state authorities" in five
    assert "large market space" in five and "phased results" in five


def test_thresholds_that_fail_say_by_how_much():
    small = company(cap="25")  # 25 亿元: under standard 4's 30 and standard 5's 40
    four = evaluate_standard(small, 4)
    assert four.verdict == NOT_MET and "market cap 25 亿元 < 30 亿元" in four.reason
    assert evaluate_standard(small, 3).verdict == MET
    low_revenue = company(y2018={"revenue": "2.90"})
    three = evaluate_standard(low_revenue, 3)
    assert three.verdict == NOT_MET and "revenue 2018 2.9 亿元 < 3 亿元" in three.reason
    low_rd = company(y2016={"rd_expense": "0.10"}, y2017={"rd_expense": "0.10"}, y2018={"rd_expense": "0.10"})
    two = evaluate_standard(low_rd, 2)
    assert two.verdict == NOT_MET and "< 15 %" in two.reason


def test_standard_one_has_two_routes():
    # a loss in 2017 rules out the first route; the second (last year's profit and revenue >= 1 亿) still holds
    route_two = evaluate_standard(company(y2017={"net_profit": "-0.10"}), 1)
    assert route_two.verdict == MET and "revenue 2018 3.38 亿元 >= 1 亿元" in route_two.reason
    neither = evaluate_standard(company(y2018={"net_profit": "-0.05"}), 1)
    assert neither.verdict == NOT_MET and "net profit 2018 -0.05 亿元 <= 0" in neither.reason


def test_missing_figures_make_it_cannot_judge_and_say_what_is_missing():
    no_cap = evaluate_standard(company(cap=None), 4)
    assert no_cap.verdict == CANNOT_JUDGE and "market cap: not given" in no_cap.reason
    assert "revenue 2018 3.38 亿元 >= 3 亿元" in no_cap.reason  # what is met is said too
    data = json.loads(json.dumps({"company": "T", "unit": "100m-yuan", "market_cap": "45",
                                  "years": {"2017": {"revenue": "2.6"}, "2018": {"revenue": "3.38"}}}))
    short = read_json(json.dumps(data))
    cash = evaluate_standard(short, 3)
    assert cash.verdict == CANNOT_JUDGE and "missing year(s) 2016" in cash.reason
    # a failing condition decides even when another is unknown
    assert evaluate_standard(company(cap=None, y2018={"revenue": "2.00"}), 4).verdict == NOT_MET


def test_standard_five_with_its_facts():
    facts = {"state_approval": True, "large_market_space": True, "phased_results": True}
    assert evaluate_standard(company(facts=facts), 5).verdict == MET
    refused = evaluate_standard(company(facts={**facts, "state_approval": False}), 5)
    assert refused.verdict == NOT_MET and "approved by the relevant state authorities: no" in refused.reason
    assert evaluate_standard(company(cap="39", facts=facts), 5).verdict == NOT_MET


def test_only_five_standards():
    with pytest.raises(ValueError, match="1 to 5"):
        evaluate_standard(company(), 6)
