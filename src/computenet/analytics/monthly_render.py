"""The monthly report (monthly_report.py) as a document: one Jinja template (templates/monthly_report.html)
for the portal's page and, standalone, for the PDF that WeasyPrint lays out. Numbers, money, percentages
and dates are written in the reader's locale (Babel), money as Decimal; the charts are charts.py's, as SVG.

The words are English msgids translated by the caller's ``Voice`` (the portal's catalogues, web/i18n.py):
analytics does not import the portal.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Callable

from babel.dates import format_date, format_skeleton
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import Environment, PackageLoader, select_autoescape

from ..messages import N_
from . import charts
from .monthly_report import MonthlyReport
from .report_model import Report


@dataclass
class Voice:
    """A reader's language: ``gettext`` for the document's words, ``say`` for the reports' msg() notes."""

    language: str = "en"  # en or zh-CN
    gettext: Callable[[str], str] = field(default=lambda text: text)
    say: Callable[[object], str] = field(default=str)


@dataclass
class Table:
    title: str
    columns: list[tuple[str, bool]]  # heading, numeric (right-aligned)
    rows: list[list[str]]
    empty: str | None = None  # why there are no rows, in words
    notes: list[str] = field(default_factory=list)


_ENV = Environment(loader=PackageLoader("computenet.analytics", "templates"), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)
HEADLINE_NAMES = {"revenue": N_("Revenue"), "gross_profit": N_("Gross profit"), "margin": N_("Gross margin"),
                  "core_hours": N_("Core-hours delivered"), "card_hours": N_("Card-hours delivered"),
                  "owned_core_utilization": N_("Utilization of owned cores"),
                  "owned_card_utilization": N_("Utilization of owned cards"), "jobs": N_("Jobs started"),
                  "customers": N_("Active customers (with revenue)")}
CHARTS = (("utilization", "utilization_daily", N_("Utilization per cluster, by day")),
          ("revenue", "revenue_daily", N_("Revenue by product line, by day")),
          ("margin", "margin", N_("Gross margin per cluster")))


class Formats:
    """Numbers in one locale; an undefined figure is a dash, never zero."""

    def __init__(self, voice: Voice, currency: str | None) -> None:
        self.voice, self.locale = voice, voice.language.replace("-", "_")
        self.currency = (currency or "CNY").split("/")[0]

    def money(self, value) -> str:
        return "—" if value is None else format_currency(Decimal(value), self.currency, locale=self.locale)

    def number(self, value, places: int = 0) -> str:
        if value is None:
            return "—"
        return format_decimal(Decimal(value), format=f"#,##0{'.' + '0' * places if places else ''}", locale=self.locale)

    def percent(self, value) -> str:
        return "—" if value is None else format_percent(Decimal(value), format="#,##0.0%", locale=self.locale)

    def figure(self, kind: str, value) -> str:
        return self.money(value) if kind == "money" else self.percent(value) if kind == "ratio" else self.number(value)

    def change(self, kind: str, value: Decimal | None) -> str:
        if value is None:
            return "—"
        sign = "+" if value > 0 else ""
        if kind == "ratio":  # a share's change is in percentage points, not a percent of a percent
            return f"{sign}{self.number(value * 100, 1)} {self.voice.gettext('pp')}"
        return sign + self.percent(value)

    def day(self, value) -> str:
        return format_date(value, "long", locale=self.locale)

    def month(self, value) -> str:
        return format_skeleton("yMMMM", value, locale=self.locale)  # March 2022, 2022年3月


UNITS = {"core_hours": N_("core-hours"), "card_hours": N_("card-hours")}
WORDS = (N_("pp"),  # percentage points, after a change in a share
         N_("all"), N_("(all)"),  # the margin report's and the efficiency and routing reports' totals
         N_("university"), N_("enterprise"), N_("research_institute"), N_("government"), N_("individual"),  # segments
         # product lines (partitions' product_line codes) the seed and the price book examples use; another
         # operator's own codes print as they are
         N_("hpc"), N_("ai"), N_("industry"), N_("gpu"), N_("cloud"), N_("storage"))


def html(report: MonthlyReport, voice: Voice, operator: str, issued: datetime, zone: str,
         standalone: bool = True) -> str:
    """The document; standalone: a whole HTML page with its style (the PDF's), else the portal's fragment."""
    _ = voice.gettext
    fmt = Formats(voice, report.currency)
    headline = [{"name": _(HEADLINE_NAMES[h.key]),
                 "value": fmt.figure(h.kind, h.value) + (f" {_(UNITS[h.key])}" if h.key in UNITS else ""),
                 "previous": fmt.change(h.kind, h.change(h.previous)),
                 "last_year": fmt.change(h.kind, h.change(h.last_year))} for h in report.headline]
    compared = {"previous": any(h.previous is not None for h in report.headline),
                "last_year": any(h.last_year is not None for h in report.headline)}
    return _ENV.get_template("monthly_report.html").render(
        _=_, report=report, fmt=fmt, operator=operator, issued=issued, zone=zone, standalone=standalone,
        lang=voice.language, headline=headline, compared=compared, charts=_charts(report, voice),
        tables=tables(report, voice, fmt), css=stylesheet() if standalone else "")


def stylesheet() -> str:
    return resources.files("computenet.analytics").joinpath("templates/monthly_report.css").read_text()


def pdf(report: MonthlyReport, voice: Voice, operator: str, issued: datetime, zone: str) -> bytes:
    from ..printing import html_to_pdf

    return html_to_pdf(html(report, voice, operator, issued, zone))


def _charts(report: MonthlyReport, voice: Voice) -> list[dict]:
    out = []
    for chart, name, title in CHARTS:
        drawn = report.reports[name]
        if drawn.empty:
            out.append({"title": voice.gettext(title), "empty": voice.say(drawn.empty)})
            continue
        data = base64.b64encode(charts.png(chart, drawn, voice.say)).decode()
        out.append({"title": voice.gettext(title), "src": f"data:image/png;base64,{data}", "empty": None})
    return out


def _table(report: Report, voice: Voice, title: str, columns: list[tuple[str, bool]], rows: list[list[str]]) -> Table:
    return Table(voice.gettext(title), [(voice.gettext(h), n) for h, n in columns], rows,
                 voice.say(report.empty) if report.empty else None, [voice.say(n) for n in report.notes])


def tables(report: MonthlyReport, voice: Voice, fmt: Formats) -> list[Table]:
    _, r = voice.gettext, report.reports
    shares = {(row["dimension"], row["key"]): row["share"] for row in r["revenue"].rows}
    money_columns = [(N_("Revenue"), True), (N_("Share of revenue"), True), (N_("Cost of capacity"), True),
                     (N_("Gross profit"), True), (N_("Gross margin"), True)]

    def margin_rows(level: str, dimension: str) -> list[list[str]]:
        return [[_(row["name"]) if level in ("total", "product_line") else row["name"], fmt.money(row["revenue"]),
                 fmt.percent(shares.get((dimension, row["name"]))), fmt.money(row["cost"]),
                 fmt.money(row["gross_profit"]), fmt.percent(row["margin"])]
                for row in r["margin"].rows if row["level"] == level]

    out = [
        _table(r["margin"], voice, N_("Revenue and gross margin per cluster"), [(N_("Cluster"), False), *money_columns],
               margin_rows("cluster", "cluster")),
        _table(r["margin"], voice, N_("Revenue and gross margin per product line"),
               [(N_("Product line"), False), *money_columns], margin_rows("product_line", "product_line")),
        _table(r["customers"], voice, N_("Top 10 customers"),
               [(N_("Rank"), True), (N_("Customer"), False), (N_("Segment"), False), (N_("Revenue"), True),
                (N_("Share of revenue"), True), (N_("Cumulative share"), True)],
               [[str(c["rank"]), c["customer"], _(c["segment"]), fmt.money(c["revenue"]), fmt.percent(c["share"]),
                 fmt.percent(c["cumulative_share"])] for c in r["customers"].rows]),
        _table(r["jobs"], voice, N_("Queue wait and job size per cluster"),
               [(N_("Cluster"), False), (N_("Jobs"), True), (N_("Wait, median (h)"), True),
                (N_("Wait, 90th percentile (h)"), True), (N_("Longest wait (h)"), True), (N_("1 core"), True),
                (N_("2-8 cores"), True), (N_("9-64 cores"), True), (N_("65-512 cores"), True),
                (N_("Over 512 cores"), True), (N_("GPU jobs"), True), (N_("Mean run time (h)"), True)],
               [[j["key"], fmt.number(j["jobs"]), fmt.number(j["wait_p50_h"], 2), fmt.number(j["wait_p90_h"], 2),
                 fmt.number(j["wait_max_h"], 1), *(fmt.number(j[k]) for k in ("size_1", "size_2_8", "size_9_64",
                                                                              "size_65_512", "size_over_512")),
                 fmt.number(j["gpu_jobs"]), fmt.number(j["run_mean_h"], 2)] for j in r["jobs"].rows]),
        _table(r["efficiency"], voice, N_("Efficiency and waste per tenant"),
               [(N_("Tenant"), False), (N_("Jobs"), True), (N_("Core-hours"), True), (N_("CPU efficiency"), True),
                (N_("Card-hours"), True), (N_("GPU utilisation"), True), (N_("Charged"), True), (N_("Wasted"), True),
                (N_("Waste share"), True)],
               [[_(e["key"]) if e["key"] == "(all)" else e["key"], fmt.number(e["jobs"]),
                 fmt.number(e["core_hours"]), fmt.percent(e["cpu_efficiency"]), fmt.number(e["card_hours"]),
                 fmt.percent(e["gpu_utilisation"]), fmt.money(e["charged"]), fmt.money(e["wasted"]),
                 fmt.percent(e["waste_share"])] for e in r["efficiency"].rows]),
        _table(r["routing"], voice, N_("Routing: where jobs ran and why they moved"),
               [(N_("Cluster"), False), (N_("Jobs"), True), (N_("Not first choice (failover)"), True),
                (N_("Not cheapest"), True), (N_("Not owned"), True), (N_("Re-routed"), True),
                (N_("Quoted above cheapest"), True), (N_("Start error, median (h)"), True),
                (N_("Predicted within an hour"), True)],
               [[_(x["key"]) if x["key"] == "(all)" else x["key"], fmt.number(x["jobs"]), fmt.number(x["not_first"]),
                 fmt.number(x["not_cheapest"]), fmt.number(x["not_owned"]), fmt.number(x["rerouted"]),
                 fmt.money(x["extra_quoted"]), fmt.number(x["start_error_p50_h"], 2),
                 fmt.percent(x["predicted_within_1h"])] for x in r["routing"].rows]),
    ]
    return out
