"""The statement PDF as a customer's reader sees it: poppler renders it, extracts its text, lists its fonts."""

import shutil
import subprocess
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from computenet.billing.pdf import MARGIN, PAGE_H, PAGE_W, Header, font_source, to_pdf
from computenet.billing.statements import Line, Statement

pytestmark = pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils not installed (scripts/test installs it)")

JOB_NAME = "蛋白质折叠模拟"
LONG_MEMO = ("分子动力学模拟 " * 14 + "(with) \\ a very long English memo that keeps going well past the right edge "
             "of an A4 page, which used to be cut at 48 characters or run off the page")


def statement(lines: int = 3) -> Statement:
    rows = [Line("2026-11-01 00:00:00", "charge", Decimal("-1.25"), 7, JOB_NAME, "hpc", Decimal("1.5"),
                 Decimal("0"), LONG_MEMO),
            Line("2026-11-02 00:00:00", "charge", Decimal("0.00"), 8, "tiny", "hpc", Decimal("0.02"), Decimal("0"),
                 "job 8")]
    rows += [Line("2026-11-03 00:00:00", "charge", Decimal("-0.01"), 9 + i, f"作业{i}", "gpu", Decimal("0"),
                  Decimal("0.1"), f"job {9 + i}") for i in range(lines)]
    return Statement(account="alice-lab", currency="CNY", month="2026-11", opening_balance=Decimal("10.00"),
                     closing_balance=Decimal("8.75"), top_ups=Decimal("0.00"), charges=Decimal("1.25"),
                     by_product_line={"hpc": Decimal("1.25")}, lines=rows)


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


@pytest.fixture
def pdf(tmp_path):
    if font_source() is None:
        pytest.skip("fonts-noto-cjk not installed (scripts/test installs it)")
    path = tmp_path / "statement.pdf"
    path.write_bytes(to_pdf(statement(lines=80)))  # two pages
    return path


def test_chinese_text_is_extracted_and_the_font_embedded(pdf):
    text = run("pdftotext", "-layout", str(pdf), "-")
    assert JOB_NAME in text and "分子动力学模拟" in text and "page 2 of 2" in text
    assert "作业79" in text and "tiny: job 8" in text  # every line, the 0.00 charge among them
    fonts = run("pdffonts", str(pdf)).splitlines()[2:]
    assert fonts, "no fonts listed"
    for row in fonts:  # name type encoding emb sub uni ...
        name, *_ = row.split()
        emb, sub, uni = row.split()[-5:-2]
        assert (emb, sub, uni) == ("yes", "yes", "yes"), row
        assert "+NotoSansMonoCJK" in name, row


def word_boxes(pdf):
    words = ET.fromstring(run("pdftotext", "-bbox", str(pdf), "-").replace('xmlns="http://www.w3.org/1999/xhtml"', ""))
    return [(float(w.get("xMin")), float(w.get("xMax")), float(w.get("yMin")), float(w.get("yMax")), w.text)
            for w in words.iter("word")]


def test_a_chinese_statement_with_a_long_issuer_block_stays_inside(tmp_path):
    if font_source() is None:
        pytest.skip("fonts-noto-cjk not installed")
    header = Header(issuer="北京算力网络科技有限公司", issuer_address="北京市海淀区中关村大街1号院" * 12,
                    issuer_tax_id="91110108MA01ABCDEF", customer="清华大学化学系", number="ST-202611-000001",
                    issued="2026-12-01", period="2026-11-01 00:00 – 2026-12-01 00:00 UTC",
                    payment="开户行 中国工商银行北京中关村支行", language="zh-CN")
    path = tmp_path / "zh.pdf"
    path.write_bytes(to_pdf(statement(), header))
    text = run("pdftotext", "-layout", str(path), "-")
    for said in ("对账单编号", "ST-202611-000001", "纳税人识别号", "清华大学化学系", "账期", "期末余额", "消费", JOB_NAME):
        assert said in text, said
    run("pdftoppm", "-r", "50", "-png", str(path), str(tmp_path / "zh"))
    assert list(tmp_path.glob("zh-*.png"))
    for x0, x1, y0, y1, word in word_boxes(path):
        assert MARGIN - 1 <= x0 and x1 <= PAGE_W - MARGIN + 1 and 0 <= y0 and y1 <= PAGE_H, (word, x0, x1)


def test_long_text_wraps_inside_the_page(pdf):
    words = ET.fromstring(run("pdftotext", "-bbox", str(pdf), "-").replace('xmlns="http://www.w3.org/1999/xhtml"', ""))
    boxes = [(float(w.get("xMin")), float(w.get("xMax")), float(w.get("yMin")), float(w.get("yMax")), w.text)
             for w in words.iter("word")]
    assert len(boxes) > 100
    for x0, x1, y0, y1, text in boxes:
        assert MARGIN - 1 <= x0 and x1 <= PAGE_W - MARGIN + 1, (text, x0, x1)
        assert 0 <= y0 and y1 <= PAGE_H, (text, y0, y1)
    # the memo is all there, over several lines, not cut at 48 characters
    assert any(text == "page," for *_, text in boxes) and any(text == "off" for *_, text in boxes)


def test_pages_render(pdf, tmp_path):
    run("pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "page"))
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2 and all(p.read_bytes().startswith(b"\x89PNG") for p in pages)


def test_without_the_font_file_the_reader_supplies_it(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPUTENET_PDF_FONT", str(tmp_path / "absent.otf"))
    path = tmp_path / "plain.pdf"
    path.write_bytes(to_pdf(statement()))
    assert "STSong-Light" in run("pdffonts", str(path)) and "alice-lab" in run("pdftotext", str(path), "-")
