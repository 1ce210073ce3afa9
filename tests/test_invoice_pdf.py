"""The invoice as a customer's reader sees it, in both languages: poppler extracts its text, lists its
embedded fonts, renders its pages to PNG, and every word lies inside the printable area; the portal's
HTML is drawn from the same document and says the same things."""

import html
import shutil
import subprocess
import xml.etree.ElementTree as ET
from decimal import Decimal as D

import pytest

from computenet.billing.document import invoice_document, text_lines, to_pdf
from computenet.billing.invoice import Party, build_invoice
from computenet.billing.pdf import COLUMNS, MARGIN, PAGE_H, PAGE_W, font_source, width
from computenet.billing.statements import Line, Statement
from computenet.web.render import environment

pytestmark = pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils not installed (scripts/test installs it)")

ISSUER = Party("北京算力网络科技有限公司", "北京市海淀区中关村大街1号院" * 9 + " Building 7, a very long English address line",
               "91110108MA01ABCDEF", "开户行 中国工商银行北京中关村支行 账号 0200 0045 0900 1234 567 " * 3)
CUSTOMER = "清华大学化学系 Department of Chemistry, Tsinghua University"


def invoice(jobs: int = 3):
    lines = [Line("2026-11-03 00:00:00", "post", D("-1234567.89"), 1, "big", "hpc", D("34293.5525"), D("0"), "job 1",
                  D("36.00"), None)]
    lines += [Line("2026-11-03 00:00:00", "post", D("-0.01"), 10 + i, f"作业{i}", "gpu", D("0"), D("0.0010"),
                   f"job {10 + i}", None, D(f"8.{i:04d}")) for i in range(jobs)]  # a line per price
    lines.append(Line("2026-11-04 00:00:00", "refund", D("0.40"), 1, "big", "hpc", D("0"), D("0"), "refund", None, None))
    by_line = {"hpc": D("1234567.49"), "gpu": D("0.01") * jobs}
    charges = sum(by_line.values())
    st = Statement(account="tsinghua-chem", currency="CNY", month="2026-11", opening_balance=D("2000000.00"),
                   closing_balance=D("2000000.00") - charges, top_ups=D("0.00"), charges=charges,
                   by_product_line=by_line, lines=lines)
    return build_invoice(st, number="INV-2026-000042", customer=CUSTOMER, issued="2026-12-01", due="2026-12-31",
                         issuer=ISSUER, discount_percent=D("12.5"), tax_rates={"hpc": D("6"), "gpu": D("13")})


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


def word_boxes(pdf):
    words = ET.fromstring(run("pdftotext", "-bbox", str(pdf), "-").replace('xmlns="http://www.w3.org/1999/xhtml"', ""))
    return [(float(w.get("xMin")), float(w.get("xMax")), float(w.get("yMin")), float(w.get("yMax")), w.text)
            for w in words.iter("word")]


SAYS = {"en": ("Invoice no.", "INV-2026-000042", "Tax ID", "Customer", "Unit price", "Discount", "VAT%", "Total due",
               "HPC compute", "GPU compute", "adjustments", "1,234,567.89", "Payment"),
        "zh-CN": ("发票号码", "INV-2026-000042", "纳税人识别号", "客户", "单价", "折扣", "税率%", "应付总额", "高性能计算",
                  "GPU 算力", "退款及调整", "价税合计", "付款方式", "开户行")}


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_invoice_pdf_in_both_languages(tmp_path, language):
    if font_source() is None:
        pytest.skip("fonts-noto-cjk not installed (scripts/test installs it)")
    inv = invoice(jobs=60)  # two pages
    path = tmp_path / "invoice.pdf"
    path.write_bytes(to_pdf(invoice_document(inv, language)))
    text = run("pdftotext", "-layout", str(path), "-")
    for said in SAYS[language] + ("北京算力网络科技有限公司", "清华大学化学系", "91110108MA01ABCDEF"):
        assert said in text, said
    assert ("page 2 of 2" if language == "en" else "第 2 页，共 2 页") in text
    assert f"{inv.total_due:,.2f}" in text and f"{inv.tax:,.2f}" in text
    fonts = run("pdffonts", str(path)).splitlines()[2:]
    assert fonts
    for row in fonts:  # name type encoding emb sub uni ...
        assert row.split()[-5:-2] == ["yes", "yes", "yes"], row
    boxes = word_boxes(path)
    assert len(boxes) > 200
    for x0, x1, y0, y1, word in boxes:  # nothing crosses the printable area
        assert MARGIN - 1 <= x0 and x1 <= PAGE_W - MARGIN + 1, (word, x0, x1)
        assert MARGIN - LEADING_SLACK <= y0 and y1 <= PAGE_H - MARGIN, (word, y0, y1)
    run("pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / "page"))
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2 and all(p.read_bytes().startswith(b"\x89PNG") for p in pages)


LEADING_SLACK = 14  # a line's box reaches a little above its baseline


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_long_text_wraps_inside_the_width(language):
    lines = text_lines(invoice_document(invoice(), language), COLUMNS)
    assert max(width(line) for line in lines) <= COLUMNS
    assert any("34,293.5525" in line and "1,234,567.89" in line for line in lines)  # numbers are not cut
    joined = "".join(line.strip() for line in lines)
    assert joined.count("中关村大街1号院") == 9 and "a very long English address line" in " ".join(line.strip() for line in lines)


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_html_comes_from_the_same_document(language):
    doc = invoice_document(invoice(), language)
    page = html.unescape(environment(language).get_template("billing/document.html").render(doc=doc))
    for said in SAYS[language]:
        assert said in page, said
    for label, value in doc.fields + doc.totals:
        assert label in page and value in page
    for table in doc.tables:
        for row in table.rows:
            assert all(cell in page for cell in row)
    assert "<script" not in page


def test_hostile_text_is_escaped_in_html():
    inv = invoice()
    inv.customer = '<script>alert(1)</script>'
    page = environment("en").get_template("billing/document.html").render(doc=invoice_document(inv, "en"))
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_the_statement_pdf_and_page_come_from_one_document():
    from computenet.billing.document import statement_document
    from computenet.billing.pdf import Header

    lines = [Line("2026-11-02 00:00:00", "charge", D("-1.25"), 7, "蛋白质折叠模拟", "hpc", D("0.0347"), D("0"), "job 7",
                  D("36.00"), None),
             Line("2026-11-03 00:00:00", "charge", D("0.00"), 8, "tiny", None, D("0.0001"), D("0"), "free", None, None)]
    st = Statement(account="alice-lab", currency="CNY", month="2026-11", opening_balance=D("10.00"),
                   closing_balance=D("8.75"), top_ups=D("0.00"), charges=D("1.25"),
                   by_product_line={"hpc": D("1.25")}, lines=lines)
    header = Header(issuer="北京算力网络科技有限公司", customer=CUSTOMER, number="ST-202611-000001", language="zh-CN")
    doc = statement_document(st, header)
    page = html.unescape(environment("zh-CN").get_template("billing/document.html").render(doc=doc))
    printed = "\n".join(text_lines(doc, COLUMNS))
    for said in ("对账单编号", "ST-202611-000001", "期末余额", "蛋白质折叠模拟", "tiny: free", "8.75", "单价 36/核时"):
        assert said in page and said in printed, said


def test_the_configured_logo_is_shown_on_the_page():
    inv = invoice()
    inv.issuer.logo = "data:image/png;base64,iVBORw0KGgo="
    page = environment("en").get_template("billing/document.html").render(doc=invoice_document(inv, "en"))
    assert '<img class="logo" src="data:image/png;base64,iVBORw0KGgo="' in page
    inv.issuer.logo = ""
    assert "<img" not in environment("en").get_template("billing/document.html").render(doc=invoice_document(inv, "en"))
