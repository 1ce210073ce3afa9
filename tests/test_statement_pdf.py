"""The statement PDF as a customer's reader sees it: poppler extracts each page's words with their boxes
and renders page 1, pypdf lists the fonts; it is printed from the portal's own template (billing/pdf.py)."""

import re
from dataclasses import replace
from decimal import Decimal

import pytest
from pdf_reading import (SCREENSHOTS, first_page_png, font_names, logo_data_url, needs_fonts,
                         outside_printable_area, overlapping, pages, unembedded_fonts)

from computenet.billing.document import Header
from computenet.billing.pdf import statement_pdf
from computenet.billing.statements import Line, Statement

pytestmark = needs_fonts

JOB_NAME = "蛋白质折叠模拟"
LONG_MEMO = ("分子动力学模拟 " * 14 + "(with) \\ a very long English memo that keeps going well past the right edge "
             "of an A4 page, which used to be cut at 48 characters or run off the page")
# a job name with no space to break at, in both scripts
LONG_NAME = "超长作业名称" * 12 + "_replica_exchange_md_with_a_name_longer_than_any_column" * 3
ZH = Header(issuer="北京算力网络科技有限公司", issuer_address="北京市海淀区中关村大街1号院" * 12,
            issuer_tax_id="91110108MA01ABCDEF", customer="清华大学化学系", number="ST-202611-000001",
            issued="2026-12-01", period="2026-11-01 00:00 – 2026-12-01 00:00 UTC",
            payment="开户行 中国工商银行北京中关村支行", language="zh-CN")
EN = Header(issuer="ComputeNet Ltd", issuer_address="1 Zhongguancun Street, Haidian, Beijing",
            customer="Department of Chemistry", number="ST-202611-000001", issued="2026-12-01",
            period="2026-11-01 00:00 – 2026-12-01 00:00 UTC", language="en")


def statement(lines: int = 3) -> Statement:
    rows = [Line("2026-11-01 00:00:00", "charge", Decimal("-1.25"), 7, JOB_NAME, "hpc", Decimal("1.5"),
                 Decimal("0"), LONG_MEMO),
            Line("2026-11-02 00:00:00", "charge", Decimal("0.00"), 8, "tiny", "hpc", Decimal("0.02"), Decimal("0"),
                 "job 8"),
            Line("2026-11-02 12:00:00", "charge", Decimal("-123456.78"), 9, LONG_NAME, "hpc", Decimal("98765.4321"),
                 Decimal("0"), "job 9")]
    rows += [Line("2026-11-03 00:00:00", "charge", Decimal("-0.01"), 10 + i, f"作业{i}", "gpu", Decimal("0"),
                  Decimal("0.1"), f"job {10 + i}") for i in range(lines)]
    return Statement(account="alice-lab", currency="CNY", month="2026-11", opening_balance=Decimal("10.00"),
                     closing_balance=Decimal("8.75"), top_ups=Decimal("0.00"), charges=Decimal("1.25"),
                     by_product_line={"hpc": Decimal("1.25")}, lines=rows)


def write(tmp_path, st, header=None, name="statement.pdf"):
    path = tmp_path / name
    path.write_bytes(statement_pdf(st, header))
    return path


@pytest.fixture(scope="module")
def long_statement(tmp_path_factory):
    """A statement of 80 lines in each language: several pages."""
    folder = tmp_path_factory.mktemp("statements")
    logo = logo_data_url()
    return {"en": write(folder, statement(lines=80), replace(EN, logo=logo), "en.pdf"),
            "zh-CN": write(folder, statement(lines=80), replace(ZH, logo=logo), "zh.pdf")}


def test_words_and_amounts_are_extracted_and_every_font_is_embedded(long_statement):
    from pypdf import PdfReader

    for language, path in long_statement.items():
        text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
        assert JOB_NAME in text and "分子动力学模拟" in text and "作业79" in text and "tiny: job 8" in text
        assert "-123456.78" in text and "98765.4321" in text and "8.75" in text
        said = ("对账单编号", "纳税人识别号", "清华大学化学系", "期末余额", "消费", "明细") if language == "zh-CN" else (
            "Statement no.", "Customer", "Department of Chemistry", "Closing balance", "Charges", "detail")
        for word in said:
            assert word in text, (language, word)
        assert unembedded_fonts(path.read_bytes()) == []
        names = font_names(path.read_bytes())  # subsets ("ABCDEF+...") of Noto Sans CJK SC, in both languages
        assert names and all(re.fullmatch(r"/[A-Z]{6}\+Noto-Sans-CJK-SC(-Bold)?", name) for name in names), names


def test_every_page_has_its_footer_and_the_table_header(long_statement):
    for language, path in long_statement.items():
        read = pages(path)
        assert len(read) >= 2
        for page in read:
            said = page.text()
            footer = (f"第 {page.number} 页，共 {len(read)} 页" if language == "zh-CN"
                      else f"page {page.number} of {len(read)}")
            assert footer in said, (language, page.number, said[-200:])
            assert "ST-202611-000001" in [w.text for w in page.words if w.y0 > page.height / 2], "number in the footer"
            header = ("日期", "类型", "作业", "核时", "卡时", "金额", "明细") if language == "zh-CN" else (
                "date", "what", "job", "core-h", "GPU-h", "amount", "detail")
            # the table's header row, repeated on every page the ledger runs onto, above its lines
            first_line = min(w.y0 for w in page.words if re.fullmatch(r"\d\d:\d\d:\d\d", w.text))  # a line's time
            for label in header:
                assert any(w.text == label and w.y1 <= first_line for w in page.words), (language, page.number, label)


def test_every_word_stays_inside_the_printable_area(long_statement, tmp_path):
    for path in [*long_statement.values(), write(tmp_path, statement(), None, "plain.pdf")]:
        for page in pages(path):
            assert len(page.words) > 30
            assert outside_printable_area(page) == [], path.name
            assert overlapping(page) == [], path.name


def test_a_long_job_name_wraps_inside_its_cell(long_statement):
    for path in long_statement.values():
        page = pages(path)[0]
        text = "".join(w.text for w in page.words)
        assert LONG_NAME in text  # all of it, over several lines
        pieces = [w for w in page.words if "超长作业名称" in w.text or "replica" in w.text or "column" in w.text]
        assert len({round(w.y0) for w in pieces}) >= 3 and outside_printable_area(page) == []
        amount = next(w for w in page.words if w.text == "-123456.78")  # a number is never broken
        assert amount.x1 > page.width / 2


def test_page_one_renders_in_each_language(long_statement):
    for language, path in long_statement.items():
        png = first_page_png(path, f"statement-{'zh' if language == 'zh-CN' else 'en'}.png")
        assert png.parent == SCREENSHOTS and png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000

