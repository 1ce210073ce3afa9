"""An invoice of a closed month, worked out from the account's statement.

Lines: the month's priced usage, one line per product line, unit and unit price
(quantity x unit price, to the cent), and where the ledger charged a different sum
for a product line (refunds, re-pricing adjustments, minimum charges, per-job
rounding) a line that says so, so an invoice's subtotal is exactly what the ledger
charged. Then, per line and in Decimal only: the account's discount (a percentage
off, its own column), the product line's VAT on what is left, the line total.

Tax is rounded per line, half up to the cent, and the invoice's tax is the sum of
the lines' taxes: every printed line adds up (net + tax = total) and so do the
columns, as a Chinese VAT fapiao prints it line by line. Rounding the total instead
would differ by at most half a cent per line; the JSON says which rule was used.

Prices exclude tax unless the operator's price book includes it (``prices_include_tax``,
as prices shown to Chinese customers usually do: 含税价). Then what the ledger charged,
less the discount, is the line's total (价税合计): its tax is the total's share at the
line's rate (total x rate / (100 + rate), half up to the cent) and its net the rest, so
the customer pays exactly the ledger's charge less the discount.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from .statements import Statement, _jsonable, month_bounds

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
TAX_ROUNDING = "per_line_half_up"
ADJUSTMENT = "adjustment"  # the unit of the line that reconciles a product line with the ledger


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class InvoiceLine:
    product_line: str
    unit: str  # core-h, GPU-h, or "adjustment"
    quantity: Decimal | None  # hours, as the statement says them; None on an adjustment line
    unit_price: Decimal | None
    gross: Decimal  # quantity x unit price, to the cent
    discount_percent: Decimal
    discount: Decimal
    net: Decimal
    tax_percent: Decimal
    tax: Decimal
    total: Decimal


@dataclass
class ProductLineTotal:
    product_line: str
    gross: Decimal
    discount: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal


@dataclass
class Party:
    name: str
    address: str = ""
    tax_id: str = ""
    payment: str = ""
    logo: str = ""


@dataclass
class Invoice:
    number: str
    account: str
    customer: str
    currency: str
    month: str
    period_start: str
    period_end: str
    issued: str  # a date
    due: str
    issuer: Party
    lines: list[InvoiceLine] = field(default_factory=list)
    product_lines: list[ProductLineTotal] = field(default_factory=list)
    gross: Decimal = Decimal("0.00")
    discount: Decimal = Decimal("0.00")
    net: Decimal = Decimal("0.00")
    tax: Decimal = Decimal("0.00")
    total_due: Decimal = Decimal("0.00")
    tax_rounding: str = TAX_ROUNDING
    prices_include_tax: bool = False  # amounts and unit prices include the VAT (totals are the ledger's)
    # the balance movement of the month, from the statement
    opening_balance: Decimal = Decimal("0.00")
    top_ups: Decimal = Decimal("0.00")
    charges: Decimal = Decimal("0.00")
    closing_balance: Decimal = Decimal("0.00")

    def to_json(self) -> dict:
        return _jsonable(asdict(self))

    @classmethod
    def from_json(cls, data: dict) -> "Invoice":
        def dec(value):
            return None if value is None else Decimal(value)

        money = ("gross", "discount", "net", "tax", "total")
        lines = [InvoiceLine(**{**row, **{k: dec(row[k]) for k in (*money, "quantity", "unit_price",
                                                                    "discount_percent", "tax_percent")}})
                 for row in data["lines"]]
        totals = [ProductLineTotal(**{**row, **{k: dec(row[k]) for k in money}}) for row in data["product_lines"]]
        plain = {k: v for k, v in data.items() if k not in ("lines", "product_lines", "issuer")}
        for key in ("gross", "discount", "net", "tax", "total_due", "opening_balance", "top_ups", "charges",
                    "closing_balance"):
            plain[key] = Decimal(plain[key])
        return cls(**plain, issuer=Party(**data["issuer"]), lines=lines, product_lines=totals)


def priced_usage(st: Statement) -> dict[str, dict[tuple[str, Decimal], Decimal]]:
    """product line -> (unit, unit price) -> hours, from the statement's charged jobs."""
    usage: dict[str, dict[tuple[str, Decimal], Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for line in st.lines:
        if not line.job_id or not line.product_line:
            continue  # a free job with no money line names no product line: it adds nothing billed
        for hours, price, unit in ((line.core_hours, line.price_core_hour, "core-h"),
                                   (line.gpu_hours, line.price_gpu_hour, "GPU-h")):
            if hours and price:
                usage[line.product_line][(unit, price)] += hours
    return usage


def invoice_lines(st: Statement, discount_percent: Decimal, tax_rates: dict[str, Decimal],
                  prices_include_tax: bool = False) -> list[InvoiceLine]:
    usage = priced_usage(st)
    lines = []
    for product_line in sorted(set(usage) | set(st.by_product_line)):
        tax_percent = tax_rates.get(product_line, Decimal(0))
        priced = []
        for (unit, price), hours in sorted(usage.get(product_line, {}).items()):
            priced.append((unit, hours, price, cents(hours * price)))
        ledger = st.by_product_line.get(product_line, Decimal("0.00"))
        rest = ledger - sum((gross for *_, gross in priced), Decimal("0.00"))
        if rest:
            priced.append((ADJUSTMENT, None, None, rest))
        for unit, hours, price, gross in priced:
            discount = cents(gross * discount_percent / HUNDRED)
            if prices_include_tax:  # what is left after the discount is the total, tax included
                total = gross - discount
                tax = cents(total * tax_percent / (HUNDRED + tax_percent))
                net = total - tax
            else:
                net = gross - discount
                tax = cents(net * tax_percent / HUNDRED)
            lines.append(InvoiceLine(product_line, unit, hours, price, gross, discount_percent, discount, net,
                                     tax_percent, tax, net + tax))
    return lines


def build_invoice(st: Statement, *, number: str, customer: str, issued: str, due: str, issuer: Party,
                  discount_percent: Decimal = Decimal(0), tax_rates: dict[str, Decimal] | None = None,
                  prices_include_tax: bool = False) -> Invoice:
    start, end = month_bounds(st.month)
    lines = invoice_lines(st, discount_percent, tax_rates or {}, prices_include_tax)
    by_line: dict[str, list[InvoiceLine]] = defaultdict(list)
    for line in lines:
        by_line[line.product_line].append(line)
    totals = [ProductLineTotal(name, *(sum((getattr(x, k) for x in group), Decimal("0.00"))
                                       for k in ("gross", "discount", "net", "tax", "total")))
              for name, group in sorted(by_line.items())]
    invoice = Invoice(number=number, account=st.account, customer=customer, currency=st.currency, month=st.month,
                      period_start=start.isoformat(), period_end=end.isoformat(), issued=issued, due=due,
                      issuer=issuer, lines=lines, product_lines=totals, opening_balance=st.opening_balance,
                      top_ups=st.top_ups, charges=st.charges, closing_balance=st.closing_balance,
                      prices_include_tax=prices_include_tax)
    for key in ("gross", "discount", "net", "tax"):
        setattr(invoice, key, sum((getattr(t, key) for t in totals), Decimal("0.00")))
    invoice.total_due = sum((t.total for t in totals), Decimal("0.00"))
    return invoice
