"""Issuing invoices through the API: only for a closed month, numbered once and the same on every
request, frozen against later configuration changes, private, schema-valid JSON, PDF and HTML."""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import select, update

from computenet.client import ApiError
from computenet.config import BillingConfig, InvoiceConfig, IssuerConfig
from computenet.services.billing import invoices
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Account, Charge, ClosedPeriod, IssuedInvoice, Transfer

from conftest import poll_until

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"
ISSUER = IssuerConfig(name="北京算力网络科技有限公司", address="北京市海淀区中关村大街1号院", tax_id="91110108MA01ABCDEF",
                      payment="开户行 中国工商银行北京中关村支行")


@pytest.fixture
def platform(make_platform):
    invoice = InvoiceConfig(tax_rates={"hpc": "6"}, discounts={"alice-lab": "12.5"})
    return make_platform(billing=BillingConfig(issuer=ISSUER, invoice=invoice))


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def last_month() -> tuple[str, datetime]:
    first = datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    moment = first - timedelta(hours=12)
    return moment.strftime("%Y-%m"), moment


def charged_last_month(client, platform) -> str:
    """Alice runs a job; the ledger and the rated records are moved into last month, which is left open."""
    poller = ClusterPoller(platform, "local")
    job = client.submit("#!/bin/bash\n#SBATCH -c 2 -t 5\nsleep 1.2\n")
    poll_until(lambda: client.job(job.id).settled, step=poller.run_once, what=f"job {job.id} to settle")
    month, moment = last_month()
    with platform.db.session() as session:
        session.execute(update(Transfer).values(created_at=moment))
        session.execute(update(Charge).values(created_at=moment))
    return month


def close(platform, month: str) -> None:
    with platform.db.session() as session:
        session.add(ClosedPeriod(month=month, actor="test"))


def test_an_invoice_is_issued_once_for_a_closed_month(alice, bob, platform):
    month = charged_last_month(alice, platform)
    with pytest.raises(ApiError) as err:  # an open month
        alice.issue_invoice("alice-lab", month)
    assert err.value.status == 409 and "not closed" in err.value.detail
    with pytest.raises(ApiError) as err:  # nothing issued yet
        alice.invoice("alice-lab", month)
    assert err.value.status == 404 and "POST" in err.value.detail
    close(platform, month)
    first = alice.issue_invoice("alice-lab", month)
    jsonschema.validate(first, schema("invoice"))
    year = month[:4]
    assert first["number"] == f"INV-{year}-000001" and first["customer"] == "alice-lab"
    assert first["issuer"]["tax_id"] == "91110108MA01ABCDEF"
    [line] = first["lines"]
    assert line["unit"] == "core-h" and D(line["unit_price"]) == D("36.00") and D(line["quantity"]) > 0
    assert D(line["discount_percent"]) == D("12.5") and D(line["tax_percent"]) == 6
    statement = alice.statement("alice-lab", month)
    jsonschema.validate(statement, schema("statement"))
    assert D(first["gross"]) == D(statement["charges"]) > 0  # the subtotal is what the ledger charged
    assert D(first["net"]) + D(first["tax"]) == D(first["total_due"])
    # asked again, by POST or GET: the same invoice, the same number; one row
    assert alice.issue_invoice("alice-lab", month) == first == alice.invoice("alice-lab", month)
    with platform.db.session() as session:
        assert session.scalar(select(IssuedInvoice.number)) == first["number"]
        assert len(session.scalars(select(IssuedInvoice)).all()) == 1
    # the next account's invoice takes the next number, without the discount alice's agreement has
    second = bob.issue_invoice("bob-lab", month)
    assert second["number"] == f"INV-{year}-000002" and second["lines"] == [] and second["total_due"] == "0.00"
    # the PDF and the page
    pdf = alice.invoice_file("alice-lab", month, "pdf", "zh-CN")
    assert pdf.startswith(b"%PDF")
    page = alice.invoice_file("alice-lab", month, "html", "zh-CN").decode()
    assert first["number"] in page and "发票号码" in page and "应付总额" in page
    shown = alice.http.get(f"/accounts/alice-lab/statements/{month}", params={"format": "html", "lang": "zh-CN"})
    assert shown.status_code == 200 and "对账单编号" in shown.text and "期末余额" in shown.text


def test_an_issued_invoice_is_frozen(alice, platform):
    month = charged_last_month(alice, platform)
    close(platform, month)
    first = alice.issue_invoice("alice-lab", month)
    changed = platform.settings.model_copy(deep=True)
    changed.billing.invoice.tax_rates = {"hpc": D("13")}
    changed.billing.issuer.name = "Another Operator"
    with platform.db.session() as session:
        account = session.scalar(select(Account).where(Account.name == "alice-lab"))
        again = invoices.issue(session, account, month, changed, "someone")
    assert again.to_json() == first


def test_hostile_requests_get_clear_refusals(alice, bob, platform):
    month, _ = last_month()
    close(platform, month)
    for call in (lambda: alice.issue_invoice("no-such-account", month),
                 lambda: bob.issue_invoice("alice-lab", month),  # not yours: not found
                 lambda: bob.invoice("alice-lab", month)):
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.status == 404 and "account" in err.value.detail
    with pytest.raises(ApiError) as err:
        alice.issue_invoice("alice-lab", "2026-13")
    assert err.value.status == 422 and "month" in err.value.detail
    with pytest.raises(ApiError) as err:  # a month that has not even begun
        alice.issue_invoice("alice-lab", "2999-01")
    assert err.value.status == 409 and "not closed" in err.value.detail
    with pytest.raises(ApiError) as err:
        alice.invoice_file("alice-lab", month, "docx")
    assert err.value.status == 422
    with platform.db.session() as session:
        assert session.scalars(select(IssuedInvoice)).all() == []


def test_cnet_invoice(platform, server, tmp_path):
    from typer.testing import CliRunner

    from computenet.cli.main import app

    from conftest import add_user

    _, token = add_user(platform, "lee")
    env = {"COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": token, "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "COLUMNS": "200"}

    def cli(*args):
        return CliRunner().invoke(app, list(args), env=env)

    month, _ = last_month()
    refused = cli("invoice", month)
    assert refused.exit_code == 1 and "not closed" in refused.output
    assert cli("invoice", "2026-13").exit_code == 1 and cli("invoice", month, "--format", "docx").exit_code == 1
    close(platform, month)
    table = cli("invoice", month)
    assert table.exit_code == 0 and f"INV-{month[:4]}-000001" in table.output and "total due 0.00 CNY" in table.output
    data = json.loads(cli("invoice", month, "--format", "json").output)
    jsonschema.validate(data, schema("invoice"))
    assert data["number"] == f"INV-{month[:4]}-000001"  # the same invoice again
    out = tmp_path / "lee.pdf"
    saved = cli("invoice", month, "--format", "pdf", "--lang", "zh-CN", "--out", str(out))
    assert saved.exit_code == 0 and out.read_bytes().startswith(b"%PDF")


def test_issuing_at_once_gives_one_invoice_per_account_and_distinct_numbers(platform):
    from concurrent.futures import ThreadPoolExecutor

    from conftest import add_user

    for name in ("ann", "ben", "cat"):
        add_user(platform, name)
    month, _ = last_month()
    close(platform, month)

    def issue(name: str) -> str:
        with platform.db.session() as session:
            account = session.scalar(select(Account).where(Account.name == name))
            return invoices.issue(session, account, month, platform.settings, "test").number

    names = ["ann-lab", "ben-lab", "cat-lab"] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = list(pool.map(issue, names))
    by_account = {}
    for name, number in zip(names, numbers):
        assert by_account.setdefault(name, number) == number  # the same invoice for the same account
    assert sorted(by_account.values()) == [f"INV-{month[:4]}-{n:06d}" for n in (1, 2, 3)]
    with platform.db.session() as session:
        assert len(session.scalars(select(IssuedInvoice)).all()) == 3
