"""The portal's areas for PIs and tenant admins (/portal/projects), finance (/portal/finance) and
operators (/portal/operations): each role sees what it should and is refused what it should not,
by the same role checks as the API; money moves once per payment reference; changes are audited."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from computenet.api.app import create_app
from computenet.billing import funds
from computenet.services.tenancy import accounts, grants, tenants
from computenet.services import audit
from computenet.services.signin import passwords
from computenet.store.models import AccountMember, AuditEvent, Tenant, User


GOOD = "Correct-Horse-7"
PEOPLE = ("pi", "mem", "ta", "fin", "op", "plain", "other")


@pytest.fixture
def org(platform):
    """Tenant uni with project md (PI pi, member mem, tenant admin ta); finance fin, operator op; a plain
    user with an account of their own; tenant corp with project corp-proj (member other)."""
    with platform.db.session() as session:
        people = {name: accounts.create_user(session, name) for name in PEOPLE}
        uni, corp = tenants.create_tenant(session, "uni", "university"), tenants.create_tenant(session, "corp", "enterprise")
        for name in ("pi", "mem", "ta"):
            people[name].tenant_id = uni.id
        people["other"].tenant_id = corp.id
        md = tenants.create_project(session, uni, "md", pi=people["pi"])
        tenants.set_member(session, md, people["mem"], "member", "50.00")
        accounts.top_up(session, md, "200.00", key="seed-md")
        corp_proj = tenants.create_project(session, corp, "corp-proj", pi=people["other"])
        accounts.top_up(session, corp_proj, "10.00", key="seed-corp")
        accounts.create_account(session, "plain-lab", owner=people["plain"])
        session.flush()
        grants.grant(session, None, audit.SYSTEM, people["ta"], "tenant_admin", "runs uni")
        grants.grant(session, None, audit.SYSTEM, people["fin"], "finance", "finance team")
        grants.grant(session, None, audit.SYSTEM, people["op"], "operator", "on call")
        for user in people.values():
            passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)
    return platform


def browser(platform, name: str) -> TestClient:
    client = TestClient(create_app(platform), follow_redirects=False)
    assert client.post("/login", data={"login": name, "password": GOOD, "next": "/"}).status_code == 303
    return client


def csrf(client, url: str = "/") -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get(url).text).group(1)


def available(platform, name: str) -> Decimal:
    with platform.db.session() as session:
        return funds.funds(session, accounts.get_account(session, name)).available


# -- projects ------------------------------------------------------------------------------

def test_each_role_sees_the_projects_roles_py_lets_it_see(org):
    seen = {}
    for name in ("pi", "mem", "ta", "fin", "plain", "other"):
        text = browser(org, name).get("/portal/projects").text
        seen[name] = {p for p in ("md", "corp-proj", "plain-lab", "uni") if f'/portal/projects/{p}"' in text}
    assert seen["pi"] == {"md"} and seen["mem"] == {"md"} and seen["other"] == {"corp-proj"}
    assert seen["ta"] == {"md", "uni"}  # the tenant's wallet and its project
    assert seen["plain"] == {"plain-lab"}
    assert {"md", "corp-proj", "plain-lab", "uni"} <= seen["fin"]


def test_another_tenants_project_is_not_found_and_a_member_cannot_change_it(org):
    ta = browser(org, "ta")
    assert ta.get("/portal/projects/corp-proj").status_code == 404
    assert ta.get("/portal/projects/nope").status_code == 404
    mem = browser(org, "mem")
    page = mem.get("/portal/projects/md")
    assert page.status_code == 200 and "/portal/projects/md/budget" not in page.text
    refused = mem.post("/portal/projects/md/budget", data={"amount": "1.00", "period": "month",
                                                          "csrf_token": csrf(mem)})
    assert refused.status_code == 403 and "needs the" in refused.text
    stranger = browser(org, "other")
    hidden = stranger.post("/portal/projects/md/budget", data={"amount": "1.00", "csrf_token": csrf(stranger)})
    assert hidden.status_code == 404
    with org.db.session() as session:
        assert accounts.get_account(session, "md").budget is None
    assert ta.post("/portal/projects/md/budget", data={"amount": "80", "period": "month",
                                                       "csrf_token": csrf(ta)}).status_code == 303
    with org.db.session() as session:
        assert accounts.get_account(session, "md").budget == Decimal("80")  # their tenant's project


def test_a_pi_adds_a_member_with_a_limit_sets_a_budget_and_removes_them(org):
    pi = browser(org, "pi")
    token = csrf(pi, "/portal/projects/md")
    added = pi.post("/portal/projects/md/members", data={"user_name": "plain", "role": "member",
                                                         "spend_limit": "25.50", "csrf_token": token})
    assert added.status_code == 303
    assert pi.post("/portal/projects/md/budget", data={"amount": "120", "period": "total",
                                                       "csrf_token": token}).status_code == 303
    assert pi.post("/portal/projects/md/low-balance", data={"amount": "30.00", "csrf_token": token}).status_code == 303
    page = pi.get("/portal/projects/md").text
    assert "plain" in page and "25.50" in page and "120.00" in page
    with org.db.session() as session:
        md, plain = accounts.get_account(session, "md"), accounts.get_user(session, "plain")
        assert session.get(AccountMember, (md.id, plain.id)).spend_limit == Decimal("25.50")
        assert md.budget == Decimal("120") and md.budget_period == "total"
        assert md.low_balance_threshold == Decimal("30.00")
        actions = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.target == "account:md"))]
        assert {"member.set", "budget.set", "low_balance.set"} <= set(actions)
    assert pi.post("/portal/projects/md/members/plain/remove", data={"csrf_token": token}).status_code == 303
    with org.db.session() as session:
        md, plain = accounts.get_account(session, "md"), accounts.get_user(session, "plain")
        assert session.get(AccountMember, (md.id, plain.id)) is None


@pytest.mark.parametrize("field, data, problem", [
    ("members", {"user_name": "plain", "role": "boss", "spend_limit": ""}, "unknown member role"),
    ("members", {"user_name": "plain", "role": "member", "spend_limit": "-5"}, "cannot be negative"),
    ("members", {"user_name": "plain", "role": "member", "spend_limit": "1e400"}, "out of range"),
    ("members", {"user_name": "nobody", "role": "member", "spend_limit": ""}, "no user"),
    ("budget", {"amount": "12.345", "period": "month"}, "a budget"),
    ("budget", {"amount": "10", "period": "week"}, "unknown budget period"),
    ("low-balance", {"amount": "abc"}, ""),
    ("webhook", {"url": "http://127.0.0.1:1/hook"}, ""),
])
def test_bad_project_input_is_a_4xx_naming_it_and_changes_nothing(org, field, data, problem):
    pi = browser(org, "pi")
    answer = pi.post(f"/portal/projects/md/{field}", data=data | {"csrf_token": csrf(pi)})
    assert 400 <= answer.status_code < 500 and problem in answer.text
    with org.db.session() as session:
        md = accounts.get_account(session, "md")
        assert md.budget is None and md.low_balance_threshold is None and md.webhook_url is None
        members = {m.user_id for m in session.scalars(select(AccountMember).where(AccountMember.account_id == md.id))}
        assert accounts.get_user(session, "plain").id not in members


def test_project_forms_without_the_csrf_token_change_nothing(org):
    pi = browser(org, "pi")
    assert pi.post("/portal/projects/md/budget", data={"amount": "5"}).status_code == 403
    assert pi.post("/portal/projects/md/members/mem/remove", data={"csrf_token": "x" * 43}).status_code == 403
    with org.db.session() as session:
        md = accounts.get_account(session, "md")
        assert md.budget is None
        assert session.get(AccountMember, (md.id, accounts.get_user(session, "mem").id)) is not None


# -- finance -------------------------------------------------------------------------------

def test_a_top_up_sent_twice_with_one_reference_moves_money_once(org):
    fin = browser(org, "fin")
    before = available(org, "md")
    form = {"account": "md", "amount": "75.00", "reference": "bank-2026-0042", "memo": "invoice 42",
            "csrf_token": csrf(fin, "/portal/finance")}
    first, second = fin.post("/portal/finance/topups", data=form), fin.post("/portal/finance/topups", data=form)
    assert first.headers["location"] == "/portal/finance?done=credited"
    assert second.headers["location"] == "/portal/finance?done=already"
    assert available(org, "md") == before + Decimal("75.00")
    assert "nothing was credited again" in fin.get(second.headers["location"]).text
    with org.db.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == "topup", AuditEvent.target == "account:md"))
        assert [(e.actor, e.detail["key"]) for e in rows] == [("fin", "topup:bank-2026-0042")]


@pytest.mark.parametrize("data, problem", [
    ({"account": "md", "amount": "-5", "reference": "r1"}, ""),
    ({"account": "md", "amount": "NaN", "reference": "r2"}, "not a finite"),
    ({"account": "md", "amount": "10", "reference": " "}, "payment reference is needed"),
    ({"account": "md", "amount": "", "reference": "r3"}, "an amount is needed"),
    ({"account": "nope", "amount": "10", "reference": "r4"}, "no account"),
])
def test_bad_top_ups_are_refused_and_move_nothing(org, data, problem):
    fin = browser(org, "fin")
    before = available(org, "md")
    answer = fin.post("/portal/finance/topups", data=data | {"csrf_token": csrf(fin, "/portal/finance")})
    assert 400 <= answer.status_code < 500 and problem in answer.text
    assert available(org, "md") == before


def test_only_finance_and_operators_use_the_finance_page(org):
    for name in ("pi", "ta", "plain"):
        client = browser(org, name)
        assert client.get("/portal/finance").status_code == 403
        assert "/portal/finance" not in client.get("/").text  # not offered in the navigation
        refused = client.post("/portal/finance/topups", data={"account": "md", "amount": "1000", "reference": "x",
                                                              "csrf_token": csrf(client)})
        assert refused.status_code in (403, 404)
    assert available(org, "md") == Decimal("200.00")
    fin = browser(org, "fin")
    page = fin.get("/portal/finance")
    assert page.status_code == 200 and "/accounts/corp-proj/statements/" in page.text
    assert 'href="/portal/finance"' in fin.get("/").text


def test_finance_sets_a_credit_line_and_closes_a_month_once(org):
    fin = browser(org, "fin")
    token = csrf(fin, "/portal/finance")
    assert fin.post("/portal/finance/credit-limit", data={"account": "md", "amount": "500",
                                                          "csrf_token": token}).status_code == 303
    assert available(org, "md") == Decimal("700.00")
    assert fin.post("/portal/finance/months/close", data={"month": "2025-01", "csrf_token": token}).status_code == 303
    again = fin.post("/portal/finance/months/close", data={"month": "2025-01", "csrf_token": token})
    assert again.status_code == 409 and "already closed" in again.text
    assert fin.post("/portal/finance/months/close", data={"month": "2025-13", "csrf_token": token}).status_code == 400
    assert fin.post("/portal/finance/months/close", data={"month": "2025-02"}).status_code == 403  # no CSRF token


def test_revenue_report_page_has_a_chart_and_refuses_bad_dates(org):
    fin = browser(org, "fin")
    page = fin.get("/portal/finance/reports?name=revenue&from=2026-01-01&to=2026-12-31&by=month")
    assert page.status_code == 200 and "echarts.min.js" in page.text
    bad = fin.get("/portal/finance/reports?name=revenue&from=2026-12-31&to=2026-01-01")
    assert bad.status_code == 400 and "is after" in bad.text
    assert fin.get("/portal/finance/reports?name=nothing").status_code == 404
    assert browser(org, "pi").get("/portal/finance/reports?name=revenue").status_code == 403


# -- operations ----------------------------------------------------------------------------

def test_operators_see_clusters_users_audit_and_apps_and_others_are_refused(org):
    op = browser(org, "op")
    clusters = op.get("/portal/operations")
    assert clusters.status_code == 200 and "local" in clusters.text
    assert op.get("/portal/operations/users").status_code == 200
    assert op.get("/portal/operations/audit").status_code == 200
    assert op.get("/portal/operations/apps").status_code == 200
    assert op.get("/portal/operations/reports?name=utilization").status_code == 200
    fin = browser(org, "fin")
    assert fin.get("/portal/operations").status_code == 200
    assert fin.get("/portal/operations/apps").status_code == 403  # reviewing apps is the operators'
    for name in ("pi", "plain"):
        client = browser(org, name)
        for url in ("/portal/operations", "/portal/operations/users", "/portal/operations/audit",
                    "/portal/operations/apps", "/portal/operations/reports"):
            assert client.get(url).status_code == 403, (name, url)
    ta = browser(org, "ta")  # a tenant admin sees their tenant's people only
    people = ta.get("/portal/operations/users")
    assert people.status_code == 200 and ">mem<" in people.text.replace("\n", "") and ">other<" not in people.text


def test_a_role_granted_in_the_operators_page_is_audited_with_its_reason(org):
    op = browser(org, "op")
    token = csrf(op, "/portal/operations/users")
    granted = op.post("/portal/operations/roles", data={"user": "plain", "role": "finance", "grant": "grant",
                                                        "reason": "month-end help", "csrf_token": token})
    assert granted.status_code == 303
    assert "the change is in the audit log" in op.get(granted.headers["location"]).text
    with org.db.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "role.grant",
                                                         AuditEvent.target == "user:plain")).one()
        assert event.actor == "op" and event.detail["reason"] == "month-end help" and event.source.startswith("portal")
    assert browser(org, "plain").get("/portal/finance").status_code == 200  # counts at once
    log = op.get("/portal/operations/audit?action=role.grant&target=user:plain").text
    assert "month-end help" in log
    no_reason = op.post("/portal/operations/roles", data={"user": "plain", "role": "finance", "grant": "revoke",
                                                          "reason": " ", "csrf_token": token})
    assert no_reason.status_code == 400 and "a reason is needed" in no_reason.text
    forged = op.post("/portal/operations/roles", data={"user": "plain", "role": "operator", "reason": "x"})
    assert forged.status_code == 403
    with org.db.session() as session:
        roles_held = {g.role for g in session.get(User, accounts.get_user(session, "plain").id).grants}
        assert roles_held == {"finance"}


def test_only_operators_grant_platform_roles_and_suspend_people(org):
    ta = browser(org, "ta")
    token = csrf(ta, "/portal/operations/users")
    refused = ta.post("/portal/operations/roles", data={"user": "mem", "role": "operator", "reason": "please",
                                                        "csrf_token": token})
    assert refused.status_code == 403
    op = browser(org, "op")
    token = csrf(op, "/portal/operations/users")
    assert op.post("/portal/operations/users/mem/status", data={"change": "suspend", "reason": "left the lab",
                                                                 "csrf_token": token}).status_code == 303
    with org.db.session() as session:
        assert accounts.get_user(session, "mem").status == "suspended"
    assert op.post("/portal/operations/users/mem/status", data={"change": "explode", "reason": "x",
                                                                 "csrf_token": token}).status_code == 404
    assert op.post("/portal/operations/users/op/status", data={"change": "suspend", "reason": "x",
                                                                "csrf_token": token}).status_code == 400


def test_the_audit_log_is_paginated_by_keyset(org):
    with org.db.session() as session:
        for n in range(60):
            audit.record(session, audit.SYSTEM, "probe", f"thing:{n}")
    op = browser(org, "op")
    first = op.get("/portal/operations/audit?action=probe").text
    assert "thing:59" in first and "thing:9<" not in first
    older = re.search(r'href="\?before=(\d+)&amp;action=probe', first).group(1)
    second = op.get(f"/portal/operations/audit?before={older}&action=probe").text
    assert "thing:9<" in second and "thing:59" not in second
    assert op.get("/portal/operations/audit?before=abc").status_code == 422


# -- in a browser, en and zh-CN ------------------------------------------------------------

@pytest.fixture
def ran_job(org):
    """One ended, charged job of mem's on project md (usage, revenue and efficiency to show)."""
    from computenet.services.jobs.jobs import submit_job
    from computenet.services.jobs.poller import ClusterPoller
    from computenet.store.models import Job

    from conftest import poll_until

    with org.db.session() as session:
        mem_id = accounts.get_user(session, "mem").id
    job = submit_job(org, mem_id, "#!/bin/bash\nsleep 1\necho done\n", ["-t", "5", "-A", "md"])
    poller = ClusterPoller(org, "local")

    def settled():
        with org.db.session() as session:
            return session.get(Job, job.id).settled_at is not None
    poll_until(settled, step=poller.run_once, what="the job to be charged")
    return job.id


def _pages_in_both_languages(org, chromium, login: str, pages: list[tuple[str, str, str | None]]):
    """Sign ``login`` in, in en then zh-CN (their profile's language), and for each (url, shot name,
    selector to wait for) check axe finds nothing serious and take a screenshot; a phone view of the first."""
    from browser import axe, new_page, shot, sign_in

    from computenet.cli.embedded import EmbeddedServer

    with EmbeddedServer(org, run_services=False) as server:
        for language in ("en", "zh-CN"):
            with org.db.session() as session:
                accounts.get_user(session, login).language = language
            for phone in (False, True):
                page = new_page(chromium, server.url, locale="zh-CN" if language == "zh-CN" else "en-US", phone=phone)
                sign_in(page, login, GOOD)
                for url, name, wait_for in pages[:1] if phone else pages:
                    page.goto(url)
                    if wait_for:
                        page.wait_for_selector(wait_for)
                    assert page.locator("html").get_attribute("lang") == language
                    assert axe(page) == [], (url, language)
                    shot(page, f"{name}-{language}{'-phone' if phone else ''}")
                page.context.close()


def test_projects_in_a_browser(org, ran_job, chromium):
    _pages_in_both_languages(org, chromium, "pi", [("/portal/projects/md", "admin-project", None),
                                                   ("/portal/projects", "admin-projects", None)])


def test_finance_in_a_browser(org, ran_job, chromium):
    with org.db.session() as session:  # a contract to list
        tenants.add_contract(session, tenants.get_tenant(session, "uni"), discount_percent=Decimal("12.5"),
                             actor="op", reason="academic rate")
    _pages_in_both_languages(org, chromium, "fin", [
        ("/portal/finance", "admin-finance", None),
        ("/portal/finance/reports?name=revenue", "admin-finance-revenue", ".chart svg")])


def test_operations_in_a_browser(org, ran_job, chromium):
    flagged_job(org, "pi")  # a row in the reconcile queue
    _pages_in_both_languages(org, chromium, "op", [
        ("/portal/operations", "admin-clusters", None),
        ("/portal/operations/users", "admin-users", None),
        ("/portal/operations/people", "admin-people", None),
        ("/portal/operations/prices", "admin-prices", None),
        ("/portal/operations/reconcile", "admin-reconcile", None),
        ("/portal/operations/audit", "admin-audit", None),
        ("/portal/operations/reports?name=utilization", "admin-utilization", ".chart svg")])


def test_a_vendor_app_waits_in_the_review_queue_until_an_operator_approves_it(org):
    from pathlib import Path

    from computenet.services.apps import apps

    source = (Path(__file__).parent / "fixtures" / "apps" / "only-plain.yaml").read_text().replace(
        "name: only-plain", "name: vendor-tool")
    with org.db.session() as session:
        isv = accounts.get_user(session, "other")
        grants.grant(session, None, audit.SYSTEM, isv, "vendor", "an ISV")
        version = apps.publish(session, isv, source, "vendor").spec.version
    op = browser(org, "op")
    queue = op.get("/portal/operations/apps").text
    assert f"/portal/operations/apps/vendor-tool/{version}/review" in queue
    fin = browser(org, "fin")
    refused = fin.post(f"/portal/operations/apps/vendor-tool/{version}/review",
                       data={"decision": "approve", "csrf_token": csrf(fin)})
    assert refused.status_code == 403 and "needs the operator role" in refused.text
    token = csrf(op, "/portal/operations/apps")
    assert op.post(f"/portal/operations/apps/vendor-tool/{version}/review",
                   data={"decision": "approve"}).status_code == 403  # no CSRF token
    assert op.post(f"/portal/operations/apps/vendor-tool/{version}/review",
                   data={"decision": "approve", "note": "checked", "csrf_token": token}).status_code == 303
    with org.db.session() as session:
        assert "vendor-tool" in {r.spec.name for r in apps.visible(session, accounts.get_user(session, "plain"))}
    again = op.post(f"/portal/operations/apps/vendor-tool/{version}/review",
                    data={"decision": "approve", "csrf_token": token})
    assert again.status_code == 409 and "not pending" in again.text


# -- operations: people and tenants, price book, reconcile queue; finance: contracts ----------

def audit_rows(platform, action: str, target: str) -> list[AuditEvent]:
    with platform.db.session() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action, AuditEvent.target == target)))
        session.expunge_all()
        return rows


def test_an_operator_adds_a_user_and_a_tenant_and_both_are_audited(org):
    op = browser(org, "op")
    token = csrf(op, "/portal/operations/people")
    added = op.post("/portal/operations/people/users", data={
        "name": "newbie", "display_name": "New Bie", "email": "newbie@example.org", "language": "zh-CN",
        "tenant": "uni", "csrf_token": token})
    assert added.headers["location"] == "/portal/operations/people?done=user"
    assert "The user was added." in op.get(added.headers["location"]).text
    tenant = op.post("/portal/operations/people/tenants", data={"name": "labco", "segment": "enterprise",
                                                                "csrf_token": token})
    assert tenant.headers["location"] == "/portal/operations/people?done=tenant"
    with org.db.session() as session:
        user = accounts.get_user(session, "newbie")
        assert (user.display_name, user.email, user.language) == ("New Bie", "newbie@example.org", "zh-CN")
        assert user.tenant_id == tenants.get_tenant(session, "uni").id
        assert tenants.get_tenant(session, "labco").segment == "enterprise"
        assert accounts.get_account(session, "labco").kind == "tenant"  # its wallet
    (event,) = audit_rows(org, "user.add", "user:newbie")
    assert event.actor == "op" and event.source.startswith("portal") and event.detail["tenant"] == "uni"
    (event,) = audit_rows(org, "tenant.add", "tenant:labco")
    assert event.actor == "op" and event.detail["segment"] == "enterprise"


@pytest.mark.parametrize("form, data, status, problem", [
    ("users", {"name": "Bad Name!", "language": "en"}, 400, "invalid user name"),
    ("users", {"name": "okname", "email": "not-an-address", "language": "en"}, 400, "invalid e-mail address"),
    ("users", {"name": "okname", "language": "fr"}, 400, "unknown language"),
    ("users", {"name": "okname", "language": "en", "tenant": "nope"}, 404, "no tenant"),
    ("users", {"name": "mem", "language": "en"}, 409, "exists"),
    ("tenants", {"name": "okname", "segment": "pirates"}, 400, "unknown segment"),
    ("tenants", {"name": "Bad Name!", "segment": "enterprise"}, 400, "invalid tenant name"),
    ("tenants", {"name": "uni", "segment": "enterprise"}, 409, "exists"),
])
def test_bad_people_and_tenant_input_is_a_4xx_naming_it_and_writes_nothing(org, form, data, status, problem):
    op = browser(org, "op")
    answer = op.post(f"/portal/operations/people/{form}", data=data | {"csrf_token": csrf(op)})
    assert answer.status_code == status and problem in answer.text
    with org.db.session() as session:
        assert session.scalar(select(User).where(User.name == "okname")) is None
        assert [t.name for t in session.scalars(select(Tenant).order_by(Tenant.name))] == ["corp", "uni"]
    assert audit_rows(org, "user.add", "user:okname") == [] and audit_rows(org, "tenant.add", "tenant:okname") == []


def test_tenant_admins_add_people_to_their_own_tenant_only_and_others_are_refused(org):
    ta = browser(org, "ta")
    page = ta.get("/portal/operations/people")
    assert page.status_code == 200 and "/portal/operations/people/tenants" not in page.text
    token = csrf(ta, "/portal/operations/people")
    assert ta.post("/portal/operations/people/users", data={"name": "unikid", "language": "en", "tenant": "uni",
                                                            "csrf_token": token}).status_code == 303
    assert ta.post("/portal/operations/people/users", data={"name": "corpkid", "language": "en", "tenant": "corp",
                                                            "csrf_token": token}).status_code == 404
    refused = ta.post("/portal/operations/people/tenants", data={"name": "tafirm", "segment": "enterprise",
                                                                 "csrf_token": token})
    assert refused.status_code == 403 and "adding a tenant" in refused.text
    for name in ("fin", "pi", "plain"):
        client = browser(org, name)
        assert client.get("/portal/operations/people").status_code == 403, name
        assert client.post("/portal/operations/people/users", data={"name": "sneaky", "language": "en",
                                                                    "csrf_token": csrf(client)}).status_code == 403
        assert client.post("/portal/operations/people/tenants", data={"name": "sneakco", "segment": "enterprise",
                                                                      "csrf_token": csrf(client)}).status_code == 403
    with org.db.session() as session:
        names = set(session.scalars(select(User.name)))
        assert "unikid" in names and not {"corpkid", "sneaky"} & names
        assert session.scalar(select(Tenant).where(Tenant.name.in_(["tafirm", "sneakco"]))) is None


def test_people_forms_without_the_csrf_token_change_nothing(org):
    op = browser(org, "op")
    assert op.post("/portal/operations/people/users", data={"name": "forged", "language": "en"}).status_code == 403
    assert op.post("/portal/operations/people/tenants", data={"name": "forgedco", "segment": "enterprise",
                                                              "csrf_token": "x" * 43}).status_code == 403
    assert op.post("/portal/operations/people/password", data={"user": "mem"}).status_code == 403
    with org.db.session() as session:
        assert session.scalar(select(User).where(User.name == "forged")) is None
    assert all(e.actor != "op" for e in audit_rows(org, "password.set", "user:mem"))
    assert browser(org, "mem").get("/").status_code == 200  # mem's password still works


def test_a_temporary_password_is_shown_once_works_and_is_audited(org):
    op = browser(org, "op")
    answer = op.post("/portal/operations/people/password", data={"user": "mem", "csrf_token": csrf(op)})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    secret = re.search(r'<code class="secret">([^<]+)</code>', answer.text).group(1)
    assert secret not in op.get("/portal/operations/people").text  # shown in that answer only
    fresh = TestClient(create_app(org), follow_redirects=False)
    assert fresh.post("/login", data={"login": "mem", "password": GOOD, "next": "/"}).status_code == 401
    first = fresh.post("/login", data={"login": "mem", "password": secret, "next": "/"})
    assert first.status_code == 403 and "choose your own first" in first.text  # right, and to be changed
    (event,) = [e for e in audit_rows(org, "password.set", "user:mem") if e.actor == "op"]
    assert event.detail["must_change"] is True and event.source.startswith("portal")
    ta = browser(org, "ta")  # another tenant's user is not found
    assert ta.post("/portal/operations/people/password", data={"user": "other",
                                                               "csrf_token": csrf(ta)}).status_code == 404
    token = csrf(op, "/portal/operations/users")
    op.post("/portal/operations/users/plain/status", data={"change": "suspend", "reason": "gone", "csrf_token": token})
    suspended = op.post("/portal/operations/people/password", data={"user": "plain", "csrf_token": token})
    assert suspended.status_code == 409 and "is suspended" in suspended.text and "secret" not in suspended.text
    missing = op.post("/portal/operations/people/password", data={"user": "nobody", "csrf_token": token})
    assert missing.status_code == 404 and "no user" in missing.text


def test_an_operator_ends_a_lockout(org):
    from computenet.services.signin import attempts

    policy = org.settings.auth
    with org.db.session() as session:
        for _ in range(policy.lockout_failures):
            attempts.record(session, "mem", "", "password", False, "bad password")
        assert attempts.locked_until(session, "mem", "", policy) is not None
    ta = browser(org, "ta")
    assert ta.post("/portal/operations/people/unlock", data={"user": "other",
                                                             "csrf_token": csrf(ta)}).status_code == 404
    assert browser(org, "plain").post("/portal/operations/people/unlock", data={
        "user": "mem", "csrf_token": csrf(ta)}).status_code == 403
    with org.db.session() as session:
        assert attempts.locked_until(session, "mem", "", policy) is not None
    op = browser(org, "op")
    done = op.post("/portal/operations/people/unlock", data={"user": "mem", "csrf_token": csrf(op)})
    assert done.headers["location"] == "/portal/operations/people?done=unlock"
    with org.db.session() as session:
        assert attempts.locked_until(session, "mem", "", policy) is None
    assert [e.actor for e in audit_rows(org, "user.unlock", "user:mem")] == ["op"]


def test_the_price_book_shows_each_partitions_list_prices_to_staff_only(org):
    op = browser(org, "op")
    page = op.get("/portal/operations/prices")
    assert page.status_code == 200
    text = page.text.replace("\n", "")
    assert re.search(r'data-label="Core-hour">36<', text) and re.search(r'data-label="GPU-hour">90<', text)
    assert browser(org, "fin").get("/portal/operations/prices").status_code == 200
    for name in ("pi", "ta", "plain"):
        assert browser(org, name).get("/portal/operations/prices").status_code == 403, name


def flagged_job(platform, owner: str = "mem") -> int:
    """A submission interrupted before the cluster answered, flagged for an operator (a held amount)."""
    from computenet.services.jobs.jobs import submit_job
    from computenet.store.models import Job

    class Crash(BaseException):
        pass

    adapter = platform.adapters["local"]
    real_submit = adapter.submit

    def crash(request):
        raise Crash()

    adapter.submit = crash
    try:
        with platform.db.session() as session:
            user_id = accounts.get_user(session, owner).id
        with pytest.raises(Crash):
            submit_job(platform, user_id, "#!/bin/bash\ntrue\n", ["-t", "5", "-A", "md"])
    finally:
        adapter.submit = real_submit
    with platform.db.session() as session:
        job = session.scalars(select(Job).where(Job.owner_id == user_id)).one()
        job.needs_reconcile = True
        return job.id


def test_an_operator_resolves_a_flagged_job_once_and_others_are_refused(org):
    job_id = flagged_job(org)
    before = available(org, "md")
    op = browser(org, "op")
    queue = op.get("/portal/operations/reconcile")
    assert queue.status_code == 200 and f"/portal/operations/reconcile/{job_id}" in queue.text
    fin = browser(org, "fin")
    assert fin.get("/portal/operations/reconcile").status_code == 403
    assert fin.post(f"/portal/operations/reconcile/{job_id}", data={"action": "withdraw",
                                                                    "csrf_token": csrf(fin)}).status_code == 403
    token = csrf(op, "/portal/operations/reconcile")
    assert op.post(f"/portal/operations/reconcile/{job_id}", data={"action": "withdraw"}).status_code == 403
    for data, status, problem in (({"action": "charge", "amount": "1.00"}, 400, "can be resolved with adopt or withdraw"),
                                  ({"action": "adopt", "native_id": "12ab"}, 400, "digits"),
                                  ({"action": "explode"}, 400, "unknown action")):
        answer = op.post(f"/portal/operations/reconcile/{job_id}", data=data | {"csrf_token": token})
        assert answer.status_code == status and problem in answer.text, data
    assert op.post("/portal/operations/reconcile/999999", data={"action": "withdraw",
                                                                "csrf_token": token}).status_code == 404
    assert op.post(f"/portal/operations/reconcile/{2**70}", data={"action": "withdraw",
                                                                 "csrf_token": token}).status_code == 400
    assert available(org, "md") == before and audit_rows(org, "reconcile", f"job {job_id}") == []
    done = op.post(f"/portal/operations/reconcile/{job_id}", data={"action": "withdraw", "note": "never ran",
                                                                   "csrf_token": token})
    assert done.headers["location"] == "/portal/operations/reconcile?done=1"
    assert f"/portal/operations/reconcile/{job_id}" not in op.get(done.headers["location"]).text
    assert available(org, "md") > before  # the hold was voided: nothing charged
    (event,) = audit_rows(org, "reconcile", f"job {job_id}")
    assert event.actor == "op" and event.detail["decision"] == "withdraw" and event.detail["note"] == "never ran"
    again = op.post(f"/portal/operations/reconcile/{job_id}", data={"action": "withdraw", "csrf_token": token})
    assert again.status_code == 409 and "does not need reconciling" in again.text


def test_finance_lists_the_tenants_contracts(org):
    with org.db.session() as session:
        tenants.add_contract(session, tenants.get_tenant(session, "uni"), discount_percent=Decimal("12.5"),
                             actor="op", reason="academic rate")
        tenants.add_contract(session, tenants.get_tenant(session, "corp"), resource="gpu_hour",
                             unit_price=Decimal("70"), actor="op", reason="volume deal")
    page = browser(org, "fin").get("/portal/finance").text
    assert "12.5% off" in page and "academic rate" in page and "unit price 70" in page and "volume deal" in page
    assert browser(org, "pi").get("/portal/finance").status_code == 403
