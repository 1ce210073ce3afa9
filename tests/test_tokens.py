"""API tokens: expiry (default and maximum configured), scopes, listing and revocation by the owner and by
operators (API and CLI), last use noted at most once a minute (issue 13, item 10)."""

import os
from datetime import timedelta

import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from computenet.api.app import create_app
from computenet.config import AuthConfig
from computenet.services.tenancy import accounts, tokens
from computenet.store.models import ApiToken
from computenet.store.types import utcnow

from conftest import add_user


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(make_platform):
    platform = make_platform(auth=AuthConfig(token_default_days=7, token_max_days=30))
    _, alice = add_user(platform, "alice")
    _, bob = add_user(platform, "bob")
    with platform.db.session() as session:
        ops = accounts.create_user(session, "ops")
        ops.role = "operator"
        operator = accounts.issue_token(session, ops, "ops")
    return platform, TestClient(create_app(platform)), {"alice": alice, "bob": bob, "ops": operator}


def _row(platform, token: str) -> ApiToken:
    with platform.db.session() as session:
        return session.scalar(select(ApiToken).where(ApiToken.token_hash == tokens.hash_token(token)))


def test_a_token_expires_after_the_configured_default_and_never_beyond_the_maximum(api):
    platform, client, t = api
    made = client.post("/tokens", headers=_bearer(t["alice"]), json={"name": "laptop"})
    assert made.status_code == 201, made.text
    life = _row(platform, made.json()["token"]).expires_at - utcnow()
    assert timedelta(days=7) - timedelta(minutes=1) < life <= timedelta(days=7)
    too_long = client.post("/tokens", headers=_bearer(t["alice"]), json={"expires_in_days": 31})
    assert too_long.status_code == 400 and "1 to 30 days" in too_long.json()["detail"]
    with platform.db.session() as session:  # time passes
        row = session.get(ApiToken, made.json()["id"])
        row.expires_at = utcnow() - timedelta(seconds=1)
    refused = client.get("/accounts/me", headers=_bearer(made.json()["token"]))
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]
    assert client.get("/accounts/me", headers=_bearer(t["alice"])).status_code == 200


def test_a_read_only_token_reads_and_gets_403_on_any_change(api):
    platform, client, t = api
    made = client.post("/tokens", headers=_bearer(t["alice"]), json={"scope": "read", "name": "dashboard"})
    read = _bearer(made.json()["token"])
    assert made.json()["scope"] == "read"
    assert client.get("/accounts/me", headers=read).status_code == 200
    assert client.get("/jobs", headers=read).status_code == 200
    own_id = made.json()["id"]
    for method, path, body in (("POST", "/jobs", {"script": "#!/bin/bash\ntrue\n"}),
                               ("PUT", "/accounts/alice-lab/budget", {"amount": "1"}),
                               ("POST", "/tokens", {}), ("DELETE", f"/tokens/{own_id}", None),
                               ("PUT", "/files/content?path=x.txt", None), ("POST", "/files/mkdir", {"path": "d"}),
                               ("DELETE", "/files?path=x", None), ("POST", "/jobs/1/cancel", None)):
        answer = client.request(method, path, headers=read, json=body)
        assert answer.status_code == 403 and "read-only" in answer.json()["detail"], (method, path, answer.text)
    assert client.get("/jobs", headers=_bearer(t["alice"])).json() == []  # nothing was submitted


def test_the_owner_lists_and_revokes_their_tokens(api):
    platform, client, t = api
    spare = client.post("/tokens", headers=_bearer(t["alice"]), json={"name": "spare"}).json()
    listed = client.get("/tokens", headers=_bearer(t["alice"])).json()
    assert {r["name"]: r["current"] for r in listed} == {"test": True, "spare": False}
    assert all("token" not in r and "token_hash" not in r and r["state"] == "active" for r in listed)
    assert all(r["user"] == "alice" for r in listed)
    # someone else's token answers as a missing one
    bob_sees = client.delete(f"/tokens/{spare['id']}", headers=_bearer(t["bob"]))
    missing = client.delete("/tokens/987654", headers=_bearer(t["bob"]))
    assert bob_sees.status_code == missing.status_code == 404
    assert bob_sees.json()["detail"].replace(str(spare["id"]), "N") == missing.json()["detail"].replace("987654", "N")
    revoked = client.delete(f"/tokens/{spare['id']}", headers=_bearer(t["alice"]))
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert _row(platform, spare["token"]).revoked_at is not None
    refused = client.get("/accounts/me", headers=_bearer(spare["token"]))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert [r["name"] for r in client.get("/tokens", headers=_bearer(t["alice"])).json()] == ["test"]
    everything = client.get("/tokens?include_revoked=true", headers=_bearer(t["alice"])).json()
    assert {r["name"]: r["state"] for r in everything} == {"test": "active", "spare": "revoked"}


def test_operators_list_and_revoke_anyones_tokens(api):
    platform, client, t = api
    assert client.get("/admin/tokens", headers=_bearer(t["alice"])).status_code == 403
    bobs = client.get("/admin/tokens?user=bob", headers=_bearer(t["ops"])).json()
    assert [r["user"] for r in bobs] == ["bob"]
    assert client.delete(f"/admin/tokens/{bobs[0]['id']}", headers=_bearer(t["alice"])).status_code == 403
    gone = client.delete(f"/admin/tokens/{bobs[0]['id']}", headers=_bearer(t["ops"]))
    assert gone.status_code == 200 and gone.json()["revoked_at"]
    assert client.get("/accounts/me", headers=_bearer(t["bob"])).status_code == 401
    assert {r["user"] for r in client.get("/admin/tokens", headers=_bearer(t["ops"])).json()} == {"alice", "ops"}


def test_last_use_is_noted_at_most_once_a_minute(api):
    platform, client, t = api
    assert _row(platform, t["alice"]).last_used_at is None
    updates = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            updates.append(statement)

    event.listen(platform.db.engine, "before_cursor_execute", count)
    try:
        for _ in range(20):
            assert client.get("/accounts/me", headers=_bearer(t["alice"])).status_code == 200
    finally:
        event.remove(platform.db.engine, "before_cursor_execute", count)
    assert len(updates) == 1  # twenty requests, one write
    first = _row(platform, t["alice"]).last_used_at
    assert first is not None and utcnow() - first < timedelta(minutes=1)
    with platform.db.session() as session:
        session.scalar(select(ApiToken).where(ApiToken.id == _row(platform, t["alice"]).id)).last_used_at = \
            utcnow() - timedelta(minutes=2)
    client.get("/accounts/me", headers=_bearer(t["alice"]))
    assert utcnow() - _row(platform, t["alice"]).last_used_at < timedelta(seconds=30)


def _cnet(tmp_path, db_url, *args):
    """`cnet` in this process (a new interpreter per command costs seconds), configured by environment."""
    from typer.testing import CliRunner

    from computenet.cli.main import app

    env = {k: None for k in os.environ if k.startswith("COMPUTENET_")}
    env.update(COMPUTENET_DATA_DIR=str(tmp_path), COMPUTENET_DATABASE_URL=db_url,
               COMPUTENET_AUTH__TOKEN_DEFAULT_DAYS="3", COLUMNS="200")
    result = CliRunner().invoke(app, list(args), env=env)
    result.returncode = result.exit_code
    return result


def test_operators_manage_tokens_from_the_cli(tmp_path, db_url, clean_db):
    assert _cnet(tmp_path, db_url, "admin", "user-add", "cara").returncode == 0
    old_style = _cnet(tmp_path, db_url, "admin", "token", "cara")  # `cnet admin token` keeps working
    assert old_style.returncode == 0, old_style.output
    read = _cnet(tmp_path, db_url, "admin", "tokens", "issue", "cara", "--scope", "read", "--name", "grafana")
    assert read.returncode == 0, read.output
    with clean_db.session() as session:
        rows = {r.name: r for r in session.scalars(select(ApiToken))}
        assert rows["grafana"].scope == "read"
        assert timedelta(days=3) - timedelta(minutes=5) < rows["grafana"].expires_at - utcnow() <= timedelta(days=3)
        assert accounts.authenticate(session, old_style.stdout.strip()).name == "cara"
        grafana = rows["grafana"].id
    listed = _cnet(tmp_path, db_url, "admin", "tokens", "list", "--user", "cara")
    assert listed.returncode == 0 and "grafana" in listed.stdout and "read" in listed.stdout, listed.stdout
    assert _cnet(tmp_path, db_url, "admin", "tokens", "revoke", str(grafana)).returncode == 0
    with clean_db.session() as session:
        assert session.get(ApiToken, grafana).revoked_at is not None
    assert "grafana" not in _cnet(tmp_path, db_url, "admin", "tokens", "list").stdout


def test_users_manage_their_tokens_from_the_cli(alice, tmp_path):
    from typer.testing import CliRunner

    from computenet.cli.main import app

    env = {"COMPUTENET_URL": str(alice.http.base_url), "COMPUTENET_TOKEN": alice.http.headers["Authorization"][7:],
           "XDG_CONFIG_HOME": str(tmp_path), "COLUMNS": "200"}
    runner = CliRunner()
    made = runner.invoke(app, ["tokens", "create", "--name", "ci", "--scope", "read", "--days", "2"], env=env)
    assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["tokens", "list"], env=env)
    assert "ci" in listed.output and "read" in listed.output
    token_id = next(r["id"] for r in alice._call("GET", "/tokens") if r["name"] == "ci")
    assert runner.invoke(app, ["tokens", "revoke", str(token_id)], env=env).exit_code == 0
    assert "ci" not in runner.invoke(app, ["tokens", "list"], env=env).output


def test_the_migration_keeps_existing_tokens_working_for_a_year(tmp_path):
    """Tokens issued before expiry existed get scope full and 365 days from the upgrade (0008's policy)."""
    from conftest import database_at

    db = database_at(tmp_path, "0007")
    with db.engine.begin() as conn:
        conn.execute(sqlalchemy.text("INSERT INTO users (name, is_admin, role, created_at) "
                                     "VALUES ('old', 0, 'user', '2025-01-01 00:00:00')"))
        conn.execute(sqlalchemy.text(
            "INSERT INTO api_tokens (user_id, token_hash, prefix, name, created_at) "
            f"VALUES (1, '{tokens.hash_token('cnet_old')}', 'cnet_old', 'cli', '2025-01-01 00:00:00')"))
    db.migrate()
    with db.session() as session:
        assert accounts.authenticate(session, "cnet_old").name == "old"
        row = session.scalar(select(ApiToken))
        assert row.scope == "full"
        assert timedelta(days=364) < row.expires_at - utcnow() <= timedelta(days=365)
    db.dispose()
