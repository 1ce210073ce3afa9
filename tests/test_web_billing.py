"""The portal's billing area (issue 15): balance, held and available as the ledger has them, usage by
project, cluster and product line from the same queries as `cnet usage` and `cnet bill`, statements
viewed and downloaded (CSV, PDF), notices marked as read; screenshots in en and zh-CN, phone size."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from computenet.api.app import create_app
from computenet.billing import funds
from computenet.billing.statements import statement
from computenet.cli.embedded import EmbeddedServer
from computenet.services.tenancy import accounts
from computenet.services import audit
from computenet.services.integration import notifications
from computenet.services.billing import usage
from computenet.services.jobs.job_actions import cancel_job
from computenet.services.jobs.jobs import submit_job
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.signin import passwords
from computenet.store.models import Account, Job, Notification, User
from computenet.web.i18n import Formats

from browser import axe, new_page, shot, sign_in
from conftest import poll_until

GOOD = "Correct-Horse-7"
MONTH = datetime.now(timezone.utc).strftime("%Y-%m")


@pytest.fixture
def charged(platform):
    """li, whose account paid for one finished job and holds money for a waiting one; mallory, another."""
    with platform.db.session() as session:
        li = accounts.create_user(session, "li")
        lab = accounts.create_account(session, "li-lab", owner=li)
        accounts.top_up(session, lab, "100.00", key="billing-test")
        other = accounts.create_user(session, "mallory")
        theirs = accounts.create_account(session, "m-lab", owner=other)
        accounts.top_up(session, theirs, "5.00", key="billing-test-m")
        notifications.notify_user(session, li, lab, "low_balance", "li-lab is running low <b>soon</b>", "t:1")
        notifications.notify_user(session, other, theirs, "low_balance", "m-lab is low", "t:2")
        for user in (li, other):
            passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)
        li_id = li.id
    done = submit_job(platform, li_id, "#!/bin/bash\nsleep 1\necho done\n", ["-t", "5"])
    poller = ClusterPoller(platform, "local")

    def settled():
        with platform.db.session() as session:
            return session.get(Job, done.id).settled_at is not None
    poll_until(settled, step=poller.run_once, what="the job to be charged")
    waiting = submit_job(platform, li_id, "#!/bin/bash\nsleep 120\n", ["-t", "10", "--hold"])
    yield li_id
    cancel_job(platform, li_id, waiting.id)


@pytest.fixture
def portal(platform, charged):
    client = TestClient(create_app(platform), follow_redirects=False)
    assert client.post("/login", data={"login": "li", "password": GOOD, "next": "/"}).status_code == 303
    return client


def _csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def _cell(html: str, account: str, css: str) -> str:
    row = re.search(rf'<tr data-account="{account}">(.*?)</tr>', html, re.S).group(1)
    return re.search(rf'class="num {css}[^"]*">([^<]*)</td>', row).group(1)


def test_balance_held_and_available_are_the_ledgers(portal, platform):
    html = portal.get("/portal/billing").text
    fmt = Formats("en", platform.settings.currency, platform.settings.display_timezone)
    with platform.db.session() as session:
        lab = session.scalar(select(Account).where(Account.name == "li-lab"))
        f = funds.funds(session, lab)
    assert f.held > 0 and f.balance < 100  # a job was charged, another holds money
    assert _cell(html, "li-lab", "balance") == fmt.money(f.balance)
    assert _cell(html, "li-lab", "held") == fmt.money(f.held)
    assert _cell(html, "li-lab", "available") == fmt.money(f.available)
    assert "m-lab" not in html  # another's account


def test_usage_by_project_cluster_and_product_line_is_the_usage_query(portal, platform, charged):
    html = portal.get("/portal/billing").text
    fmt = Formats("en", platform.settings.currency, platform.settings.display_timezone)
    with platform.db.session() as session:
        user = session.get(User, charged)
        lab = session.scalar(select(Account).where(Account.name == "li-lab"))
        by_cluster = {r.key: r.cost for r in usage.usage(session, user, "cluster", None, None)}
        by_account = {r.key: r.cost for r in usage.usage(session, user, "account", None, None)}
        lines = statement(session, lab, MONTH).by_product_line
    assert by_cluster and lines
    for table, expected in (("cluster", by_cluster), ("account", by_account), ("product_line", lines)):
        figures = re.search(rf'<table[^>]*id="figures-{table}">(.*?)</table>', html, re.S).group(1)
        for key, cost in expected.items():
            row = re.search(rf'<th scope="row"[^>]*>{re.escape(key)}</th>(.*?)</tr>', figures, re.S).group(1)
            assert re.findall(r'>([^<]*)</td>', row)[-1] == fmt.money(cost)  # this month is the last column
    chart = re.search(r"data-chart='([^']+)'", html).group(1)
    assert '"type": "bar"' in chart.replace("&#34;", '"') or '"type":"bar"' in chart.replace("&#34;", '"')


def test_the_statement_is_shown_and_downloads_as_csv_and_pdf(portal, platform):
    html = portal.get("/portal/billing").text
    assert f'href="/portal/billing/statements/li-lab/{MONTH}"' in html
    page = portal.get(f"/portal/billing/statements/li-lab/{MONTH}")
    assert page.status_code == 200
    with platform.db.session() as session:
        s = statement(session, session.scalar(select(Account).where(Account.name == "li-lab")), MONTH)
    # the statement's document, the one the PDF prints (billing/_document.html), jobs linked to their pages
    assert '<article class="document">' in page.text and "Statement no." in page.text
    assert str(s.closing_balance) in page.text and str(s.opening_balance) in page.text
    assert page.text.count('<td data-label="amount" class="num">') == len(s.lines) >= 2
    assert all(f'<a href="/portal/jobs/{line.job_id}">' in page.text for line in s.lines if line.job_id)
    csv_link = f"/accounts/li-lab/statements/{MONTH}?format=csv"
    pdf_link = f"/accounts/li-lab/statements/{MONTH}?format=pdf"
    assert csv_link in page.text and pdf_link in page.text
    as_csv = portal.get(csv_link)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text == s.to_csv()
    as_pdf = portal.get(pdf_link)
    assert as_pdf.status_code == 200 and as_pdf.content.startswith(b"%PDF")


@pytest.mark.parametrize("url, status", [
    (f"/portal/billing/statements/m-lab/{MONTH}", 404),  # another's account: not found
    (f"/portal/billing/statements/nope/{MONTH}", 404),
    ("/portal/billing/statements/li-lab/2026-13", 400),
    ("/portal/billing/statements/li-lab/26-1", 400),
    ("/portal/billing/statements/li-lab/2026-01%0a", 400),
])
def test_a_statement_one_may_not_see_or_a_bad_month_is_a_clear_4xx(portal, url, status):
    answer = portal.get(url)
    assert answer.status_code == status and "No such statement" in answer.text


def test_a_notice_is_marked_read_with_the_csrf_token_only(portal, platform):
    html = portal.get("/portal/billing").text
    assert "li-lab is running low &lt;b&gt;soon&lt;/b&gt;" in html and "m-lab is low" not in html
    with platform.db.session() as session:
        mine = session.scalar(select(Notification.id).where(Notification.key == "t:1"))
        theirs = session.scalar(select(Notification.id).where(Notification.key == "t:2"))
    assert portal.post(f"/portal/billing/notices/{mine}/read").status_code == 403
    assert portal.post(f"/portal/billing/notices/{theirs}/read", data={"csrf_token": _csrf(html)}).status_code == 404
    assert portal.post("/portal/billing/notices/99999999999/read", data={"csrf_token": _csrf(html)}).status_code == 422
    with platform.db.session() as session:
        assert all(n.read_at is None for n in session.scalars(select(Notification)))
    done = portal.post(f"/portal/billing/notices/{mine}/read", data={"csrf_token": _csrf(html)})
    assert done.status_code == 303
    with platform.db.session() as session:
        assert session.get(Notification, mine).read_at is not None
        assert session.get(Notification, theirs).read_at is None
    # its button is gone (li's job-ended notices, if a job of theirs ran, keep theirs)
    assert f"/portal/billing/notices/{mine}/read" not in portal.get("/portal/billing").text


def test_billing_pages_in_a_browser_in_both_languages_and_on_a_phone(platform, charged, chromium):
    with platform.db.session() as session:
        session.scalar(select(User).where(User.name == "mallory")).language = "zh-CN"
    with EmbeddedServer(platform, run_services=False) as server:
        for login, language in (("li", "en"), ("mallory", "zh-CN")):
            for phone in (False, True):
                page = new_page(chromium, server.url, locale="zh-CN" if language == "zh-CN" else "en-US", phone=phone)
                sign_in(page, login, GOOD)
                page.goto("/portal/billing")
                if login == "li":
                    page.wait_for_selector(".chart svg")  # ECharts drew the chart
                assert axe(page) == []
                shot(page, f"billing-{language}{'-phone' if phone else ''}")
                account = "li-lab" if login == "li" else "m-lab"
                page.goto(f"/portal/billing/statements/{account}/{MONTH}")
                assert axe(page) == []
                shot(page, f"statement-page-{language}{'-phone' if phone else ''}")
                page.context.close()
