"""People's accounts and roles (issue 14, items 1 and 2): /admin/users, role grants that count at
once, suspension and deletion stopping tokens, the audit trail, the CLI, and docs/permissions.md
generated from services/tenancy/roles.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from computenet.api.app import create_app
from computenet.services.tenancy import accounts, grants, roles, tenants
from computenet.services import audit
from computenet.store.models import ApiToken, AuditEvent, User

DOC = Path(__file__).parent.parent / "docs" / "permissions.md"


def test_the_permissions_doc_is_generated_from_the_role_model():
    assert DOC.read_text() == roles.permissions_markdown(), \
        "docs/permissions.md is stale: cnet admin permissions --markdown > docs/permissions.md"
    for role in roles.ROLES:
        assert f"| {role} |" in DOC.read_text()


class World:
    def __init__(self, platform):
        self.platform = platform
        self.client = TestClient(create_app(platform))
        self.tokens = {}
        with platform.db.session() as session:
            uni, other = (tenants.create_tenant(session, n, "university") for n in ("uni", "other"))
            for name, tenant in (("ops", None), ("uadm", uni), ("pat", uni), ("olga", other), ("fin", None)):
                user = accounts.create_user(session, name)
                user.tenant_id = tenant.id if tenant else None
                self.tokens[name] = accounts.issue_token(session, user, "test")
            grants.grant(session, None, audit.SYSTEM, accounts.get_user(session, "ops"), "operator", "first operator")
            grants.grant(session, None, audit.SYSTEM, accounts.get_user(session, "uadm"), "tenant_admin", "uni's IT")
            accounts.get_user(session, "fin").role = "finance"  # the older single-role column still counts
            tenants.create_project(session, uni, "uni-lab", accounts.get_user(session, "pat"))

    def call(self, who: str, method: str, url: str, **kw):
        return self.client.request(method, url, headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kw)


@pytest.fixture
def world(platform) -> World:
    return World(platform)


def _audit(platform, action: str) -> list[AuditEvent]:
    with platform.db.session() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))
        session.expunge_all()
        return rows


def test_an_operator_adds_shows_changes_and_lists_people(world):
    added = world.call("ops", "POST", "/admin/users", json={
        "name": "li", "display_name": "Li Wei", "email": "li@uni.edu.cn", "language": "zh-CN", "tenant": "uni"})
    assert added.status_code == 201, added.text
    assert added.json() | {"created_at": None} == {
        "name": "li", "display_name": "Li Wei", "email": "li@uni.edu.cn", "email_verified": False,
        "language": "zh-CN", "tenant": "uni", "status": "active", "status_reason": "", "created_at": None,
        "roles": [], "projects": [], "unix_identities": []}
    changed = world.call("ops", "PATCH", "/admin/users/li", json={"email_verified": True, "language": "en"})
    assert changed.status_code == 200 and changed.json()["email_verified"] and changed.json()["language"] == "en"
    # a new address is unverified again
    assert world.call("ops", "PATCH", "/admin/users/li", json={"email": "wei@uni.edu.cn"}).json()[
        "email_verified"] is False
    shown = world.call("ops", "GET", "/admin/users/pat").json()
    assert shown["projects"] == [{"account": "uni-lab", "role": "pi"}] and shown["tenant"] == "uni"
    assert [r["role"] for r in world.call("ops", "GET", "/admin/users/ops").json()["roles"]] == ["operator"]
    names = [u["name"] for u in world.call("ops", "GET", "/admin/users?tenant=uni").json()]
    assert names == ["li", "pat", "uadm"]
    [add] = _audit(world.platform, "user.add")
    assert add.actor == "ops" and add.target == "user:li" and add.source.startswith("api ")
    sets = _audit(world.platform, "user.set")
    assert sets[0].detail["email_verified"] == [False, True] and sets[0].detail["language"] == ["zh-CN", "en"]


@pytest.mark.parametrize("body, status, fragment", [
    ({"name": "Bad Name"}, 400, "invalid user name"),
    ({"name": "ok", "email": "not-an-address"}, 400, "invalid e-mail address"),
    ({"name": "ok", "language": "fr"}, 422, "language"),
    ({"name": "ok", "tenant": "nowhere"}, 404, "no tenant 'nowhere'"),
    ({"name": "pat"}, 409, "user 'pat' exists"),
    ({"name": "ok", "display_name": "a\x00b"}, 400, "display name"),
])
def test_bad_people_are_refused_with_the_reason(world, body, status, fragment):
    answer = world.call("ops", "POST", "/admin/users", json=body)
    assert answer.status_code == status and fragment in answer.json()["detail"], answer.text


def test_a_tenant_admin_manages_their_own_tenant_only(world):
    added = world.call("uadm", "POST", "/admin/users", json={"name": "stu"})
    assert added.status_code == 201 and added.json()["tenant"] == "uni"  # their own, unasked
    assert world.call("uadm", "POST", "/admin/users", json={"name": "x", "tenant": "other"}).status_code == 404
    assert [u["name"] for u in world.call("uadm", "GET", "/admin/users").json()] == ["pat", "stu", "uadm"]
    assert world.call("uadm", "GET", "/admin/users/olga").status_code == 404  # not theirs: as if missing
    assert world.call("uadm", "GET", "/admin/users/ops").status_code == 404  # staff are not a tenant's
    moved = world.call("uadm", "PATCH", "/admin/users/stu", json={"tenant": "other"})
    assert moved.status_code == 403 and "operator" in moved.json()["detail"]
    assert world.call("uadm", "POST", "/admin/users/stu/suspend", json={"reason": "left"}).status_code == 200
    # they may make another admin of their tenant, not finance
    assert world.call("uadm", "POST", "/admin/users/pat/roles",
                      json={"role": "tenant_admin", "reason": "deputy"}).status_code == 201
    refused = world.call("uadm", "POST", "/admin/users/pat/roles", json={"role": "finance", "reason": "x"})
    assert refused.status_code == 403 and "operator role" in refused.json()["detail"]


def test_without_a_managing_role_people_are_not_shown(world):
    for who in ("pat", "olga"):
        answer = world.call(who, "GET", "/admin/users")
        assert answer.status_code == 403 and "needs the" in answer.json()["detail"]
        assert world.call(who, "POST", "/admin/users", json={"name": "z"}).status_code == 403
    # finance sees everyone, changes no one
    assert world.call("fin", "GET", "/admin/users/olga").status_code == 200
    assert world.call("fin", "PATCH", "/admin/users/olga", json={"language": "en"}).status_code == 403


def test_a_role_granted_or_revoked_changes_what_the_api_allows_at_once(world):
    assert world.call("pat", "GET", "/admin/audit").status_code == 403
    granted = world.call("ops", "POST", "/admin/users/pat/roles", json={"role": "finance", "reason": "new job"})
    assert granted.status_code == 201, granted.text
    assert world.call("pat", "GET", "/admin/audit").status_code == 200
    topup = {"amount": "1", "reference": "r1"}
    assert world.call("pat", "POST", "/accounts/uni-lab/topups", json=topup).status_code == 201
    assert world.call("ops", "POST", "/admin/users/pat/roles",
                      json={"role": "finance", "reason": "twice"}).status_code == 409
    revoked = world.call("ops", "DELETE", "/admin/users/pat/roles/finance?reason=moved+on")
    assert revoked.status_code == 200, revoked.text
    assert world.call("pat", "GET", "/admin/audit").status_code == 403
    assert world.call("pat", "POST", "/accounts/uni-lab/topups", json=topup | {"reference": "r2"}).status_code == 403
    [g] = [e for e in _audit(world.platform, "role.grant") if e.actor != "system"]  # the world's own are system's
    [r] = _audit(world.platform, "role.revoke")
    assert (g.actor, g.detail["role"], g.detail["reason"]) == ("ops", "finance", "new job")
    assert (r.actor, r.detail["role"], r.detail["reason"]) == ("ops", "finance", "moved on")
    # the older column's role is revoked the same way
    assert world.call("fin", "GET", "/admin/audit").status_code == 200
    assert world.call("ops", "DELETE", "/admin/users/fin/roles/finance?reason=gone").status_code == 200
    assert world.call("fin", "GET", "/admin/audit").status_code == 403


def test_tenant_admin_and_project_roles(world):
    assert world.call("pat", "GET", "/admin/users").status_code == 403
    assert world.call("ops", "POST", "/admin/users/pat/roles", json={"role": "tenant_admin", "tenant": "other",
                                                                    "reason": "x"}).status_code == 400
    assert world.call("ops", "POST", "/admin/users/pat/roles",
                      json={"role": "tenant_admin", "reason": "helps"}).json()["tenant"] == "uni"
    assert world.call("pat", "GET", "/admin/users").status_code == 200
    assert world.call("ops", "DELETE", "/admin/users/pat/roles/tenant_admin?reason=done").status_code == 200
    assert world.call("pat", "GET", "/admin/users").status_code == 403
    # a project role is a membership: olga becomes a member, then PI, then leaves
    assert world.call("ops", "POST", "/admin/users/olga/roles", json={"role": "pi", "project": "uni-lab",
                                                                     "reason": "co-PI"}).status_code == 201
    assert world.call("olga", "PUT", "/accounts/uni-lab/budget", json={"amount": None}).status_code == 200
    assert world.call("ops", "DELETE", "/admin/users/olga/roles/pi?project=uni-lab&reason=x").status_code == 200
    assert world.call("olga", "PUT", "/accounts/uni-lab/budget", json={"amount": None}).status_code == 403
    assert world.call("ops", "DELETE", "/admin/users/olga/roles/member?project=uni-lab&reason=x").status_code == 200
    assert world.call("olga", "PUT", "/accounts/uni-lab/budget", json={"amount": None}).status_code == 404


@pytest.mark.parametrize("body, status, fragment", [
    ({"role": "wizard", "reason": "x"}, 400, "unknown role 'wizard'"),
    ({"role": "user", "reason": "x"}, 400, "everyone signed in is a user"),
    ({"role": "finance"}, 422, "reason"),
    ({"role": "finance", "reason": ""}, 422, "reason"),
    ({"role": "finance", "tenant": "uni", "reason": "x"}, 400, "platform-wide"),
    ({"role": "pi", "reason": "x"}, 400, "name the project"),
    ({"role": "member", "project": "no-such", "reason": "x"}, 404, "no account 'no-such'"),
])
def test_bad_grants_are_refused_with_the_reason(world, body, status, fragment):
    answer = world.call("ops", "POST", "/admin/users/pat/roles", json=body)
    assert answer.status_code == status and fragment in answer.text, answer.text


def test_suspended_and_deleted_people_cannot_use_their_tokens(world):
    assert world.call("pat", "GET", "/accounts/me").status_code == 200
    assert world.call("ops", "POST", "/admin/users/pat/suspend", json={}).status_code == 422  # a reason is needed
    assert world.call("ops", "POST", "/admin/users/pat/suspend", json={"reason": "unpaid"}).json()["status"] == \
        "suspended"
    refused = world.call("pat", "GET", "/accounts/me")
    assert refused.status_code == 401 and "suspended" in refused.json()["detail"]
    assert world.call("ops", "POST", "/admin/users/pat/suspend", json={"reason": "again"}).status_code == 409
    assert world.call("ops", "POST", "/admin/users/pat/reinstate", json={"reason": "paid"}).status_code == 200
    assert world.call("pat", "GET", "/accounts/me").status_code == 200
    deleted = world.call("ops", "POST", "/admin/users/pat/delete", json={"reason": "left the university"})
    assert deleted.status_code == 200 and deleted.json()["projects"] == []
    assert world.call("pat", "GET", "/accounts/me").status_code == 401
    assert world.call("ops", "POST", "/admin/users/pat/reinstate", json={"reason": "x"}).status_code == 409
    again = world.call("ops", "POST", "/admin/users", json={"name": "pat"})
    assert again.status_code == 409 and "deleted" in again.json()["detail"]
    with world.platform.db.session() as session:
        assert all(t.revoked_at is not None for t in session.scalars(select(ApiToken).join(User).where(
            User.name == "pat")))
        assert session.scalar(select(User).where(User.name == "pat")) is not None  # the history stays
    assert [e.detail["reason"] for e in _audit(world.platform, "user.suspend")] == ["unpaid"]
    assert len(_audit(world.platform, "user.delete")) == 1
    # no one suspends or demotes themself
    assert world.call("ops", "POST", "/admin/users/ops/suspend", json={"reason": "x"}).status_code == 400
    assert world.call("ops", "DELETE", "/admin/users/ops/roles/operator?reason=x").status_code == 400


def _cnet(tmp_path, db_url, *args, input=None):
    from typer.testing import CliRunner

    from computenet.cli.main import app

    env = {k: None for k in os.environ if k.startswith("COMPUTENET_")}
    env.update(COMPUTENET_DATA_DIR=str(tmp_path), COMPUTENET_DATABASE_URL=db_url, COLUMNS="200")
    return CliRunner().invoke(app, list(args), env=env, input=input)


def test_the_cli_manages_people_and_roles(tmp_path, db_url, clean_db):
    def ok(*args):
        result = _cnet(tmp_path, db_url, *args)
        assert result.exit_code == 0, result.output
        return result.output

    ok("admin", "tenant-add", "uni", "--segment", "university")
    ok("admin", "user-add", "ana")  # the old command keeps working
    ok("admin", "user", "add", "bo", "--display-name", "Bo Li", "--email", "bo@uni.cn", "--tenant", "uni",
       "--language", "zh-CN")
    ok("admin", "user", "set", "ana", "--tenant", "uni", "--email", "ana@uni.cn", "--email-verified")
    assert "tenant_admin of uni" in ok("admin", "role", "grant", "ana", "tenant_admin", "--reason", "IT")
    shown = ok("admin", "user", "show", "ana")
    assert "ana@uni.cn> (verified)" in shown and "roles: tenant_admin of uni" in shown
    assert "bo" in ok("admin", "user", "list", "--tenant", "uni")
    ok("admin", "user", "suspend", "bo", "--reason", "holiday")
    assert "suspended (holiday)" in ok("admin", "user", "show", "bo")
    ok("admin", "user", "reinstate", "bo", "--reason", "back")
    ok("admin", "role", "revoke", "ana", "tenant_admin", "--reason", "left IT")
    ok("admin", "user", "delete", "bo", "--reason", "gone")
    bad = _cnet(tmp_path, db_url, "admin", "role", "grant", "ana", "finance")
    assert bad.exit_code != 0 and "--reason" in bad.output
    bad = _cnet(tmp_path, db_url, "admin", "user", "set", "ana", "--language", "fr")
    assert bad.exit_code == 1 and "unknown language 'fr'" in bad.output
    bad = _cnet(tmp_path, db_url, "admin", "token", "bo")
    assert bad.exit_code == 1 and "deleted" in bad.output
    with clean_db.session() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert {"user.add", "user.set", "role.grant", "user.suspend", "user.reinstate", "role.revoke",
                "user.delete"} <= set(actions)
        assert all(e.actor.endswith("@cli") for e in session.scalars(select(AuditEvent)))
    assert ok("admin", "permissions", "--markdown") == DOC.read_text()


def test_the_migration_carries_the_older_role_column_into_grants(tmp_path):
    import sqlalchemy

    from conftest import database_at

    db = database_at(tmp_path, "0010")
    with db.engine.begin() as conn:
        conn.execute(sqlalchemy.text("INSERT INTO tenants (id, name, segment, created_at) "
                                     "VALUES (7, 'uni', 'university', '2025-01-01 00:00:00')"))
        for name, role, tenant in (("fay", "finance", "NULL"), ("tim", "tenant_admin", "7"), ("ulf", "user", "7")):
            conn.execute(sqlalchemy.text("INSERT INTO users (name, is_admin, role, tenant_id, created_at) "
                                         f"VALUES ('{name}', 0, '{role}', {tenant}, '2025-01-01 00:00:00')"))
    db.migrate()
    with db.session() as session:
        held = {u.name: (u.role, roles.platform_roles(u), u.status) for u in session.scalars(select(User))}
    assert held == {"fay": ("user", {("finance", None)}, "active"), "tim": ("user", {("tenant_admin", 7)}, "active"),
                    "ulf": ("user", set(), "active")}
    db.dispose()


def test_leaving_a_tenant_ends_administering_it(world):
    assert world.call("uadm", "GET", "/admin/users").status_code == 200
    moved = world.call("ops", "PATCH", "/admin/users/uadm", json={"tenant": "other"})
    assert moved.status_code == 200 and moved.json()["roles"] == [] and moved.json()["tenant"] == "other"
    assert world.call("uadm", "GET", "/admin/users").status_code == 403
    assert world.call("ops", "PATCH", "/admin/users/uadm", json={"tenant": "nowhere"}).status_code == 404
    assert world.call("ops", "PATCH", "/admin/users/uadm", json={"email": "a\x00@b.cn"}).status_code == 400
