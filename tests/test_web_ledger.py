"""The portal's money administration (what `cnet admin project-add | move | contract-add | reprice |
check-ledger | exhaustion-policy | storage-quota | tokens` do) and the finance views of `cnet finance`:
each form checks the CSRF token and the role roles.py gives the action, refuses bad input with a 4xx
naming the field and writes nothing, and every money movement happens once per key and is audited."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from computenet.services.tenancy import accounts, tenants
from computenet.services import audit
from computenet.store.models import AccountMember, ChargeAdjustment, Contract, Transfer
from computenet.store.types import utcnow
from test_web_admin import GOOD, available, browser, csrf, org, ran_job  # noqa: F401 (fixtures)

LEDGER = "/portal/operations/ledger"
FIXTURES = Path(__file__).parent / "fixtures" / "finance"


def audit_rows(platform, action: str) -> list:
    with platform.db.session() as session:
        rows = audit.events(session, 1000, action)
        session.expunge_all()
        return rows


def post(client, url: str, data: dict):
    return client.post(url, data=data | {"csrf_token": csrf(client)})


# -- projects -------------------------------------------------------------------------------

def test_operators_and_tenant_admins_add_projects_where_roles_py_lets_them(org):
    op, ta = browser(org, "op"), browser(org, "ta")
    assert post(op, f"{LEDGER}/projects", {"tenant": "corp", "name": "corp-ai", "pi": "other"}).status_code == 303
    assert post(ta, f"{LEDGER}/projects", {"tenant": "uni", "name": "uni-bio", "pi": "pi"}).status_code == 303
    assert post(ta, f"{LEDGER}/projects", {"tenant": "corp", "name": "sneaky"}).status_code == 404
    assert post(browser(org, "fin"), f"{LEDGER}/projects", {"tenant": "uni", "name": "fin-proj"}).status_code == 403
    assert post(browser(org, "pi"), f"{LEDGER}/projects", {"tenant": "uni", "name": "pi-proj"}).status_code == 403
    with org.db.session() as session:
        bio = accounts.get_account(session, "uni-bio")
        assert bio.tenant_id == tenants.get_tenant(session, "uni").id
        pi = accounts.get_user(session, "pi")
        assert session.get(AccountMember, (bio.id, pi.id)).role == "pi"
        for name in ("sneaky", "fin-proj", "pi-proj"):
            with pytest.raises(Exception):
                accounts.get_account(session, name)
    added = {e.target: e for e in audit_rows(org, "project.add")}
    assert added["account:uni-bio"].actor == "ta" and added["account:uni-bio"].detail["pi"] == "pi"
    assert added["account:corp-ai"].detail["tenant"] == "corp"


@pytest.mark.parametrize("data, status, problem", [
    ({"tenant": "uni", "name": ""}, 400, "project name"),
    ({"tenant": "uni", "name": "bad name!"}, 400, "invalid account name"),
    ({"tenant": "uni", "name": "md"}, 409, "exists"),
    ({"tenant": "uni", "name": "x1", "pi": "nobody"}, 404, "nobody"),
])
def test_bad_project_input_is_a_4xx_naming_it_and_writes_nothing(org, data, status, problem):
    answer = post(browser(org, "op"), f"{LEDGER}/projects", data)
    assert answer.status_code == status and problem in answer.text
    assert audit_rows(org, "project.add") == []


def test_ledger_forms_without_the_csrf_token_change_nothing(org):
    op = browser(org, "op")
    assert op.post(f"{LEDGER}/projects", data={"tenant": "uni", "name": "nocsrf"}).status_code == 403
    assert op.post(f"{LEDGER}/moves", data={"source": "uni", "target": "md", "amount": "1", "reference": "r",
                                            "csrf_token": "x" * 43}).status_code == 403
    assert op.post("/portal/operations/tokens/1/revoke", data={}).status_code == 403
    assert audit_rows(org, "project.add") == [] and audit_rows(org, "move") == []


# -- moves ------------------------------------------------------------------------------------

def test_a_move_sent_twice_with_one_reference_moves_money_once(org):
    with org.db.session() as session:
        accounts.top_up(session, accounts.get_account(session, "uni"), "100.00", key="seed-uni")
    ta = browser(org, "ta")
    form = {"source": "uni", "target": "md", "amount": "40.00", "reference": "grant-7", "memo": "spring"}
    before = available(org, "md")
    first = post(ta, f"{LEDGER}/moves", form)
    assert first.status_code == 303 and first.headers["location"].endswith("done=moved")
    again = post(ta, f"{LEDGER}/moves", form)
    assert again.headers["location"].endswith("done=already")
    assert "nothing was moved again" in ta.get(again.headers["location"]).text
    assert available(org, "md") == before + Decimal("40.00") and available(org, "uni") == Decimal("60.00")
    (event,) = audit_rows(org, "move")
    assert event.actor == "ta" and event.detail["key"] == "move:grant-7" and event.detail["to"] == "md"


@pytest.mark.parametrize("who, data, status, problem", [
    ("fin", {"source": "md", "target": "corp-proj", "amount": "1"}, 400, "same tenant"),
    ("fin", {"source": "md", "target": "uni", "amount": "abc"}, 400, "amount"),
    ("fin", {"source": "md", "target": "uni", "amount": "-5"}, 400, "positive"),
    ("fin", {"source": "md", "target": "uni", "amount": "1e30"}, 400, "amount"),
    ("fin", {"source": "md", "target": "uni", "amount": "5000"}, 402, "cannot spare"),
    ("fin", {"source": "md", "target": "uni", "amount": "5", "reference": ""}, 400, "reference"),
    ("ta", {"source": "corp-proj", "target": "md", "amount": "1"}, 404, "corp-proj"),
    ("pi", {"source": "md", "target": "uni", "amount": "1"}, 403, "needs the"),
])
def test_bad_moves_are_refused_and_move_nothing(org, who, data, status, problem):
    before = available(org, "md")
    answer = post(browser(org, who), f"{LEDGER}/moves", {"reference": "r-1"} | data)
    assert answer.status_code == status and problem in answer.text
    assert available(org, "md") == before and audit_rows(org, "move") == []


# -- contracts, exhaustion policy, storage quota ----------------------------------------------

def test_finance_adds_contract_prices_and_they_are_listed_and_audited(org):
    fin = browser(org, "fin")
    assert post(fin, f"{LEDGER}/contracts", {"tenant": "uni", "terms": "discount", "value": "12.5",
                                            "resource": "*", "reason": "academic rate"}).status_code == 303
    assert post(fin, f"{LEDGER}/contracts", {"tenant": "corp", "terms": "price", "value": "70",
                                            "resource": "gpu_hour", "cluster": "local",
                                            "reason": "volume deal"}).status_code == 303
    page = fin.get("/portal/finance").text
    assert "12.5% off" in page and "unit price 70" in page and "volume deal" in page
    assert [e.target for e in audit_rows(org, "contract.add")] == ["tenant:corp", "tenant:uni"]


@pytest.mark.parametrize("who, data, status, problem", [
    ("fin", {"tenant": "uni", "terms": "discount", "value": "abc"}, 400, "discount"),
    ("fin", {"tenant": "uni", "terms": "discount", "value": "150"}, 400, "between 0 and 100"),
    ("fin", {"tenant": "uni", "terms": "price", "value": "5", "resource": "*"}, 400, "one resource"),
    ("fin", {"tenant": "uni", "terms": "bogus", "value": "5"}, 400, "terms"),
    ("fin", {"tenant": "uni", "terms": "discount", "value": "5", "cluster": "mars"}, 400, "mars"),
    ("fin", {"tenant": "nowhere", "terms": "discount", "value": "5"}, 404, "nowhere"),
    ("ta", {"tenant": "uni", "terms": "discount", "value": "5"}, 403, "needs the"),
])
def test_bad_contracts_are_refused_and_write_nothing(org, who, data, status, problem):
    answer = post(browser(org, who), f"{LEDGER}/contracts", data)
    assert answer.status_code == status and problem in answer.text
    with org.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Contract)) == 0


def test_staff_set_the_exhaustion_policy_and_the_workspace_quota(org):
    fin = browser(org, "fin")
    assert post(fin, f"{LEDGER}/exhaustion-policy", {"account": "md", "policy": "hold", "grace": "30"}).status_code == 303
    assert post(fin, f"{LEDGER}/storage-quota", {"account": "md", "gb": "250"}).status_code == 303
    with org.db.session() as session:
        md = accounts.get_account(session, "md")
        assert (md.exhaustion_policy, md.exhaustion_grace_minutes) == ("hold", 30)
        assert md.storage_quota_bytes == 250 * 2**30  # workspaces.GB
    assert audit_rows(org, "exhaustion_policy.set")[0].detail == {"policy": "hold", "grace_minutes": 30}
    assert audit_rows(org, "storage_quota.set")[0].detail == {"gb": "250"}
    assert "hold running jobs after 30 min" in fin.get(LEDGER).text


@pytest.mark.parametrize("who, form, data, status, problem", [
    ("fin", "exhaustion-policy", {"account": "md", "policy": "explode"}, 400, "explode"),
    ("fin", "exhaustion-policy", {"account": "md", "policy": "hold", "grace": "ten"}, 400, "grace minutes"),
    ("fin", "exhaustion-policy", {"account": "md", "policy": "hold", "grace": "999999"}, 400, "grace period"),
    ("fin", "storage-quota", {"account": "md", "gb": "-1"}, 400, "quota"),
    ("fin", "storage-quota", {"account": "md", "gb": "1e30"}, 400, "quota in GB"),
    ("fin", "storage-quota", {"account": "nope", "gb": "5"}, 404, "nope"),
    ("ta", "storage-quota", {"account": "md", "gb": "5"}, 403, "needs the"),
    ("pi", "exhaustion-policy", {"account": "md", "policy": "cancel"}, 403, "needs the"),
])
def test_bad_policy_and_quota_input_is_refused_and_writes_nothing(org, who, form, data, status, problem):
    answer = post(browser(org, who), f"{LEDGER}/{form}", data)
    assert answer.status_code == status and problem in answer.text
    with org.db.session() as session:
        md = accounts.get_account(session, "md")
        assert md.exhaustion_policy == "block" and md.storage_quota_bytes is None


def test_the_ledger_check_reports_a_consistent_ledger_and_the_page_follows_the_roles(org):
    op = browser(org, "op")
    assert "The ledger is consistent" in op.get(f"{LEDGER}?check=1").text
    ta_page = browser(org, "ta").get(LEDGER)
    assert ta_page.status_code == 200 and f"{LEDGER}/moves" in ta_page.text and f"{LEDGER}/projects" in ta_page.text
    assert f"{LEDGER}/contracts" not in ta_page.text and "check=1" not in ta_page.text
    assert browser(org, "pi").get(LEDGER).status_code == 403
    sections = op.get("/portal/operations").text  # the operations navigation offers the new pages
    assert all(f'href="/portal/operations/{p}"' in sections for p in ("ledger", "reprice", "tokens"))
    assert 'href="/portal/operations/tokens"' not in browser(org, "fin").get(LEDGER).text
    assert browser(org, "plain").get("/portal/operations/reprice").status_code == 403


# -- re-pricing -------------------------------------------------------------------------------

def test_repricing_is_shown_first_then_applied_once(org, ran_job):
    with org.db.session() as session:  # a price correction: uni's contract, in force before the job ran
        tenants.add_contract(session, tenants.get_tenant(session, "uni"), resource="core_hour",
                             unit_price=Decimal("36000"), effective_from=utcnow() - timedelta(days=1), actor="op",
                             reason="correction")  # ten yuan a core-second: a difference too large to round away
    fin, before = browser(org, "fin"), available(org, "md")
    shown = post(fin, "/portal/operations/reprice/preview", {"job_ids": str(ran_job), "reason": "academic rate"})
    assert shown.status_code == 200 and "Nothing has been changed yet" in shown.text and "data-chart" in shown.text
    batch = shown.text.split('name="batch" value="')[1].split('"')[0]
    with org.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ChargeAdjustment)) == 0
    assert available(org, "md") == before and audit_rows(org, "reprice") == []
    form = {"job_ids": str(ran_job), "reason": "academic rate", "batch": batch}
    applied = post(fin, "/portal/operations/reprice/apply", form)
    assert applied.status_code == 200 and "The differences were moved" in applied.text
    charged = before - available(org, "md")
    again = post(fin, "/portal/operations/reprice/apply", form)
    assert "applied before" in again.text and before - available(org, "md") == charged
    with org.db.session() as session:
        (adjustment,) = session.scalars(select(ChargeAdjustment)).all()
        assert adjustment.new_amount - adjustment.old_amount == charged
        assert adjustment.new_amount >= Decimal("10")  # the job ran at least a core-second
        assert session.scalar(select(func.count()).select_from(Transfer).where(Transfer.key.like("reprice:%"))) == 1
    (event,) = audit_rows(org, "reprice")
    assert event.actor == "fin" and event.detail["batch"] == batch


@pytest.mark.parametrize("who, data, status, problem", [
    ("fin", {"job_ids": "12x", "reason": "r"}, 400, "job ids"),
    ("fin", {"job_ids": "", "reason": "r"}, 400, "job ids"),
    ("fin", {"job_ids": "999999", "reason": "r"}, 404, "no job 999999"),
    ("fin", {"job_ids": "1", "reason": " "}, 400, "reason"),
    ("ta", {"job_ids": "1", "reason": "r"}, 403, "needs the"),
])
def test_bad_repricing_input_is_refused_and_writes_nothing(org, who, data, status, problem):
    answer = post(browser(org, who), "/portal/operations/reprice/preview", data)
    assert answer.status_code == status and problem in answer.text
    missing_batch = post(browser(org, "fin"), "/portal/operations/reprice/apply", {"job_ids": "1", "reason": "r"})
    assert missing_batch.status_code == 400 and "batch" in missing_batch.text
    assert audit_rows(org, "reprice") == []


# -- every user's API tokens --------------------------------------------------------------------

def test_operators_list_and_revoke_anyones_tokens_and_others_are_refused(org):
    from computenet.services.tenancy import tokens

    with org.db.session() as session:
        row, _ = tokens.issue(session, accounts.get_user(session, "mem"), "laptop", "read", 30, org.settings.auth)
        token_id = row.id
    op = browser(org, "op")
    listed = op.get("/portal/operations/tokens?user=mem").text
    assert "laptop" in listed and f"/portal/operations/tokens/{token_id}/revoke" in listed
    assert browser(org, "fin").get("/portal/operations/tokens").status_code == 403
    assert post(browser(org, "fin"), f"/portal/operations/tokens/{token_id}/revoke", {}).status_code == 403
    assert op.get("/portal/operations/tokens?user=nobody").status_code == 404
    done = post(op, f"/portal/operations/tokens/{token_id}/revoke", {})
    assert done.status_code == 303 and "was revoked" in op.get(done.headers["location"]).text
    assert post(op, "/portal/operations/tokens/99999/revoke", {}).status_code == 404
    with org.db.session() as session:
        assert tokens.find(session, token_id).revoked_at is not None
    (event,) = audit_rows(org, "token.revoke")
    assert event.actor == "op" and event.target == "user:mem" and event.detail["token"] == token_id
    assert "laptop" not in op.get("/portal/operations/tokens?user=mem").text
    assert "laptop" in op.get("/portal/operations/tokens?user=mem&all=1").text


# -- finance views ----------------------------------------------------------------------------------

def test_an_uploaded_statement_shows_growth_valuation_and_the_star_standards(org):
    fin = browser(org, "fin")
    answer = fin.post("/portal/finance/analysis/statement", data={"csrf_token": csrf(fin)},
                      files={"file": ("sample-statement.csv", (FIXTURES / "sample-statement.csv").read_bytes())})
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert "Example Compute Co." in text and "Revenue CAGR 2016-2018 (2 periods)" in text and "30%" in text
    assert "missing year: no 2015 figures" in text and "data-chart" in text
    star = fin.post("/portal/finance/analysis/statement", data={"csrf_token": csrf(fin)},
                    files={"file": ("s.json", (FIXTURES / "sample-statement.json").read_bytes())}).text
    assert star.count(">met<") == 4 and "cannot judge" in star and "cannot be judged from figures" in star


@pytest.mark.parametrize("name, content, problem", [
    ("notes.txt", b"year,revenue\n2020,1\n", "expected a .csv or .json"),
    ("s.csv", b"\xff\xfe\x00", "not UTF-8"),
    ("s.json", b"{not json", "s"),
])
def test_a_bad_statement_is_a_400_naming_the_problem(org, name, content, problem):
    fin = browser(org, "fin")
    answer = fin.post("/portal/finance/analysis/statement", data={"csrf_token": csrf(fin)},
                      files={"file": (name, content)})
    assert answer.status_code == 400 and problem in answer.text


def test_a_valuation_scenario_and_who_may_see_the_finance_views(org):
    fin = browser(org, "fin")
    table = fin.get("/portal/finance/analysis/scenario?pe=61.1&base=12.1&premium=1.2,1.3,1.5,1.8&sector_cap=23280")
    assert table.status_code == 200 and "887.172" in table.text and "1,330.758" in table.text
    bad = fin.get("/portal/finance/analysis/scenario?pe=abc&base=12.1")
    assert bad.status_code == 400 and "sector P/E" in bad.text
    assert fin.get("/portal/finance/analysis/scenario?pe=61&base=-3").status_code == 400
    assert fin.get("/portal/finance/analysis/scenario?pe=61&base=3&unit=pounds").status_code == 400
    assert browser(org, "pi").get("/portal/finance/analysis").status_code == 403
    assert browser(org, "pi").get("/portal/finance/analysis?view=operator").status_code == 403
    no_csrf = fin.post("/portal/finance/analysis/statement",
                       files={"file": ("s.csv", (FIXTURES / "sample-statement.csv").read_bytes())})
    assert no_csrf.status_code == 403


def test_the_operators_own_statement_comes_from_the_ledger(org, ran_job):
    page = browser(org, "fin").get("/portal/finance/analysis?view=operator")
    assert page.status_code == 200 and "platform operator: statement" in page.text


# -- in a browser, en and zh-CN ------------------------------------------------------------------

def test_ledger_pages_in_a_browser(org, ran_job, chromium):
    from browser import axe, new_page, shot, sign_in

    from computenet.cli.embedded import EmbeddedServer

    from computenet.services.tenancy import tokens

    with org.db.session() as session:
        tenants.add_contract(session, tenants.get_tenant(session, "uni"), resource="core_hour",
                             unit_price=Decimal("36000"), effective_from=utcnow() - timedelta(days=1), actor="op",
                             reason="correction")
        tokens.issue(session, accounts.get_user(session, "mem"), "laptop", "read", 30, org.settings.auth)
    with EmbeddedServer(org, run_services=False) as server:
        for language in ("en", "zh-CN"):
            with org.db.session() as session:
                accounts.get_user(session, "op").language = language
            page = new_page(chromium, server.url, locale="zh-CN" if language == "zh-CN" else "en-US")
            sign_in(page, "op", GOOD)

            def check(name: str, wait_for: str | None = None):
                if wait_for:
                    page.wait_for_selector(wait_for)
                assert page.locator("html").get_attribute("lang") == language
                assert axe(page) == [], (name, language)
                shot(page, f"ledger-{name}-{language}")

            page.goto(f"{LEDGER}?check=1")
            check("accounts")
            page.goto("/portal/operations/tokens")
            check("tokens")
            page.goto("/portal/operations/reprice")
            page.fill("#r-jobs", str(ran_job))
            page.fill("#r-reason", "price correction")
            page.click("form[action$='/preview'] button[type=submit]")
            check("reprice", ".chart svg")
            page.goto("/portal/finance/analysis?view=operator")
            page.set_input_files("#s-file", str(FIXTURES / "sample-statement.csv"))
            page.click("form[action$='/statement'] button[type=submit]")
            check("statement", ".chart svg")
            page.goto("/portal/finance/analysis/scenario?pe=61.1&base=12.1&sector_cap=23280")
            check("scenario", ".chart svg")
            page.context.close()


# -- the CLI calls the same service -------------------------------------------------------------

def test_the_cli_adds_projects_moves_once_per_key_and_names_bad_contract_input(tmp_path):
    """`cnet admin project-add | move | contract-add` go through services/billing/ledger_admin.py, as the portal."""
    import subprocess
    import sys

    from test_config_server import clean_env

    cnet = str(Path(sys.executable).with_name("cnet"))
    env = clean_env(COMPUTENET_DATA_DIR=str(tmp_path), HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"))

    def run(*args):
        return subprocess.run([cnet, "admin", *args], env=env, capture_output=True, text=True, timeout=120)

    for args in (("init",), ("tenant-add", "uni", "--segment", "university"), ("project-add", "uni", "lab"),
                 ("topup", "uni", "100.00", "--key", "seed")):
        assert run(*args).returncode == 0, args
    first, again = run("move", "uni", "lab", "40.00", "--key", "g1"), run("move", "uni", "lab", "40.00", "--key", "g1")
    assert "moved 40.00 from uni to lab" in first.stdout and "already moved under that key" in again.stdout
    bad = run("contract-add", "uni", "--discount", "abc")
    assert bad.returncode == 1 and "not a number" in bad.stderr
    assert run("contract-add", "uni", "--discount", "10", "--reason", "academic").returncode == 0
    assert "ledger consistent" in run("check-ledger").stdout
    events = run("audit", "--limit", "20").stdout
    assert events.count(" move ") == 1 and "project.add" in events and "contract.add" in events


def test_a_refusal_on_an_operators_form_is_in_the_readers_language(org):
    """The operations forms show a service's refusal through Viewer.say, as the user pages do: a zh-CN
    reader sees it in Chinese (these pages printed the English str until then)."""
    with org.db.session() as session:
        accounts.get_user(session, "fin").language = "zh-CN"
    fin = browser(org, "fin")
    refused = post(fin, f"{LEDGER}/moves", {"source": "md", "target": "corp-proj", "amount": "1", "reference": "r1"})
    assert refused.status_code == 400
    assert "资金只能在同一租户的账户之间转移" in refused.text and "same tenant" not in refused.text
