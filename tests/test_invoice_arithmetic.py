"""Invoice arithmetic on awkward amounts: Decimal only, half up to the cent, tax per line, the
subtotal equal to what the ledger charged; the JSON of an invoice and of a statement against the
published schemas."""

import json
from decimal import Decimal as D
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from computenet.billing.invoice import ADJUSTMENT, Invoice, Party, build_invoice
from computenet.billing.statements import Line, Statement
from computenet.config import InvoiceConfig

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def schema(name: str) -> dict:
    document = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    return document


def job(job_id: int, amount: str, product_line: str, core_h: str = "0", core_price=None, gpu_h: str = "0",
        gpu_price=None, kind: str = "post") -> Line:
    return Line("2026-11-02 10:00:00", kind, D(amount), job_id, f"作业{job_id}", product_line, D(core_h), D(gpu_h),
                f"job {job_id}", D(core_price) if core_price else None, D(gpu_price) if gpu_price else None)


def statement(lines: list[Line]) -> Statement:
    by_line: dict[str, D] = {}
    for line in lines:
        by_line[line.product_line] = by_line.get(line.product_line, D("0.00")) - line.amount
    charges = sum(by_line.values(), D("0.00"))
    return Statement(account="alice-lab", currency="CNY", month="2026-11", opening_balance=D("100.00"),
                     closing_balance=D("100.00") - charges, top_ups=D("0.00"), charges=charges,
                     by_product_line=by_line, lines=lines)


def invoice(st: Statement, discount: str = "0", taxes: dict | None = None, included: bool = False) -> Invoice:
    return build_invoice(st, number="INV-2026-000001", customer="清华大学化学系", issued="2026-12-01", due="2026-12-31",
                         issuer=Party("北京算力网络科技有限公司", tax_id="91110108MA01ABCDEF"),
                         discount_percent=D(discount), tax_rates={k: D(v) for k, v in (taxes or {}).items()},
                         prices_include_tax=included)


def test_half_a_cent_rounds_up_where_a_float_would_round_down():
    # 0.5 h x 5.35 = 2.675: as a float 2.67499999..., half up in Decimal 2.68
    assert round(0.5 * 5.35, 2) == 2.67
    inv = invoice(statement([job(1, "-2.68", "hpc", "0.5000", "5.35")]), taxes={"hpc": "6"})
    [line] = inv.lines
    assert (line.quantity, line.unit_price, line.gross) == (D("0.5000"), D("5.35"), D("2.68"))
    assert line.tax == D("0.16") and line.total == D("2.84")  # 2.68 x 6 % = 0.1608
    assert inv.total_due == D("2.84")


def test_discount_and_tax_of_awkward_amounts():
    # 12.5 % off 0.04 = 0.005 -> 0.01; 6 % of 0.25 = 0.015 -> 0.02 (a float says 0.01)
    assert round(0.25 * 0.06, 2) == 0.01
    inv = invoice(statement([job(1, "-0.04", "hpc", "0.0010", "40"), job(2, "-0.25", "gpu", "0", None, "0.0250", "10")]),
                  discount="12.5", taxes={"gpu": "6", "hpc": "13"})
    hpc = next(x for x in inv.lines if x.product_line == "hpc")
    assert (hpc.gross, hpc.discount, hpc.net, hpc.tax, hpc.total) == (D("0.04"), D("0.01"), D("0.03"), D("0.00"),
                                                                     D("0.03"))
    gpu = next(x for x in inv.lines if x.product_line == "gpu")
    assert (gpu.gross, gpu.discount, gpu.net) == (D("0.25"), D("0.03"), D("0.22"))  # 0.03125 -> 0.03
    assert gpu.tax == D("0.01") and gpu.total == D("0.23")  # 0.0132 -> 0.01
    assert inv.discount == D("0.04") and inv.net == D("0.25") and inv.total_due == D("0.26")
    for value in (inv.gross, inv.discount, inv.net, inv.tax, inv.total_due, *(x.tax for x in inv.lines)):
        assert isinstance(value, D) and value == value.quantize(D("0.01"))


def test_tax_is_the_sum_of_the_lines_taxes_not_the_tax_of_the_total():
    # three lines of 0.25 at 6 %: 0.015 each -> 0.02 each, 0.06 in all (on the total it would be 0.045 -> 0.05)
    lines = [job(1, "-0.25", "hpc", "0.2500", "1"), job(2, "-0.25", "hpc", "0.1250", "2"),
             job(3, "-0.25", "hpc", "0.0625", "4")]
    inv = invoice(statement(lines), taxes={"hpc": "6"})
    assert [x.tax for x in inv.lines] == [D("0.02")] * 3
    assert inv.tax == D("0.06") and inv.tax_rounding == "per_line_half_up"
    assert inv.net + inv.tax == inv.total_due == sum(x.total for x in inv.lines)


def test_prices_that_include_tax_leave_the_total_what_the_ledger_charged():
    # 含税价: 106.00 charged at 6 % is 100.00 + 6.00; 1.00 at 13 % is 0.88 + 0.12 (1 x 13 / 113 = 0.11504 -> 0.12)
    st = statement([job(1, "-106.00", "hpc", "100.0000", "1.06"), job(2, "-1.00", "gpu", "0", None, "0.1250", "8"),
                    job(3, "-0.05", "storage")])
    inv = invoice(st, taxes={"hpc": "6", "gpu": "13"}, included=True)
    hpc = next(x for x in inv.lines if x.product_line == "hpc")
    assert (hpc.gross, hpc.net, hpc.tax, hpc.total) == (D("106.00"), D("100.00"), D("6.00"), D("106.00"))
    gpu = next(x for x in inv.lines if x.product_line == "gpu")
    assert (gpu.net, gpu.tax, gpu.total) == (D("0.88"), D("0.12"), D("1.00"))
    assert inv.total_due == st.charges == D("107.05") and inv.prices_include_tax  # the storage line is untaxed
    assert inv.net + inv.tax == inv.total_due
    # with a discount the total is the ledger's charge less the discount, and the tax is worked out of it
    off = invoice(st, discount="10", taxes={"hpc": "6", "gpu": "13"}, included=True)
    hpc = next(x for x in off.lines if x.product_line == "hpc")
    assert (hpc.discount, hpc.total, hpc.tax, hpc.net) == (D("10.60"), D("95.40"), D("5.40"), D("90.00"))
    assert off.total_due == st.charges - off.discount
    # the same charges with prices before tax: the VAT is added on top
    assert invoice(st, taxes={"hpc": "6", "gpu": "13"}).total_due == D("107.05") + D("6.36") + D("0.13")


def test_the_subtotal_is_what_the_ledger_charged():
    # a refund and a minimum charge: the ledger charged 1.00 - 0.30 + 0.05; quantity x price says 1.00 + 0.00
    lines = [job(1, "-1.00", "hpc", "0.0277", "36"), job(1, "0.30", "hpc", kind="refund"),
             job(2, "-0.05", "hpc", "0.0001", "36")]
    st = statement(lines)
    inv = invoice(st, discount="10")
    assert [x.unit for x in inv.lines] == ["core-h", ADJUSTMENT]
    priced, adjustment = inv.lines
    assert priced.quantity == D("0.0278") and priced.gross == D("1.00")  # 0.0278 x 36 = 1.0008
    assert adjustment.gross == D("-0.25") and adjustment.quantity is None
    assert inv.gross == st.charges == D("0.75")
    assert inv.product_lines[0].gross == st.by_product_line["hpc"]


def test_no_discount_no_tax_and_an_empty_month():
    inv = invoice(statement([job(1, "-3.00", "hpc", "1.0000", "3")]))
    assert inv.discount == inv.tax == D("0.00") and inv.total_due == D("3.00")
    empty = invoice(statement([]))
    assert empty.lines == [] and empty.total_due == D("0.00")


def test_invoice_json_round_trips_and_validates():
    inv = invoice(statement([job(1, "-2.68", "hpc", "0.5000", "5.35"), job(2, "-0.25", "gpu", "0", None, "0.0250", "10"),
                             job(2, "0.05", "gpu", kind="refund")]), discount="12.5", taxes={"hpc": "6"})
    data = inv.to_json()
    jsonschema.validate(data, schema("invoice"))
    assert Invoice.from_json(json.loads(json.dumps(data))) == inv
    included = invoice(statement([job(1, "-2.68", "hpc", "0.5000", "5.35")]), taxes={"hpc": "6"}, included=True)
    jsonschema.validate(included.to_json(), schema("invoice"))
    assert Invoice.from_json(included.to_json()) == included
    before = {k: v for k, v in data.items() if k != "prices_include_tax"}  # issued before the setting existed
    jsonschema.validate(before, schema("invoice"))
    assert Invoice.from_json(before) == inv
    bad = {**data, "total_due": 2.84}  # money as a JSON number is refused
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema("invoice"))


def test_statement_json_validates():
    st = statement([job(1, "-2.68", "hpc", "0.5000", "5.35"), job(2, "0.00", "hpc", "0.0001", "36", kind="charge")])
    jsonschema.validate(st.to_json(), schema("statement"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**st.to_json(), "closing_balance": "97.3"}, schema("statement"))


def test_configured_percentages_are_decimals_in_range():
    config = InvoiceConfig(tax_rates={"hpc": "6", "gpu": "1E+1"}, discounts={"alice-lab": "12.5"})
    assert config.tax_rates == {"hpc": D("6"), "gpu": D("10")} and str(config.tax_rates["gpu"]) == "10"
    for bad in ({"tax_rates": {"hpc": "-1"}}, {"discounts": {"a": "100.5"}}, {"tax_rates": {"hpc": "6.00001"}},
                {"number_prefix": "inv 1"}):
        with pytest.raises(ValidationError):
            InvoiceConfig(**bad)


@pytest.mark.parametrize("language,net,note", [("en", "Net of VAT", "Prices include VAT"),
                                                ("zh-CN", "不含税金额", "价格含税")])
def test_an_invoice_of_prices_with_tax_says_so(language, net, note):
    from computenet.billing.document import invoice_document

    st = statement([job(1, "-106.00", "hpc", "100.0000", "1.06")])
    doc = invoice_document(invoice(st, taxes={"hpc": "6"}, included=True), language)
    assert net in [c.label for c in doc.tables[0].columns] and any(n.startswith(note) for n in doc.notes)
    plain = invoice_document(invoice(st, taxes={"hpc": "6"}), language)
    assert net not in [c.label for c in plain.tables[0].columns] and not any(n.startswith(note) for n in plain.notes)
