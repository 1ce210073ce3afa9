"""The portal's invoice page: linked from a closed month's statement, drawn from the same document the
PDF prints, in the reader's language; another's account, a bad or an open month get a clear 4xx."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from computenet.api.app import create_app
from computenet.services.tenancy import accounts
from computenet.services import audit
from computenet.services.signin import passwords
from computenet.store.models import ClosedPeriod, Transfer

GOOD = "Correct-Horse-7"
THIS_MONTH = datetime.now(timezone.utc).strftime("%Y-%m")
LAST = datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(hours=12)
MONTH = LAST.strftime("%Y-%m")


@pytest.fixture
def portal(platform):
    with platform.db.session() as session:
        li = accounts.create_user(session, "li")
        lab = accounts.create_account(session, "li-lab", owner=li)
        accounts.top_up(session, lab, "100.00", key="invoice-test")
        other = accounts.create_user(session, "mallory")
        accounts.create_account(session, "m-lab", owner=other)
        passwords.set_password(session, audit.SYSTEM, li, GOOD, platform.settings.auth)
    with platform.db.session() as session:
        session.execute(update(Transfer).values(created_at=LAST))
        session.add(ClosedPeriod(month=MONTH, actor="test"))
    client = TestClient(create_app(platform), follow_redirects=False)
    assert client.post("/login", data={"login": "li", "password": GOOD, "next": "/"}).status_code == 303
    return client


def test_a_closed_months_statement_links_its_invoice_in_both_languages(portal):
    statement = portal.get(f"/portal/billing/statements/li-lab/{MONTH}").text
    link = f"/portal/billing/invoices/li-lab/{MONTH}"
    assert f'href="{link}"' in statement
    page = portal.get(link)
    number = f"INV-{MONTH[:4]}-000001"
    assert page.status_code == 200 and number in page.text and "Invoice no." in page.text
    assert f"/accounts/li-lab/invoices/{MONTH}?format=pdf" in page.text
    zh = portal.get(link, headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 200 and number in zh.text and "发票号码" in zh.text and "应付总额" in zh.text
    pdf = portal.get(f"/accounts/li-lab/invoices/{MONTH}?format=pdf&lang=zh-CN")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert f'href="/portal/billing/invoices/li-lab/{THIS_MONTH}"' not in portal.get(
        f"/portal/billing/statements/li-lab/{THIS_MONTH}").text  # an open month has no invoice link


@pytest.mark.parametrize("url, status", [
    (f"/portal/billing/invoices/m-lab/{MONTH}", 404),  # another's account: not found
    (f"/portal/billing/invoices/nope/{MONTH}", 404),
    ("/portal/billing/invoices/li-lab/2026-13", 400),
    (f"/portal/billing/invoices/li-lab/{THIS_MONTH}", 409),  # not closed
])
def test_an_invoice_one_may_not_see_or_of_an_open_month_is_a_clear_4xx(portal, url, status):
    answer = portal.get(url)
    assert answer.status_code == status and "No such invoice" in answer.text
