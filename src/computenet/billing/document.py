"""One model of a billing document (an invoice or a statement), in either language, that both the PDF
and the HTML are drawn from: the template ``billing/_document.html`` (under ``TEMPLATES``) shows its
fields, tables and totals on the portal's pages and the API's ``format=html``, and billing/pdf.py prints
the same template to PDF. Words are chosen once (billing/document_words.py), so the two never differ."""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

from .document_words import KIND_WORDS_ZH, LABELS, PRODUCT_LINES, TABLE_WORDS, UNITS, WORDS
from .invoice import ADJUSTMENT, Invoice
from .statements import KIND_WORDS, Statement, month_bounds

# the document's template and print stylesheet; the portal's Jinja loader searches here too
TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Column:
    label: str
    right: bool = False  # a number: right-aligned, never broken
    wide: bool = False  # long text (a description, a detail): takes the width the others leave and wraps
    job: bool = False  # a job's id: the portal links it to the job's page


@dataclass
class Table:
    caption: str
    columns: list[Column]
    rows: list[list[str]]


@dataclass
class Document:
    language: str
    title: str  # the whole title in a line (a page's <title>)
    number: str
    issuer: str
    kind: str = ""  # "Invoice", "对账单": the title block's heading
    logo: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)  # label, value (empty values left out)
    tables: list[Table] = field(default_factory=list)
    totals: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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
    w, zh = dict(WORDS[language]), language == "zh-CN"
    if inv.prices_include_tax:  # the amounts include the VAT: what is left without it is not "after discount"
        w["net"] = w["net_total"] = w["net_of_tax"]

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
    number = lambda label: Column(label, right=True)  # noqa: E731
    lines = Table(w["lines"], [Column(w["description"], wide=True), number(w["quantity"]), Column(w["unit"]),
                               number(w["unit_price"]), number(w["gross"]), number(w["discount"]), number(w["net"]),
                               number(w["tax_percent"]), number(w["tax"]), number(w["total"])], rows)
    per_line = Table(w["by_line"], [Column(w["product_line"], wide=True), number(w["gross"]), number(w["discount"]),
                                    number(w["net"]), number(w["tax"]), number(w["total"])],
                     [[line_name(t.product_line), _money(t.gross), _money(-t.discount) if t.discount else "",
                       _money(t.net), _money(t.tax), _money(t.total)] for t in inv.product_lines])
    balance = Table(w["balance"], [number(w["opening"]), number(w["top_ups"]), number(w["charges"]),
                                   number(w["closing"])],
                    [[_money(inv.opening_balance), _money(inv.top_ups), _money(-inv.charges),
                      _money(inv.closing_balance)]])
    totals = [(w["subtotal"], _money(inv.gross)), (w["discount_total"], _money(-inv.discount)),
              (w["net_total"], _money(inv.net)), (w["tax_total"], _money(inv.tax)),
              (f"{w['total_due']} ({inv.currency})", _money(inv.total_due))]
    notes = [w["tax_included_note" if inv.prices_include_tax else "tax_note"]] + ([w["adjustment_note"]] if any(x.unit == ADJUSTMENT for x in inv.lines) else [])
    discounts = {line.discount_percent for line in inv.lines if line.discount_percent}
    notes += [w["discount_note"] % _number(percent) for percent in sorted(discounts)]
    return Document(language=language, title=f"{inv.issuer.name}  {w['invoice']}", kind=w["invoice"],
                    number=inv.number, issuer=inv.issuer.name, logo=embedded_logo(inv.issuer.logo), fields=[(k, v) for k, v in fields if v],
                    tables=[lines, per_line, balance], totals=totals, notes=notes)


def embedded_logo(logo: str) -> str:
    """The configured logo as the document shows it: a file on this server becomes a data: URL, so the
    page (whose Content-Security-Policy loads images from nowhere else) and the PDF both carry it; a
    data: URL or a path the portal serves stays as it is."""
    if not logo or logo.startswith("data:"):
        return logo
    path = Path(logo)
    kind = mimetypes.guess_type(path.name)[0] or ""
    if kind.startswith("image/") and path.is_file():
        return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"
    return logo


@dataclass(frozen=True)
class Header:
    """Who issues the statement to whom: the document's top block."""

    issuer: str = "ComputeNet"
    issuer_address: str = ""
    issuer_tax_id: str = ""
    payment: str = ""
    customer: str = ""  # the organisation (tenant); the account code is printed anyway
    number: str = ""
    issued: str = ""  # a date
    period: str = ""  # start - end with the time zone
    language: str = "en"
    logo: str = ""  # [billing.issuer] logo


def statement_header(issuer, account_id: int, customer: str, month: str, zone: str, language: str,
                     today: Optional[date] = None) -> Header:
    """The header for one account's month: ``issuer`` is the configured IssuerConfig; the number is
    stable (the same account and month always print the same number); the period is the UTC month
    the ledger is cut at, said with its time zone, and the issue date is today in ``zone``."""
    start, end = month_bounds(month)
    issued = today or datetime.now(ZoneInfo(zone)).date()
    return Header(issuer=issuer.name, issuer_address=issuer.address, issuer_tax_id=issuer.tax_id,
                  payment=issuer.payment, customer=customer, number=f"ST-{month.replace('-', '')}-{account_id:06d}",
                  issued=issued.isoformat(), period=f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC",
                  language=language if language in LABELS else "en", logo=issuer.logo)


def statement_detail(line, language: str = "en") -> str:
    """A ledger line's detail: the job's name and memo, and the unit prices it was rated at."""
    name = (line.job_name or "").strip()
    text = f"{name}: {line.memo}" if name and name not in line.memo else line.memo
    prices = []
    for hours, price, unit in ((line.core_hours, getattr(line, "price_core_hour", None), ("core-h", "核时")),
                               (line.gpu_hours, getattr(line, "price_gpu_hour", None), ("GPU-h", "卡时"))):
        if price is not None and hours:
            prices.append(f"{price.normalize():f}/{unit[language == 'zh-CN']}")
    if prices:
        text += ("  单价 " if language == "zh-CN" else "  at ") + ", ".join(prices)
    return text


def statement_document(st: Statement, header: Optional[Header] = None) -> Document:
    """A month's statement as a Document: the header block (issuer, customer, number, dates, period,
    payment), the opening balance, every line (zero-cost jobs too) with its hours, unit prices and
    detail, then top-ups, charges per product line, the closing balance and what is held."""
    language = header.language if header is not None and header.language in TABLE_WORDS else "en"
    w, zh = TABLE_WORDS[language], language == "zh-CN"
    words = LABELS[language]
    if header is None:
        title = f"ComputeNet statement  {st.month}  account {st.account}  ({st.currency})" + (
            "  [closed]" if st.closed else "")
        fields = [(words["account"], st.account), (words["period"], st.month),
                  (words["currency"], f"{st.currency}  ({words['closed'] if st.closed else words['open']})")]
        issuer, number = "ComputeNet", ""
    else:
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
    ledger = Table(w["lines"], [Column(w["date"]), Column(w["what"]), Column(w["job"], right=True, job=True),
                                Column(w["core"], right=True), Column(w["gpu"], right=True),
                                Column(w["amount"], right=True), Column(w["detail"], wide=True)], rows)
    totals = [(w["opening"], str(st.opening_balance)), (w["in"], str(st.top_ups)), (w["charges"], str(st.charges))]
    totals += [(f"  {PRODUCT_LINES.get(code, (code, code))[zh]}", str(total))
               for code, total in sorted(st.by_product_line.items())]
    totals += [(w["closing"], str(st.closing_balance)), (w["held"], str(st.held_at_close))]
    return Document(language=language, title=title, kind=words["statement"], number=number, issuer=issuer,
                    logo=embedded_logo(header.logo) if header is not None else "",
                    fields=[(k, v) for k, v in fields if v], tables=[ledger], totals=totals)
