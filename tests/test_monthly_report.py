"""The operator's monthly report (issue 21): a month of two seeded years, as a PDF in zh-CN and en whose
headline figures are the ones reports.run computes, with its fonts embedded, every word inside the page and
its charts drawn; the same on Parquet exports through `cnet report monthly`; the portal's page for the
reports role only; a month with no data and a month that is not one answered in words."""

from __future__ import annotations

import io
import re
import subprocess
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from computenet.analytics import monthly_render, monthly_report, reports, seed_db, seed_parquet
from computenet.analytics.periods import ReportError
from computenet.analytics.seed_data import SeedSpec, generate
from computenet.analytics.warehouse import Warehouse
from computenet.cli.main import app
from computenet.store.db import Database
from computenet.web import report_language

from test_web_admin import browser, org  # noqa: F401 (the fixture)

MONTH, FIRST, LAST = "2022-03", "2022-03-01", "2022-03-31"
SCREENSHOTS = Path("/tmp/computenet-screenshots")
ISSUED = datetime(2022, 4, 3, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def years():
    return {year: generate(SeedSpec(year=year, jobs=900, tenants=60, seed=year)) for year in (2021, 2022)}


@pytest.fixture(scope="module")
def warehouse(years, tmp_path_factory):
    """The operational database of an operator that ran 2021 and 2022 (a year-earlier month to compare)."""
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('monthly') / 'two-years.db'}")
    database.migrate()
    for data in years.values():
        seed_db.write(database, data)
    built = reports.operational_warehouse(database)
    database.dispose()
    yield built
    built.close()


def _words(language: str, currency: str | None):
    voice = report_language.voice(language, currency)
    return voice, monthly_render.Formats(voice, currency)


def _expected(warehouse, fmt) -> dict[str, str]:
    """The month's headline figures as `cnet report` computes them, written as the document writes them."""
    revenue = reports.run("revenue", warehouse, FIRST, LAST, dimension="total")
    margin = next(r for r in reports.run("margin", warehouse, FIRST, LAST).rows if r["level"] == "total")
    jobs = reports.run("jobs", warehouse, FIRST, LAST, dimension="cluster")
    customers = reports.run("customers", warehouse, FIRST, LAST, top=10)
    usage = [r for r in reports.run("utilization", warehouse, FIRST, LAST).rows if r["level"] == "cluster"]
    earlier = reports.run("revenue", warehouse, "2021-03-01", "2021-03-31", dimension="total").rows[0]["revenue"]
    now = revenue.rows[0]["revenue"]
    return {"revenue": fmt.money(now), "gross_profit": fmt.money(margin["gross_profit"]),
            "margin": fmt.percent(margin["margin"]), "jobs": fmt.number(sum(r["jobs"] for r in jobs.rows)),
            "customers": fmt.number(customers.summary[0]["customers"]),
            "core_hours": fmt.number(sum(r["core_hours"] for r in usage)),
            "revenue_yoy": fmt.change("money", ((now - earlier) / earlier).quantize(Decimal("0.000001")))}


def _fonts_without_a_file(reader: PdfReader) -> list[str]:
    lacking = []
    for page in reader.pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            described = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            descriptor = described.get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor is not None else {}
            if not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                lacking.append(str(font.get("/BaseFont")))
    return lacking


def _words_outside_the_page(pdf: Path) -> list[str]:
    """pdftotext -bbox: every word's box against its page's size."""
    xhtml = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    outside = []
    for width, height, body in re.findall(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', xhtml, re.S):
        for x0, y0, x1, y1, word in re.findall(
                r'<word xMin="([-\d.]+)" yMin="([-\d.]+)" xMax="([-\d.]+)" yMax="([-\d.]+)">([^<]*)</word>', body):
            if float(x0) < 0 or float(y0) < 0 or float(x1) > float(width) or float(y1) > float(height):
                outside.append(word)
    assert "<word" in xhtml  # the words were found at all
    return outside


@pytest.mark.parametrize("language, title, year_earlier", [("zh-CN", "月度运营报告", "同比"),
                                                          ("en", "Monthly operations report", "a year earlier")])
def test_the_pdf_shows_the_reports_figures_with_embedded_fonts_inside_the_page(warehouse, tmp_path, language,
                                                                                title, year_earlier):
    report = monthly_report.build(warehouse, MONTH)
    voice, fmt = _words(language, report.currency)
    pdf = tmp_path / f"monthly-{language}.pdf"
    pdf.write_bytes(monthly_render.pdf(report, voice, "华算云 ComputeNet", ISSUED, "Asia/Shanghai"))
    reader = PdfReader(pdf)
    text = "\n".join(page.extract_text() for page in reader.pages)
    flat = re.sub(r"\s+", "", text)
    assert title in text and year_earlier in text and "华算云" in text
    for name, written in _expected(warehouse, fmt).items():
        assert re.sub(r"\s+", "", written) in flat, (name, written)
    assert _fonts_without_a_file(reader) == []
    assert _words_outside_the_page(pdf) == []
    drawn = {image.name: image for page in reader.pages for image in page.images}  # pages may share resources
    assert len(drawn) == len(monthly_render.CHARTS) and all(i.image.width >= 1000 for i in drawn.values())
    if language == "zh-CN":
        assert "¥" in text and "核时" in text and "各集群每日利用率" in text and "环比" in text
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(["pdftoppm", "-r", "80", "-png", "-f", "1", "-l", "2", str(pdf),
                        str(SCREENSHOTS / "monthly-zh")], check=True)


def test_headline_changes_compare_with_the_month_before_and_a_year_earlier(warehouse):
    report = monthly_report.build(warehouse, MONTH)
    revenue = report.figure("revenue")
    before = reports.run("revenue", warehouse, "2022-02-01", "2022-02-28", dimension="total").rows[0]["revenue"]
    assert revenue.previous == before and revenue.last_year is not None
    assert revenue.change(revenue.previous) == ((revenue.value - before) / before).quantize(Decimal("0.000001"))
    margin = report.figure("margin")  # a share's change is the difference, in points
    assert margin.change(margin.previous) == margin.value - margin.previous
    january = monthly_report.build(warehouse, "2021-01")  # the first month: nothing before it
    assert january.figure("revenue").previous is None and january.figure("revenue").last_year is None
    html = monthly_render.html(january, report_language.voice("en"), "ComputeNet", ISSUED, "UTC")
    assert "There is no data for 2020-01: no change on a year earlier is shown." in html


@pytest.mark.parametrize("month", ["2022-13", "2022-3", "March", "", "2022-00", "0000-01"])
def test_a_month_that_is_not_one_is_refused_in_words(month):
    with pytest.raises(ReportError, match="is not a month: use YYYY-MM"):
        monthly_report.month_range(month)


def test_a_month_with_no_data_says_so(warehouse):
    with pytest.raises(monthly_report.NoData, match="no data for 2024-05: no revenue in the ledger"):
        monthly_report.build(warehouse, "2024-05")


def test_the_efficiency_section_shows_its_table_and_says_an_empty_one_in_words(warehouse, years, tmp_path):
    report = monthly_report.build(warehouse, MONTH)
    assert report.reports["efficiency"].rows  # the seeded year has monitoring profiles
    voice, _ = _words("zh-CN", report.currency)
    html = monthly_render.html(report, voice, "ComputeNet", ISSUED, "Asia/Shanghai")
    assert "<table" in html.split("各租户资源效率与浪费金额", 1)[1].split("</section>")[0]
    # an export made before job profiles were kept: the section says so in words, no empty table
    seed_parquet.write(years[2022], tmp_path / "exports")
    (tmp_path / "exports" / "job_profiles.parquet").unlink()
    with Warehouse.from_parquet(tmp_path / "exports") as bare:
        report = monthly_report.build(bare, MONTH)
    assert report.reports["efficiency"].empty and not report.reports["efficiency"].rows
    html = monthly_render.html(report, voice, "ComputeNet", ISSUED, "Asia/Shanghai")
    section = html.split("各租户资源效率与浪费金额", 1)[1].split("</section>")[0]
    assert "此数据没有作业画像" in section and "<table" not in section


def test_the_cli_writes_the_report_from_parquet_exports(years, tmp_path):
    seed_parquet.write(years[2022], tmp_path / "exports")
    runner = CliRunner()
    out = tmp_path / "march.html"
    done = runner.invoke(app, ["report", "monthly", MONTH, "--lang", "zh-CN", "--format", "html", "--out", str(out),
                               "--data", str(tmp_path / "exports")])
    assert done.exit_code == 0, done.output
    exports = Warehouse.from_parquet(tmp_path / "exports")
    try:
        voice, fmt = _words("zh-CN", monthly_report.build(exports, MONTH).currency)
        revenue = reports.run("revenue", exports, FIRST, LAST, dimension="total").rows[0]["revenue"]
    finally:
        exports.close()
    page = out.read_text()
    assert "月度运营报告" in page and fmt.money(revenue) in page and page.count("data:image/png;base64,") == 3
    bad = runner.invoke(app, ["report", "monthly", "2022-3", "--data", str(tmp_path / "exports")])
    assert bad.exit_code == 1 and "'2022-3' is not a month: use YYYY-MM" in bad.output
    empty = runner.invoke(app, ["report", "monthly", "2023-01", "--data", str(tmp_path / "exports"),
                                "--out", str(tmp_path / "none.pdf")])
    assert empty.exit_code == 1 and "no data for 2023-01" in empty.output and "Traceback" not in empty.output
    assert not (tmp_path / "none.pdf").exists()
    in_chinese = runner.invoke(app, ["report", "monthly", "2023-01", "--lang", "zh-CN",
                                     "--data", str(tmp_path / "exports")])
    assert in_chinese.exit_code == 1 and "2023-01" in in_chinese.output and "无数据" in in_chinese.output
    unknown = runner.invoke(app, ["report", "monthly", MONTH, "--lang", "fr", "--data", str(tmp_path / "exports")])
    assert unknown.exit_code == 1 and "unknown language 'fr'" in unknown.output


def test_the_portal_page_and_its_pdf_are_for_the_reports_role_only(org, years):
    seed_db.write(org.db, years[2022])
    op = browser(org, "op")
    shown = op.get(f"/portal/finance/monthly?month={MONTH}")
    assert shown.status_code == 200, shown.text[-1500:]
    assert "Monthly operations report" in shown.text and f"/portal/finance/monthly.pdf?month={MONTH}" in shown.text
    assert shown.text.count("data:image/png;base64,") == 3 and "<style" not in shown.text  # the CSP: no inline style
    pdf = op.get(f"/portal/finance/monthly.pdf?month={MONTH}&lang=zh-CN")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "月度运营报告" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert op.get("/portal/finance/monthly.css").headers["content-type"].startswith("text/css")
    assert browser(org, "fin").get(f"/portal/finance/monthly?month={MONTH}").status_code == 200
    for name in ("plain", "pi"):
        who = browser(org, name)
        assert who.get(f"/portal/finance/monthly?month={MONTH}").status_code == 403
        assert who.get(f"/portal/finance/monthly.pdf?month={MONTH}").status_code == 403
    bad = op.get("/portal/finance/monthly?month=2022-3")
    assert bad.status_code == 400 and "is not a month: use YYYY-MM" in bad.text
    empty = op.get("/portal/finance/monthly.pdf?month=2031-05")
    assert empty.status_code == 404 and "no data for 2031-05" in empty.text


def test_the_portal_page_in_a_browser(org, years, chromium):
    """The page as a browser shows it, in en and zh-CN: its stylesheet loads under the CSP, axe finds nothing
    serious, and a screenshot of each (monthly-page-en.png, monthly-page-zh-CN.png)."""
    from test_web_admin import _pages_in_both_languages

    seed_db.write(org.db, years[2022])
    _pages_in_both_languages(org, chromium, "op", [(f"/portal/finance/monthly?month={MONTH}", "monthly-page",
                                                    ".monthly-report img")])
