"""`cnet report`: the operator's figures (utilization, revenue, margin, customers, growth) from the
operational database on this host, or from a directory of Parquet exports (--data)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..analytics.periods import ReportError
from .lazy import lazy
from .main import fail

if TYPE_CHECKING:
    from ..analytics.report_model import Report
    from ..analytics.warehouse import Warehouse

# DuckDB, pyarrow, SQLAlchemy and matplotlib load when a report runs, not when `cnet` starts
charts = lazy("computenet.analytics.charts")
export = lazy("computenet.analytics.export")
reports = lazy("computenet.analytics.reports")
analytics_warehouse = lazy("computenet.analytics.warehouse")

report_app = typer.Typer(no_args_is_help=True, help="Operator reports: utilization, revenue, margin, customers, "
                                                    "growth (run on the server host, or on Parquet exports).")
console = Console(emoji=False)
RATIOS = ("utilization", "share", "margin", "yoy", "cagr", "efficiency", "utilisation")

FROM = typer.Option(..., "--from", help="first day, YYYY-MM-DD")
TO = typer.Option(..., "--to", help="last day (included), YYYY-MM-DD")
BY = typer.Option("month", "--by", help="day, month, quarter or year")
DATA = typer.Option(None, "--data", help="a directory of <table>.parquet files instead of the database")
JSON = typer.Option(False, "--json", help="print JSON (exact decimals as strings)")
CSV = typer.Option(None, "--csv", help="also write the rows to this CSV file")



@contextmanager
def _warehouse(data: Optional[Path], everything: bool = False) -> Iterator["Warehouse"]:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if data is not None:
            warehouse = analytics_warehouse.Warehouse.from_parquet(data)
        else:
            from ..config import load_settings
            from ..store.db import Database

            settings = load_settings()
            database = Database(settings.db_url)
            try:
                warehouse = reports.operational_warehouse(database, settings, reports_only=not everything)
            finally:
                database.dispose()
    except analytics_warehouse.WarehouseError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:  # not created yet (cnet admin init), or not reachable
        fail(f"cannot read the operational database: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    try:
        yield warehouse
    finally:
        warehouse.close()


def _cell(column: str, value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, Decimal) and any(column.endswith(r) or column.startswith(r) for r in RATIOS):
        return f"{value * 100:.1f}%"
    return str(value)


def show(report: Report, as_json: bool, csv_file: Optional[Path]) -> None:
    if csv_file is not None:
        report.write_csv(csv_file)
    if as_json:
        console.print_json(json.dumps(report.as_json()))
        return
    if report.empty:
        console.print(f"{report.name}: {report.empty}", style="yellow", highlight=False, markup=False)
        return
    table = Table(title=escape(f"{report.name}, {report.period.describe()}"), title_justify="left", box=None)
    for column in report.columns:
        table.add_column(column, justify="left" if column in ("bucket", "level", "name", "key", "dimension",
                                                              "customer", "segment", "line", "note", "basis",
                                                              "ownership", "currency", "top_findings",
                                                              "top_reason") else "right")
    for row in report.rows:
        table.add_row(*[escape(_cell(c, row.get(c))) for c in report.columns])  # customer names are user data
    console.print(table)
    for row in report.summary:
        console.print("  " + ", ".join(f"{k} {_cell(k, v)}" for k, v in row.items()), highlight=False, markup=False)
    for note in report.notes:
        console.print(f"  note: {note}", style="dim", highlight=False, markup=False)
    if csv_file is not None:
        console.print(f"rows written to {csv_file}", markup=False)


def _run(name: str, first: str, last: str, by: str, data: Optional[Path], as_json: bool,
         csv_file: Optional[Path], lang: Optional[str] = None, **options) -> None:
    from ..web import report_language

    if lang not in (None, *report_language.LANGUAGES):
        fail(f"unknown language {lang!r}: use one of {', '.join(report_language.LANGUAGES)}")
    with _warehouse(data) as warehouse:
        try:
            report = reports.run(name, warehouse, first, last, by, **options)
        except ReportError as exc:
            fail(str(exc))
        show(report_language.in_language(report, lang), as_json, csv_file)


def _simple(name: str, doc: str):
    def command(first: str = FROM, last: str = TO, by: str = BY, data: Optional[Path] = DATA,
                as_json: bool = JSON, csv_file: Optional[Path] = CSV) -> None:
        _run(name, first, last, by, data, as_json, csv_file)

    command.__doc__ = doc
    report_app.command(name)(command)


_simple("utilization", "Allocated core-hours and card-hours / capacity per cluster and partition; owned vs leased.")
_simple("margin", "Revenue, cost of capacity and gross margin per cluster, product line and in all.")
_simple("segments", "Each customer segment's share of CPU core-hours, GPU card-hours and revenue.")
_simple("users", "Active users (ran a job) and new users (signed up) per bucket.")
_simple("growth", "Revenue per bucket, in all and per product line, year on year and CAGR (whole buckets).")


@report_app.command("revenue")
def revenue(first: str = FROM, last: str = TO, by: str = BY, data: Optional[Path] = DATA, as_json: bool = JSON,
            csv_file: Optional[Path] = CSV,
            dimension: Optional[str] = typer.Option(None, help="product_line, cluster, segment, customer or "
                                                               "billing (prepaid/postpaid); default all")) -> None:
    """Revenue (from the ledger) by product line, cluster, segment, customer and prepaid/postpaid."""
    _run("revenue", first, last, by, data, as_json, csv_file, dimension=dimension)


@report_app.command("jobs")
def jobs_report(first: str = FROM, last: str = TO, by: str = BY, data: Optional[Path] = DATA, as_json: bool = JSON,
                csv_file: Optional[Path] = CSV,
                dimension: str = typer.Option("cluster", help="cluster, partition or tenant")) -> None:
    """Jobs started, queue wait (median, 90th percentile, longest), job sizes, run time and how well
    their start was predicted, per cluster, partition or tenant."""
    _run("jobs", first, last, by, data, as_json, csv_file, dimension=dimension)


LANG = typer.Option(None, "--lang", help="the notes' language: en (default) or zh-CN")


@report_app.command("efficiency")
def efficiency_report(first: str = FROM, last: str = TO, by: str = BY, data: Optional[Path] = DATA,
                      as_json: bool = JSON, csv_file: Optional[Path] = CSV, lang: Optional[str] = LANG,
                      dimension: str = typer.Option("tenant", help="tenant, app or cluster")) -> None:
    """Monitored jobs' core-hours and card-hours allocated vs used, idle cards, over-requested memory,
    and the waste in money with the findings that cost most, per tenant, app or cluster (and in all)."""
    _run("efficiency", first, last, by, data, as_json, csv_file, lang, dimension=dimension)


@report_app.command("routing")
def routing_report(first: str = FROM, last: str = TO, by: str = BY, data: Optional[Path] = DATA,
                   as_json: bool = JSON, csv_file: Optional[Path] = CSV, lang: Optional[str] = LANG,
                   dimension: str = typer.Option("cluster", help="cluster (where jobs run) or pair (where they "
                                                                 "moved from -> to)")) -> None:
    """The routing's effect: jobs moved from their first, cheapest or owned choice and why, re-routed
    after submission, the quoted money of those moves, and predicted vs actual start per cluster."""
    _run("routing", first, last, by, data, as_json, csv_file, lang, dimension=dimension)


@report_app.command("customers")
def customers(first: str = FROM, last: str = TO, by: str = BY, data: Optional[Path] = DATA, as_json: bool = JSON,
              csv_file: Optional[Path] = CSV, top: int = typer.Option(5, help="how many top customers")) -> None:
    """The top-N customers by revenue and their share (revenue concentration)."""
    _run("customers", first, last, by, data, as_json, csv_file, top=top)


@report_app.command("export")
def export_command(fmt: str = typer.Option("parquet", "--format", help="csv or parquet"),
                   out: Path = typer.Option(..., "--out", help="directory to write <table>.<format> into"),
                   data: Optional[Path] = DATA) -> None:
    """Write the report tables (clusters, jobs, usage, ledger ...) as CSV or Parquet files."""
    with _warehouse(data, everything=True) as warehouse:
        try:
            written = export.export_tables(warehouse, out, fmt)
        except ReportError as exc:
            fail(str(exc))
    console.print(f"{len(written)} tables written to {out}", markup=False)


@report_app.command("chart")
def chart(kind: str = typer.Argument(..., help="utilization, revenue, margin or efficiency (waste per tenant)"),
          out: Path = typer.Option(..., "--out", help="the PNG file to write"),
          first: str = FROM, last: str = TO, by: str = BY, data: Optional[Path] = DATA) -> None:
    """Draw utilization over time per cluster, revenue by product line (stacked) or margin per cluster."""
    with _warehouse(data) as warehouse:
        try:
            if kind not in charts.CHARTS:
                raise ReportError(f"unknown chart {kind!r}: use one of {', '.join(charts.CHARTS)}")
            report = reports.run(charts.CHARTS[kind], warehouse, first, last, by)
            path = charts.draw(kind, report, out)
        except ReportError as exc:
            fail(str(exc))
    console.print(f"chart written to {path}", markup=False)


@report_app.command("monthly")
def monthly(month: str = typer.Argument(..., help="the month, YYYY-MM"),
            lang: str = typer.Option("en", "--lang", help="en or zh-CN"),
            fmt: str = typer.Option("pdf", "--format", help="pdf or html"),
            out: Optional[Path] = typer.Option(None, "--out", help="the file to write (default: "
                                                                   "monthly-report-YYYY-MM-LANG.FORMAT here)"),
            data: Optional[Path] = DATA) -> None:
    """The month's operations report as a document: headline figures against the month before and a
    year earlier, charts, revenue and margin per cluster and product line, top customers, queue wait,
    efficiency and routing."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from ..analytics import monthly_render, monthly_report
    from ..config import load_settings
    from ..web import report_language

    if lang not in report_language.LANGUAGES:
        fail(f"unknown language {lang!r}: use one of {', '.join(report_language.LANGUAGES)}")
    if fmt not in ("pdf", "html"):
        fail(f"unknown format {fmt!r}: use pdf or html")
    voice = report_language.voice(lang)
    try:
        monthly_report.month_range(month)  # a bad month never costs reading the tables
    except ReportError as exc:
        fail(voice.say(exc.args[0]))
    settings = load_settings()
    zone = settings.display_timezone
    with _warehouse(data) as warehouse:
        try:
            report = monthly_report.build(warehouse, month)
        except ReportError as exc:
            fail(voice.say(exc.args[0]))  # in the document's language, as the portal says it
    voice = report_language.voice(lang, report.currency)
    issued = datetime.now(timezone.utc).astimezone(ZoneInfo(zone))
    operator = settings.billing.issuer.name
    path = out or Path(f"monthly-report-{report.month}-{lang}.{fmt}")
    if fmt == "pdf":
        document = monthly_render.pdf(report, voice, operator, issued, zone)
    else:
        document = monthly_render.html(report, voice, operator, issued, zone).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(document)
    console.print(f"monthly report for {report.month} written to {path}", markup=False)
