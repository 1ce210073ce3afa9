"""The report charts read as a board would read them (issue 21 item 2): money axes with their
currency and thousands separators, a year by day that still shows readable dates, one
negative-margin cluster that does not squash the others, and coinciding series that stay named.
The figures are inspected as drawn (matplotlib's own objects), and each is also written as a PNG."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from computenet.analytics import charts
from computenet.analytics.periods import Period
from computenet.analytics.report_model import Report


def _margin_report(margins: dict[str, str]) -> Report:
    period = Period(date(2026, 11, 1), date(2026, 11, 30), "month")
    report = Report("margin", period, [])
    for name, value in margins.items():
        report.rows.append({"bucket": "2026-11", "level": "cluster", "name": name, "ownership": "owned",
                            "margin": Decimal(value)})
    return report


def _texts(fig) -> list[str]:
    ax = fig.axes[0]
    return [t.get_text() for t in ax.texts] + [t.get_text() for t in fig.texts]


def test_money_axis_names_its_currency_and_separates_thousands(tmp_path):
    period = Period(date(2026, 1, 1), date(2026, 3, 31), "month")
    report = Report("revenue", period, [], currency="CNY")
    for month, amount in (("2026-01", "1250000.00"), ("2026-02", "2400000.00"), ("2026-03", "3100000.00")):
        report.rows.append({"bucket": month, "dimension": "product_line", "key": "hpc", "revenue": Decimal(amount)})
    fig = charts.figure("revenue", report)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert ax.get_ylabel() == "revenue (CNY)"
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert any("," in t for t in ticks) and not any("e" in t.lower() for t in ticks), ticks
    assert charts.draw("revenue", report, tmp_path / "revenue.png").read_bytes().startswith(b"\x89PNG")


def test_a_year_by_day_shows_a_readable_number_of_dates():
    period = Period(date(2026, 1, 1), date(2026, 12, 31), "day")
    report = Report("utilization", period, [])
    for bucket in period.buckets():
        report.rows.append({"bucket": bucket.label, "level": "cluster", "name": "wuxi", "ownership": "owned",
                            "core_utilization": Decimal("0.5"), "card_utilization": None})
    ax = charts.figure("utilization", report).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert 2 <= len(labels) <= charts.MAX_TICK_LABELS and labels[0] == "2026-01-01"


def test_one_deeply_negative_cluster_is_cut_with_its_value_and_the_others_stay_readable(tmp_path):
    report = _margin_report({"owned-a": "0.26", "owned-b": "0.31", "leased": "-5.12"})
    fig = charts.figure("margin", report)
    low, high = fig.axes[0].get_ylim()
    assert low < 0 and high > 31 and 31 / (high - low) > 0.4  # the others' bars are a visible share of the axis
    assert "-512 %" in _texts(fig) and any("cut" in t for t in _texts(fig))
    charts.draw("margin", report, tmp_path / "margin.png")


def test_margins_of_one_size_are_not_cut():
    fig = charts.figure("margin", _margin_report({"a": "0.26", "b": "-0.40", "c": "0.10"}))
    low, high = fig.axes[0].get_ylim()
    assert low <= -40 and high >= 26 and not any("cut" in t for t in _texts(fig))


def test_two_clusters_with_the_same_series_are_both_named():
    period = Period(date(2026, 11, 1), date(2026, 11, 5), "day")
    report = Report("utilization", period, [])
    for bucket in period.buckets():
        for name in ("east", "west"):
            report.rows.append({"bucket": bucket.label, "level": "cluster", "name": name, "ownership": "owned",
                                "core_utilization": Decimal("0.75"), "card_utilization": None})
    legend = [t.get_text() for t in charts.figure("utilization", report).axes[0].get_legend().get_texts()]
    assert legend == ["east (owned) cores = west (owned) cores"]


def test_a_whole_cluster_far_below_the_others_is_cut_in_every_bucket():
    period = Period(date(2026, 1, 1), date(2026, 6, 30), "month")
    report = Report("margin", period, [])
    for i, bucket in enumerate(period.buckets()):
        for name, value in (("hpc", "0.25"), ("ind", "-0.08"), ("ai", str(-120 - 20 * i))):
            report.rows.append({"bucket": bucket.label, "level": "cluster", "name": name, "ownership": "owned",
                                "margin": Decimal(value)})
    fig = charts.figure("margin", report)
    low, high = fig.axes[0].get_ylim()
    assert low < -8 and high > 25 and 25 / (high - low) > 0.4
    written = [t for t in _texts(fig) if t.endswith(" %")]
    assert len(written) == 6 and "-12,000 %" in written and any(t.startswith("ai: cut") for t in _texts(fig))


def test_the_portal_chart_decides_as_the_png_does():
    """The operations page's ECharts option: the currency on the money axis, digit grouping asked
    of the page's script, and the same cluster cut at the same range as in the PNG."""
    from computenet.web.pages.operations import chart_option
    from computenet.web.render import Viewer

    report = _margin_report({"owned-a": "0.26", "owned-b": "0.31", "leased": "-5.12"})
    for row, profit in zip(report.rows, ("260000", "310000", "-5120000")):
        row["gross_profit"] = Decimal(profit)
    report.currency = "CNY"
    option = chart_option(report, Viewer(language="zh-CN"))
    y_axis = option["yAxis"]
    assert y_axis["name"].endswith("(CNY)") and y_axis["axisLabel"]["formatter"] == "thousands"
    assert y_axis["min"] < 0 < 310000 < y_axis["max"] and y_axis["min"] > -5120000
    leased = next(s for s in option["series"] if s["name"] == "leased")
    assert leased["data"][0]["value"] == -5120000 and leased["data"][0]["label"]["formatter"] == "-5,120,000"
