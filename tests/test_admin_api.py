"""Money administration over HTTP: role checks, audit with the client address,
project budgets, and member limits that hold under concurrent submissions."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select

from computenet.billing import funds, ledger
from computenet.services.tenancy import accounts, tenants
from computenet.store.models import AuditEvent, Job

D = Decimal
HELD_JOB = "#!/bin/bash\n#SBATCH -c 1 -t 1 -H\ntrue\n"  # 1 core x 1 min x 36.00/h = 0.60, never starts


@pytest.fixture
def org(platform, server):
    """A university with a wallet and project md-lab (PI pi, member student); staff; another tenant's admin."""
    with platform.db.session() as session:
        uni = tenants.create_tenant(session, "uni", "university")
        corp = tenants.create_tenant(session, "corp", "enterprise")
        users = {name: accounts.create_user(session, name) for name in
                 ("pi", "student", "fin", "ops", "uniadmin", "corpadmin", "stranger")}
        users["fin"].role, users["ops"].role = "finance", "operator"
        users["uniadmin"].role, users["uniadmin"].tenant_id = "tenant_admin", uni.id
        users["corpadmin"].role, users["corpadmin"].tenant_id = "tenant_admin", corp.id
        project = tenants.create_project(session, uni, "md-lab", users["pi"])
        tenants.set_member(session, project, users["student"])
        accounts.create_account(session, "stranger-lab", owner=users["stranger"])
        tokens = {name: accounts.issue_token(session, u) for name, u in users.items()}

    def http(name: str) -> httpx.Client:
        return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens[name]}"}, timeout=60)

    return http


def test_finance_tops_up_over_http_once_per_reference_and_is_audited(platform, org):
    with org("fin") as fin:
        r = fin.post("/accounts/md-lab/topups", json={"amount": "250.00", "reference": "bank-7781", "memo": "grant"})
        assert r.status_code == 201, r.text
        assert r.json()["credited"] is True and r.json()["balance"] == "250.00"
        again = fin.post("/accounts/md-lab/topups", json={"amount": "250.00", "reference": "bank-7781"})
        assert again.status_code == 201 and again.json()["credited"] is False and again.json()["balance"] == "250.00"
        # bad input: a clear refusal and nothing written
        for body, status, fragment in (
            ({"amount": "-5", "reference": "neg"}, 400, "positive"),
            ({"amount": "abc", "reference": "nan"}, 400, "not an amount"),
            ({"amount": "1.001", "reference": "mills"}, 400, "decimal places"),
            ({"amount": 12.5, "reference": "float"}, 422, "string"),
        ):
            bad = fin.post("/accounts/md-lab/topups", json=body)
            assert bad.status_code == status and fragment in bad.text, (body, bad.text)
        assert fin.post("/accounts/nope/topups", json={"amount": "1", "reference": "x"}).status_code == 404
        events = fin.get("/admin/audit", params={"action": "topup"}).json()
    assert len(events) == 1
    assert events[0]["actor"] == "fin" and events[0]["source"] == "api 127.0.0.1"
    assert events[0]["detail"]["memo"] == "grant" and events[0]["target"] == "account:md-lab"
    with platform.db.session() as session:
        assert funds.funds(session, accounts.get_account(session, "md-lab")).balance == D("250.00")
        assert ledger.invariant(session) == []


def test_roles_decide_who_may_do_what(platform, org):
    with org("student") as student, org("pi") as pi, org("uniadmin") as uniadmin, \
            org("corpadmin") as corpadmin, org("ops") as ops, org("stranger") as stranger:
        # money in, credit and policy: staff only
        assert student.post("/accounts/md-lab/topups", json={"amount": "1", "reference": "s"}).status_code == 403
        assert pi.put("/accounts/md-lab/credit-limit", json={"amount": "100"}).status_code == 403
        assert uniadmin.put("/accounts/md-lab/exhaustion-policy", json={"policy": "cancel"}).status_code == 403
        assert student.get("/admin/audit").status_code == 403
        assert pi.post("/admin/reprice", json={"job_ids": [1], "reason": "x", "batch": "b"}).status_code == 403
        assert uniadmin.post("/admin/months/2026-10/close").status_code == 403
        # an account you cannot see does not exist for you
        assert stranger.put("/accounts/md-lab/budget", json={"amount": "5"}).status_code == 404
        assert corpadmin.put("/accounts/md-lab/budget", json={"amount": "5"}).status_code == 404
        # the project's own settings: its PI and its tenant's admin, not a member
        assert student.put("/accounts/md-lab/budget", json={"amount": "5"}).status_code == 403
        r = pi.put("/accounts/md-lab/budget", json={"amount": "30.00", "period": "month"})
        assert r.status_code == 200 and r.json()["budget"] == "30.00", r.text
        r = uniadmin.put("/accounts/md-lab/members/student", json={"role": "member", "spend_limit": "2.00"})
        assert r.status_code == 200 and r.json()["spend_limit"] == "2.00", r.text
        assert pi.put("/accounts/md-lab/low-balance", json={"amount": "10.00"}).status_code == 200
        assert pi.put("/accounts/md-lab/budget", json={"amount": "5", "period": "weekly"}).status_code == 400
        # moving money: the tenant's admin between its own accounts
        ops.post("/accounts/uni/topups", json={"amount": "100.00", "reference": "uni-1"})
        assert pi.post("/accounts/uni/moves", json={"to": "md-lab", "amount": "1", "reference": "m0"}).status_code == 404
        r = uniadmin.post("/accounts/uni/moves", json={"to": "md-lab", "amount": "40.00", "reference": "m1"})
        assert r.status_code == 201 and r.json()["to"]["balance"] == "40.00", r.text
        too_much = uniadmin.post("/accounts/uni/moves", json={"to": "md-lab", "amount": "60.01", "reference": "m2"})
        assert too_much.status_code == 402
        assert ops.put("/accounts/md-lab/exhaustion-policy",
                       json={"policy": "hold", "grace_minutes": 15}).json() == {
            "account": "md-lab", "policy": "hold", "grace_minutes": 15}
        assert ops.put("/accounts/md-lab/exhaustion-policy", json={"policy": "panic"}).status_code == 400
        actions = {e["action"] for e in ops.get("/admin/audit").json()}
    assert {"budget.set", "member.set", "low_balance.set", "move", "topup", "exhaustion_policy.set"} <= actions
    with platform.db.session() as session:
        sources = set(session.scalars(select(AuditEvent.source)))
        assert sources == {"api 127.0.0.1"}
        assert ledger.invariant(session) == []


def test_project_budget_caps_spending_apart_from_the_balance(platform, server):
    from conftest import add_user

    _, token = add_user(platform, "carol", balance="100.00")
    with platform.db.session() as session:
        tenants.set_budget(session, accounts.get_account(session, "carol-lab"), "1.20", "month")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        codes = [http.post("/jobs", json={"script": HELD_JOB, "args": []}).status_code for _ in range(3)]
        refused = http.post("/jobs", json={"script": HELD_JOB, "args": []})
    assert codes == [202, 202, 402]  # accepted (POST /jobs returns at once)
    assert "project budget of carol-lab is 1.20 this month" in refused.text
    with platform.db.session() as session:
        account = accounts.get_account(session, "carol-lab")
        assert funds.funds(session, account).available == D("98.80")  # the money is there; the budget says no
        assert tenants.spent_on_account(session, account) == D("1.20")


def test_concurrent_submissions_by_one_member_respect_the_spending_limit(platform, server):
    # the account could pay for 100 jobs; the member may spend 6.00 = 10 jobs this month
    from conftest import add_user

    user_id, token = add_user(platform, "dave", balance="60.00")
    with platform.db.session() as session:
        account = accounts.get_account(session, "dave-lab")
        tenants.set_member(session, account, session.get(accounts.User, user_id), spend_limit="6.00")

    def submit(_):
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
            return http.post("/jobs", json={"script": HELD_JOB, "args": []}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(submit, range(40)))
    assert codes.count(202) == 10 and codes.count(402) == 30, {c: codes.count(c) for c in set(codes)}
    with platform.db.session() as session:
        assert session.scalar(select(func.count(Job.id))) == 10
        assert funds.funds(session, accounts.get_account(session, "dave-lab")).held == D("6.00")
        assert ledger.invariant(session) == []
