"""The invoice as a customer's reader sees it, in both languages: printed from the portal's own template
(billing/pdf.py), its text extracted, its fonts embedded, every word inside the printable area, page 1
rendered to PNG; the portal's HTML is drawn from the same document and says the same things."""

import html
from decimal import Decimal as D

import pytest
from pdf_reading import first_page_png, logo_data_url, needs_fonts, outside_printable_area, pages, unembedded_fonts

from computenet.billing.document import Header, invoice_document, statement_document
from computenet.billing.invoice import Party, build_invoice
from computenet.billing.pdf import document_pdf
from computenet.billing.statements import Line, Statement
from computenet.web.render import environment

ISSUER = Party("北京算力网络科技有限公司", "北京市海淀区中关村大街1号院" * 9 + " Building 7, a very long English address line",
               "91110108MA01ABCDEF", "开户行 中国工商银行北京中关村支行 账号 0200 0045 0900 1234 567 " * 3)
CUSTOMER = "清华大学化学系 Department of Chemistry, Tsinghua University"
# a 1x1 red PNG
LOGO = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5E"
        "rkJggg==")


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


SAYS = {"en": ("Invoice no.", "INV-2026-000042", "Tax ID", "Customer", "Unit price", "Discount", "VAT%", "Total due",
               "HPC compute", "GPU compute", "adjustments", "1,234,567.89", "Payment"),
        "zh-CN": ("发票号码", "INV-2026-000042", "纳税人识别号", "客户", "单价", "折扣", "税率%", "应付总额", "高性能计算",
                  "GPU 算力", "退款及调整", "价税合计", "付款方式", "开户行")}


@needs_fonts
@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_invoice_pdf_in_both_languages(tmp_path, language):
    from pypdf import PdfReader

    inv = invoice(jobs=60)  # several pages
    inv.issuer.logo = logo_data_url()
    path = tmp_path / "invoice.pdf"
    path.write_bytes(document_pdf(invoice_document(inv, language)))
    text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
    for said in SAYS[language] + ("北京算力网络科技有限公司", "清华大学化学系", "91110108MA01ABCDEF"):
        assert said in text, said
    assert f"{inv.total_due:,.2f}" in text and f"{inv.tax:,.2f}" in text
    assert unembedded_fonts(path.read_bytes()) == []
    assert PdfReader(path).pages[0]["/Resources"]["/XObject"]  # the logo, embedded
    read = pages(path)
    assert len(read) >= 2
    for page in read:
        footer = "第 %d 页，共 %d 页" if language == "zh-CN" else "page %d of %d"
        assert footer % (page.number, len(read)) in page.text()
        assert outside_printable_area(page) == []
    png = first_page_png(path, f"invoice-{'zh' if language == 'zh-CN' else 'en'}.png")
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000


@needs_fonts
@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_long_text_wraps_inside_the_width_and_numbers_stay_whole(tmp_path, language):
    path = tmp_path / "invoice.pdf"
    path.write_bytes(document_pdf(invoice_document(invoice(), language)))
    (page,) = pages(path)
    assert outside_printable_area(page) == []
    words = [w.text for w in page.words]
    assert "34,293.5525" in words and "1,234,567.89" in words  # numbers are not cut
    assert "".join(words).count("中关村大街1号院") == 9 and "a very long English address line" in page.text()
    address = [w for w in page.words if "中关村大街" in w.text]
    assert len({round(w.y0) for w in address}) >= 2  # wrapped over lines, not run off the page


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


def test_hostile_text_is_escaped_in_html_and_fetches_nothing_in_the_pdf(tmp_path):
    inv = invoice()
    inv.customer = '<script>alert(1)</script><img src="file:///etc/passwd"><img src="http://example.invalid/x.png">'
    page = environment("en").get_template("billing/document.html").render(doc=invoice_document(inv, "en"))
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "<img src=" not in page
    import base64

    from pypdf import PdfReader

    image = tmp_path / "elsewhere.png"
    image.write_bytes(base64.b64decode(LOGO.split(",", 1)[1]))
    inv.issuer.logo = image.as_uri()  # a file: URL, not a configured file path: the PDF loads nothing by URL

    path = tmp_path / "hostile.pdf"
    path.write_bytes(document_pdf(invoice_document(inv, "en")))
    assert "<script>alert(1)</script>" in PdfReader(path).pages[0].extract_text()
    assert not PdfReader(path).pages[0]["/Resources"].get("/XObject")


def test_the_statement_pdf_and_page_come_from_one_document():
    from pypdf import PdfReader
    import io

    lines = [Line("2026-11-02 00:00:00", "charge", D("-1.25"), 7, "蛋白质折叠模拟", "hpc", D("0.0347"), D("0"), "job 7",
                  D("36.00"), None),
             Line("2026-11-03 00:00:00", "charge", D("0.00"), 8, "tiny", None, D("0.0001"), D("0"), "free", None, None)]
    st = Statement(account="alice-lab", currency="CNY", month="2026-11", opening_balance=D("10.00"),
                   closing_balance=D("8.75"), top_ups=D("0.00"), charges=D("1.25"),
                   by_product_line={"hpc": D("1.25")}, lines=lines)
    header = Header(issuer="北京算力网络科技有限公司", customer=CUSTOMER, number="ST-202611-000001", language="zh-CN")
    doc = statement_document(st, header)
    page = html.unescape(environment("zh-CN").get_template("billing/document.html").render(doc=doc))
    printed = PdfReader(io.BytesIO(document_pdf(doc))).pages[0].extract_text()
    for said in ("对账单编号", "ST-202611-000001", "期末余额", "蛋白质折叠模拟", "tiny: free", "8.75", "单价 36/核时"):
        assert said in page and said in printed, said


def test_the_configured_logo_is_shown_on_the_page(tmp_path):
    inv = invoice()
    inv.issuer.logo = "data:image/png;base64,iVBORw0KGgo="
    page = environment("en").get_template("billing/document.html").render(doc=invoice_document(inv, "en"))
    assert '<img class="logo" src="data:image/png;base64,iVBORw0KGgo="' in page
    logo = tmp_path / "logo.png"  # a file on this server: embedded as a data: URL in the page and the PDF
    logo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 20)
    inv.issuer.logo = str(logo)
    assert invoice_document(inv, "en").logo.startswith("data:image/png;base64,iVBORw0KGgo")
    inv.issuer.logo = ""
    assert "<img" not in environment("en").get_template("billing/document.html").render(doc=invoice_document(inv, "en"))
