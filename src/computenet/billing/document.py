"""One model of a billing document (an invoice or a statement), in either language, that both the PDF
and the HTML are drawn from: the PDF lays it out as text lines (``text_lines``), the template
``billing/_document.html`` (the portal's invoice page, the API's ``format=html``) shows the same fields,
tables and totals. Words are chosen here, once, so the two never say different things."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Optional

from .invoice import ADJUSTMENT, Invoice
from .pdf import (COLUMNS, KIND_WORDS_ZH, LABELS, TABLE_WORDS, Header, pad, pages_pdf, statement_detail, width,
                  wrap)
from .statements import KIND_WORDS, Statement


@dataclass
class Column:
    label: str
    width: int  # half-width cells; 0: the column takes what the others leave
    right: bool = False


@dataclass
class Table:
    caption: str
    columns: list[Column]
    rows: list[list[str]]


@dataclass
class Document:
    language: str
    title: str
    number: str
    issuer: str
    logo: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)  # label, value (empty values left out)
    tables: list[Table] = field(default_factory=list)
    totals: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


WORDS = {
    "en": {"invoice": "Invoice", "number": "Invoice no.", "issuer": "Issuer", "address": "Address",
           "tax_id": "Tax ID", "customer": "Customer", "account": "Account", "issued": "Issue date", "due": "Due date",
           "period": "Period", "currency": "Currency", "payment": "Payment", "lines": "Lines",
           "description": "Description", "quantity": "Quantity", "unit": "Unit", "unit_price": "Unit price",
           "gross": "Amount", "discount": "Discount", "net": "Net", "tax_percent": "VAT%", "tax": "VAT",
           "total": "Total", "by_line": "Totals per product line", "product_line": "Product line",
           "subtotal": "Subtotal", "discount_total": "Discount", "net_total": "Net", "tax_total": "VAT",
           "total_due": "Total due", "balance": "Balance this month", "opening": "Opening balance",
           "top_ups": "Top-ups", "charges": "Charges", "closing": "Closing balance",
           "adjustment": "refunds & adjustments",
           "adjustment_note": "Refunds & adjustments: what the ledger charged beyond quantity x unit price "
                              "(refunds, re-pricing, minimum charges, rounding per job).",
           "tax_note": "VAT is computed on each line after its discount and rounded half up to the cent.",
           "discount_note": "Discount of %s %% under the account's agreement."},
    "zh-CN": {"invoice": "发票", "number": "发票号码", "issuer": "开票方", "address": "地址",
              "tax_id": "纳税人识别号", "customer": "客户", "account": "账户", "issued": "开票日期", "due": "付款期限",
              "period": "账期", "currency": "币种", "payment": "付款方式", "lines": "明细",
              "description": "项目", "quantity": "数量", "unit": "单位", "unit_price": "单价",
              "gross": "金额", "discount": "折扣", "net": "折后金额", "tax_percent": "税率%", "tax": "税额",
              "total": "价税合计", "by_line": "按产品线合计", "product_line": "产品线",
              "subtotal": "小计", "discount_total": "折扣", "net_total": "折后金额", "tax_total": "税额",
              "total_due": "应付总额", "balance": "本月余额变动", "opening": "期初余额",
              "top_ups": "充值", "charges": "消费", "closing": "期末余额",
              "adjustment": "退款及调整",
              "adjustment_note": "退款及调整：账本实收与数量乘单价之差（退款、重新定价、最低收费、逐作业取整）。",
              "tax_note": "增值税按每行折后金额计算，四舍五入到分。",
              "discount_note": "按账户协议折扣 %s%%。"},
}
PRODUCT_LINES = {"hpc": ("HPC compute", "高性能计算"), "gpu": ("GPU compute", "GPU 算力"),
                 "ai": ("AI compute", "智算"), "cloud": ("Cloud compute", "云算力"), "storage": ("Storage", "存储")}
UNITS = {"core-h": ("core-h", "核时"), "GPU-h": ("GPU-h", "卡时"), ADJUSTMENT: ("", "")}


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _number(value: Decimal | None) -> str:
    """A quantity or percentage as it is (hours keep their four places), with separators."""
    return "" if value is None else f"{value:,f}"


def _price(value: Decimal | None) -> str:
    """A unit price with at least the cents, and every place it has beyond them."""
    if value is None:
        return ""
    return f"{value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"{value.normalize():,f}"


def invoice_document(inv: Invoice, language: str = "en") -> Document:
    language = language if language in WORDS else "en"
    w, zh = WORDS[language], language == "zh-CN"

    def line_name(code: str) -> str:
        return PRODUCT_LINES.get(code, (code, code))[zh]

    fields = [(w["issuer"], inv.issuer.name), (w["address"], inv.issuer.address), (w["tax_id"], inv.issuer.tax_id),
              (w["customer"], inv.customer), (w["account"], inv.account), (w["number"], inv.number),
              (w["issued"], inv.issued), (w["due"], inv.due),
              (w["period"], f"{inv.period_start[:16].replace('T', ' ')} – {inv.period_end[:16].replace('T', ' ')} UTC"),
              (w["currency"], inv.currency), (w["payment"], inv.issuer.payment)]
    rows = []
    for line in inv.lines:
        text = line_name(line.product_line)
        if line.unit == ADJUSTMENT:
            text += f" – {w['adjustment']}"
        rows.append([text, _number(line.quantity), UNITS.get(line.unit, (line.unit, line.unit))[zh],
                     _price(line.unit_price), _money(line.gross), _money(-line.discount) if line.discount else "",
                     _money(line.net), _number(line.tax_percent), _money(line.tax), _money(line.total)])
    # widths hold 12-digit quantities and amounts of a hundred million and more; the description wraps
    lines = Table(w["lines"], [Column(w["description"], 0), Column(w["quantity"], 12, True), Column(w["unit"], 6),
                               Column(w["unit_price"], 10, True), Column(w["gross"], 13, True),
                               Column(w["discount"], 12, True), Column(w["net"], 13, True),
                               Column(w["tax_percent"], 5, True), Column(w["tax"], 11, True),
                               Column(w["total"], 13, True)], rows)
    per_line = Table(w["by_line"], [Column(w["product_line"], 0), Column(w["gross"], 14, True),
                                    Column(w["discount"], 13, True), Column(w["net"], 14, True),
                                    Column(w["tax"], 12, True), Column(w["total"], 15, True)],
                     [[line_name(t.product_line), _money(t.gross), _money(-t.discount) if t.discount else "",
                       _money(t.net), _money(t.tax), _money(t.total)] for t in inv.product_lines])
    balance = Table(w["balance"], [Column(w["opening"], 0, True), Column(w["top_ups"], 0, True),
                                   Column(w["charges"], 0, True), Column(w["closing"], 0, True)],
                    [[_money(inv.opening_balance), _money(inv.top_ups), _money(-inv.charges),
                      _money(inv.closing_balance)]])
    totals = [(w["subtotal"], _money(inv.gross)), (w["discount_total"], _money(-inv.discount)),
              (w["net_total"], _money(inv.net)), (w["tax_total"], _money(inv.tax)),
              (f"{w['total_due']} ({inv.currency})", _money(inv.total_due))]
    notes = [w["tax_note"]] + ([w["adjustment_note"]] if any(x.unit == ADJUSTMENT for x in inv.lines) else [])
    discounts = {line.discount_percent for line in inv.lines if line.discount_percent}
    notes += [w["discount_note"] % _number(percent) for percent in sorted(discounts)]
    return Document(language=language, title=f"{inv.issuer.name}  {w['invoice']}", number=inv.number,
                    issuer=inv.issuer.name, logo=inv.issuer.logo, fields=[(k, v) for k, v in fields if v],
                    tables=[lines, per_line, balance], totals=totals, notes=notes)


def column_widths(table: Table, columns: int) -> list[int]:
    """Each column's width in cells, one space between columns; flexible columns share the rest."""
    fixed = sum(c.width for c in table.columns) + len(table.columns) - 1
    flexible = [c for c in table.columns if not c.width]
    share = max(8, (columns - fixed) // max(1, len(flexible)))
    return [c.width or share for c in table.columns]


def table_lines(table: Table, columns: int) -> list[str]:
    widths = column_widths(table, columns)
    out = [table.caption]
    for n, row in enumerate([[c.label for c in table.columns], *table.rows]):
        pieces = [wrap(cell, width) if cell else [""] for cell, width in zip(row, widths)]
        for depth in range(max(len(p) for p in pieces)):  # a long cell wraps inside its column
            cells = [pad(p[depth] if depth < len(p) else "", width, col.right)
                     for p, width, col in zip(pieces, widths, table.columns)]
            out.append(" ".join(cells).rstrip())
        if n == 0:
            out.append("-" * min(columns, sum(widths) + len(widths) - 1))
    return out + [""]


def text_lines(doc: Document, columns: int) -> list[str]:
    """The document as lines of at most ``columns`` half-width cells (the PDF's pages)."""
    out = [*wrap(doc.title, columns), ""]
    label = max((width(name) for name, _ in doc.fields), default=0) + 2
    for name, value in doc.fields:
        first, *rest = wrap(value, columns - label)
        out += [pad(name, label) + first] + [" " * label + piece for piece in rest]
    out.append("")
    for table in doc.tables:
        out += table_lines(table, columns)
    label = max((width(name) for name, _ in doc.totals), default=0) + 2
    for name, value in doc.totals:
        out.append(pad(pad(name, label) + pad(value, 16, True), columns, True).rstrip())
    out.append("")
    for note in doc.notes:
        out += wrap(note, columns)
    return [piece for line in out for piece in wrap(line, columns)]


def to_pdf(doc: Document) -> bytes:
    return pages_pdf(text_lines(doc, COLUMNS), page_word=PAGE_WORDS.get(doc.language, PAGE_WORDS["en"]))


PAGE_WORDS = {"en": "page %d of %d", "zh-CN": "第 %d 页，共 %d 页"}


def statement_document(st: Statement, header: Optional[Header] = None) -> Document:
    """A month's statement as a Document: the header block (issuer, customer, number, dates, period,
    payment), the opening balance, every line (zero-cost jobs too) with its hours, unit prices and
    detail, then top-ups, charges per product line, the closing balance and what is held."""
    language = header.language if header is not None and header.language in TABLE_WORDS else "en"
    w, zh = TABLE_WORDS[language], language == "zh-CN"
    if header is None:
        title = f"ComputeNet statement  {st.month}  account {st.account}  ({st.currency})" + (
            "  [closed]" if st.closed else "")
        fields, issuer, number = [], "ComputeNet", ""
    else:
        words = LABELS[language]
        title = f"{header.issuer}  {words['statement']}  {st.month}"
        fields = [(words["issuer"], header.issuer), ("", header.issuer_address),
                  (words["tax_id"], header.issuer_tax_id), (words["customer"], header.customer),
                  (words["account"], st.account), (words["number"], header.number), (words["issued"], header.issued),
                  (words["period"], header.period or st.month),
                  (words["currency"], f"{st.currency}  ({words['closed'] if st.closed else words['open']})"),
                  (words["payment"], header.payment)]
        issuer, number = header.issuer, header.number
    rows = []
    for line in st.lines:
        kind = KIND_WORDS_ZH.get(line.kind) if zh else None
        rows.append([line.date, kind or KIND_WORDS.get(line.kind, line.kind), str(line.job_id or ""),
                     str(line.core_hours), str(line.gpu_hours), str(line.amount), statement_detail(line, language)])
    ledger = Table("", [Column(w["date"], 19), Column(w["what"], 10), Column(w["job"], 8, True),
                        Column(w["core"], 10, True), Column(w["gpu"], 9, True), Column(w["amount"], 13, True),
                        Column(w["detail"], 0)], rows)
    totals = [(w["opening"], str(st.opening_balance)), (w["in"], str(st.top_ups)), (w["charges"], str(st.charges))]
    totals += [(f"  {name}", str(total)) for name, total in sorted(st.by_product_line.items())]
    totals += [(w["closing"], str(st.closing_balance)), (w["held"], str(st.held_at_close))]
    return Document(language=language, title=title, number=number, issuer=issuer,
                    fields=[(k, v) for k, v in fields if v], tables=[ledger], totals=totals)
