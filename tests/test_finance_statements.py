"""Reading statements (units, refusals) and the finance view computed from them."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from computenet.analytics.finance import analyse
from computenet.analytics.statements_io import StatementError, read_csv, read_json, read_statement

FIXTURES = Path(__file__).parent / "fixtures" / "finance"
YI = Decimal(100_000_000)


def close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) < Decimal("1e-20")


def statement_json(**changes) -> str:
    data = {"company": "T", "unit": "100m-yuan", "market_cap": "45",
            "years": {"2016": {"revenue": "2.00", "net_profit": "0.20"},
                      "2017": {"revenue": "2.60", "net_profit": "0.35"},
                      "2018": {"revenue": "3.38", "net_profit": "0.50"}}}
    data.update(changes)
    return json.dumps(data, ensure_ascii=False)


def test_json_and_csv_with_mixed_units_normalise_to_the_same_figures():
    from_json = read_statement(FIXTURES / "sample-statement.json")
    from_csv = read_statement(FIXTURES / "sample-statement.csv")
    assert from_json.unit == from_csv.unit == "100m-yuan"
    for year in (2016, 2017, 2018):
        for item in ("revenue", "gross_profit", "net_profit", "rd_expense", "operating_cash_flow"):
            assert from_json.value(item, year) == from_csv.value(item, year), (item, year)
    # 3500 万元 is exactly 0.35 亿元, and the conversion is said, not silent
    assert from_json.value("net_profit", 2017) == Decimal("0.35") * YI
    assert any("3500 10k-yuan converted to 100m-yuan" in note for note in from_json.notes)
    assert from_json.market_cap.yuan == 45 * YI and from_json.facts == {"state_approval": True,
                                                                         "large_market_space": True}


def test_a_unit_per_figure_in_yuan_wan_and_yi():
    text = statement_json(unit=None, market_cap="4500000000 yuan",
                          years={"2017": {"revenue": "26000万元"}, "2018": {"revenue": "3.38 亿元"}})
    s = read_json(text)
    assert s.value("revenue", 2017) == 26000 * Decimal(10_000) and s.value("revenue", 2018) == Decimal("3.38") * YI
    assert s.market_cap.yuan == 45 * YI


@pytest.mark.parametrize("text,message", [
    (statement_json(unit=None), "has no unit"),
    (statement_json(unit="dollars"), "unknown unit"),
    # a yuan figure dropped into a 亿元 file without saying so
    (statement_json(years={"2017": {"revenue": "2.60"}, "2018": {"revenue": "338000000"}}), "mixes units"),
    # 亿 then 万 (2.86 亿, then 26,000 万 = 2.6 亿, down 9 %): x9,091, under the x10,000 of 万 vs 亿
    (statement_json(years={"2016": {"revenue": "2.86"}, "2017": {"revenue": "26000"}}), "revenue jumps x9,091"),
    (statement_json(years={"2018": {"revenue": "3.38", "net_profit": "50000000"}}), "mixes units"),
    (statement_json(years={}), "no years"),
    (statement_json(years={"2018": {}}), "year 2018 has no figures"),
    (statement_json(years={"2018": {"turnover": "1"}}), "unknown item"),
    (statement_json(years={"20x8": {"revenue": "1"}}), "not a year"),
    ("[1, 2]", "expected a JSON object"),
])
def test_bad_statements_are_refused_with_the_reason(text, message):
    with pytest.raises(StatementError, match=message):
        read_json(text)


def test_a_labelled_scale_jump_is_believed():
    # the same jump, each figure with its own unit, is a statement of fact, not a slip
    s = read_json(statement_json(unit=None, market_cap=None,
                                 years={"2017": {"revenue": "1000 yuan"}, "2018": {"revenue": "3 亿元"}}))
    assert s.value("revenue", 2018) / s.value("revenue", 2017) == 300_000


def test_csv_refusals():
    with pytest.raises(StatementError, match="'year' column"):
        read_csv("# unit: yuan\nrevenue\n5\n")
    with pytest.raises(StatementError, match="appears twice"):
        read_csv("# unit: yuan\nyear,revenue\n2018,5\n2018,6\n")
    with pytest.raises(StatementError, match="no unit"):
        read_csv("year,revenue\n2018,5\n")
    with pytest.raises(StatementError, match="no years"):
        read_csv("# unit: yuan\nyear,revenue\n")
    with pytest.raises(StatementError, match=".csv or .json"):
        read_statement(FIXTURES / "PROVENANCE.md")


def test_the_finance_view_of_the_sample():
    report = analyse(read_statement(FIXTURES / "sample-statement.json"))
    s = report.statement
    by_year = {view.year: view for view in report.years}
    # revenue grows exactly 30 % a year: 2.00 -> 2.60 -> 3.38
    assert by_year[2017].growth["revenue"].value == Decimal("0.3") == by_year[2018].growth["revenue"].value
    assert abs(report.cagr["revenue"][2].value - Decimal("0.3")) < Decimal("1e-20")
    assert report.cagr["revenue"][:2] == (2016, 2018)
    assert "missing year" in by_year[2016].growth["revenue"].reason
    for year, view in by_year.items():
        revenue = s.value("revenue", year)
        assert close(view.margins["net_margin"].value, s.value("net_profit", year) / revenue)
        assert close(view.margins["gross_margin"].value, s.value("gross_profit", year) / revenue)
    # R&D: cumulative (the STAR definition) and the mean of yearly ratios are different figures
    years = report.rd_years
    assert years == (2016, 2017, 2018)
    assert close(report.rd_cumulative.value, (sum(s.value("rd_expense", y) for y in years)
                                              / sum(s.value("revenue", y) for y in years)))
    assert report.rd_mean.value != report.rd_cumulative.value
    last = 2018
    cap = s.market_cap.yuan
    assert report.valuation["pe"].value == cap / s.value("net_profit", last) == 90
    assert close(report.valuation["ps"].value, cap / s.value("revenue", last))
    assert close(report.valuation["cap_to_profit_plus_rd"].value,
                 cap / (s.value("net_profit", last) + s.value("rd_expense", last)))
    assert json.loads(json.dumps(report.as_dict()))["valuation"]["pe"]["value"] == "90"


def test_undefined_figures_carry_their_reason():
    text = statement_json(years={"2016": {"revenue": "0", "net_profit": "-0.40"},
                                 "2017": {"revenue": "1.00", "net_profit": "-0.10"},
                                 "2018": {"revenue": "2.00", "net_profit": "-0.05"}})
    report = analyse(read_json(text))
    first = report.years[0]
    assert first.margins["net_margin"].value is None and "zero" in first.margins["net_margin"].reason
    assert report.years[1].growth["revenue"].value is None and "zero base" in report.years[1].growth["revenue"].reason
    assert "zero base" in report.cagr["revenue"][2].reason
    assert "negative base" in report.cagr["net_profit"][2].reason
    assert report.valuation["pe"].value is None and "net loss" in report.valuation["pe"].reason
    assert "R&D" not in str(report.rd_cumulative.value) and "missing rd_expense" in report.rd_cumulative.reason
    no_cap = analyse(read_json(statement_json(market_cap=None)))
    assert no_cap.valuation["ps"].value is None and "market cap not given" in no_cap.valuation["ps"].reason


def test_a_gap_year_and_a_period():
    text = statement_json(years={"2015": {"revenue": "1.00"}, "2016": {"revenue": "1.20"},
                                 "2018": {"revenue": "1.80"}})
    report = analyse(read_json(text))
    gap = {v.year: v for v in report.years}[2018].growth["revenue"]
    assert gap.value is None and "2017" in gap.reason
    assert report.cagr["revenue"][:2] == (2015, 2018)  # three periods, gap or not
    assert abs((1 + report.cagr["revenue"][2].value) ** 3 - Decimal("1.8")) < Decimal("1e-20")
    assert [v.year for v in analyse(read_json(text), 2016, 2018).years] == [2016, 2018]
    with pytest.raises(StatementError, match="no data in 2019-2021"):
        analyse(read_json(text), 2019, 2021)
    with pytest.raises(StatementError, match="first year is after"):
        analyse(read_json(text), 2018, 2016)


def test_gross_profit_from_cost_of_revenue_grows_like_any_figure():
    text = statement_json(years={"2017": {"revenue": "2.00", "cost_of_revenue": "1.50"},
                                 "2018": {"revenue": "3.00", "cost_of_revenue": "2.00"}})
    report = analyse(read_json(text))
    last = report.years[-1]
    assert last.amounts["gross_profit"] == YI and last.growth["gross_profit"].value == 1  # 0.50 -> 1.00
    assert close(last.margins["gross_margin"].value, Decimal(1) / 3)
    assert "gross profit 2018 = revenue - cost of revenue" in report.notes
