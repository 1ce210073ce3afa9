"""Signing in with a local password (issue 14, items 3-6): argon2 hashes, the policy, lockout per
login and per client address, browser sessions (cookie attributes, CSRF, idle and absolute timeouts,
the session list, sign out everywhere), `cnet login`'s rotating refresh tokens, operator and e-mail
resets, e-mail address checks, and the audit trail of each."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from computenet.api.app import create_app
from computenet.config import AuthConfig, NotificationsConfig
from computenet.services.tenancy import accounts, grants, tenants, users
from computenet.services import audit
from computenet.services.signin import passwords
from computenet.store.auth_models import PasswordCredential, SignInAttempt, WebSession
from computenet.store.models import AuditEvent, User
from computenet.store.types import utcnow

from mail_server import smtp_server  # noqa: F401 (a fixture)

GOOD = "Correct-Horse-7"
OTHER = "Battery-Staple-8"


def _people(platform) -> dict[str, str]:
    """ops (operator), alice and tad (tenant uni; tad its admin), olga (tenant other), each with a
    local password; bob without one. Returns personal API tokens."""
    made = {}
    with platform.db.session() as session:
        uni, other = (tenants.create_tenant(session, n, "university") for n in ("uni", "other"))
        for name, tenant in (("ops", None), ("alice", uni), ("tad", uni), ("olga", other), ("bob", uni)):
            user = accounts.create_user(session, name, email=f"{name}@uni.example")
            user.tenant_id = tenant.id if tenant else None
            made[name] = accounts.issue_token(session, user, "personal")
            if name != "bob":
                passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)
        grants.grant(session, None, audit.SYSTEM, accounts.get_user(session, "ops"), "operator", "first operator")
        grants.grant(session, None, audit.SYSTEM, accounts.get_user(session, "tad"), "tenant_admin", "uni's IT")
    return made


@pytest.fixture
def site(make_platform):
    platform = make_platform(auth=AuthConfig(lockout_failures=3, client_lockout_failures=6))
    tokens = _people(platform)
    return platform, TestClient(create_app(platform)), tokens


def _login(client, login="alice", password=GOOD):
    return client.post("/auth/login", json={"login": login, "password": password})


def _audit(platform, action):
    with platform.db.session() as session:
        return [(e.actor, e.target, e.detail) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


@pytest.mark.real_argon2
def test_passwords_are_stored_as_argon2id_hashes_only(site):
    platform, _, _ = site
    with platform.db.session() as session:
        row = session.get(PasswordCredential, accounts.get_user(session, "alice").id)
        # argon2-cffi's current defaults (RFC 9106's second recommendation): 64 MiB, 3 passes
        assert row.hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and GOOD not in row.hash


def test_a_password_sign_in_gives_an_httponly_samesite_session_and_a_csrf_token(site):
    platform, client, _ = site
    answer = _login(client)
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("cnet_session=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http here: a Secure cookie would never come back
    csrf = answer.json()["csrf_token"]
    me = client.get("/auth/session")
    assert me.status_code == 200 and me.json()["user"] == "alice" and me.json()["csrf_token"] == csrf
    assert client.get("/jobs").status_code == 200  # the session is a way in to the whole API
    # over TLS (or behind a proxy that says so) the cookie is Secure
    over_tls = TestClient(create_app(platform), base_url="https://portal.example")
    assert "Secure" in _login(over_tls).headers["set-cookie"]
    proxied = client.post("/auth/login", json={"login": "alice", "password": GOOD},
                          headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in proxied.headers["set-cookie"]


def test_wrong_password_and_unknown_user_get_the_same_answer_and_are_recorded(site):
    platform, client, _ = site
    wrong, unknown = _login(client, password=OTHER), _login(client, login="nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "unknown user or wrong password"
    no_password = _login(client, login="bob")  # bob has no local password and there is no directory
    assert no_password.status_code == 401 and no_password.json() == wrong.json()
    with platform.db.session() as session:
        tries = [(a.login, a.ok, a.reason) for a in session.scalars(select(SignInAttempt).order_by(SignInAttempt.id))]
    assert tries == [("alice", False, "bad_password"), ("nobody", False, "bad_password"),
                     ("bob", False, "bad_password")]


def test_state_changes_by_session_need_the_csrf_token(site):
    _, client, _ = site
    csrf = _login(client).json()["csrf_token"]
    refused = client.post("/tokens", json={"name": "x", "expires_in_days": 1})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    forged = client.post("/tokens", json={"name": "x", "expires_in_days": 1}, headers={"X-CSRF-Token": csrf[:-2] + "zz"})
    assert forged.status_code == 403
    assert client.post("/tokens", json={"name": "x", "expires_in_days": 1},
                       headers={"X-CSRF-Token": csrf}).status_code == 201
    assert client.get("/tokens").status_code == 200  # reading needs no token


def test_repeated_failures_lock_the_login_until_an_operator_unlocks_it(site):
    platform, client, tokens = site
    for _ in range(3):
        assert _login(client, password=OTHER).status_code == 401
    locked = _login(client)  # the right password, but too late
    assert locked.status_code == 429 and "too many failed sign-ins" in locked.json()["detail"]
    assert _login(client, login="olga").status_code == 200  # others sign in as before
    # a tenant admin of another tenant may not unlock alice; an operator may
    olga_admin = client.post("/admin/users/alice/unlock", headers={"Authorization": f"Bearer {tokens['olga']}"})
    assert olga_admin.status_code in (403, 404)
    unlocked = client.post("/admin/users/alice/unlock", headers={"Authorization": f"Bearer {tokens['ops']}"})
    assert unlocked.status_code == 200
    assert _login(client).status_code == 200
    assert _audit(platform, "user.unlock") == [("ops", "user:alice", {})]


def test_the_lock_ends_by_itself_after_lockout_minutes(site):
    platform, client, _ = site
    for _ in range(3):
        _login(client, password=OTHER)
    assert _login(client).status_code == 429
    with platform.db.session() as session:  # as if the failures were 16 minutes ago
        session.execute(update(SignInAttempt).values(at=utcnow() - timedelta(minutes=16)))
    assert _login(client).status_code == 200


def test_many_failures_from_one_address_lock_that_address_for_every_login(site):
    _, client, _ = site
    for name in ("u1", "u2", "u3", "u4", "u5", "u6"):  # one guess at each of many logins
        assert _login(client, login=name, password=OTHER).status_code == 401
    assert _login(client, login="olga").status_code == 429  # a good password, from that address
    # a success does not reset an address's count (an attacker would sign in to their own account)
    assert _login(client, login="tad").status_code == 429


def _age(platform, **values):
    with platform.db.session() as session:
        session.execute(update(WebSession).values(**values))


def test_an_idle_session_ends(site):
    platform, client, _ = site
    _login(client)
    _age(platform, last_seen_at=utcnow() - timedelta(minutes=31))
    answer = client.get("/auth/session")
    assert answer.status_code == 401 and "idle" in answer.json()["detail"]
    _age(platform, last_seen_at=utcnow())  # ended for good, not only while idle
    assert client.get("/auth/session").status_code == 401


def test_a_session_ends_at_its_absolute_timeout_even_when_used(site):
    platform, client, _ = site
    _login(client)
    _age(platform, expires_at=utcnow() - timedelta(seconds=1))
    answer = client.get("/auth/session")
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]


def test_tampered_or_unknown_cookies_are_refused(site):
    _, client, _ = site
    _login(client)
    secret = client.cookies.get("cnet_session")
    client.cookies.set("cnet_session", secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert client.get("/auth/session").status_code == 401
    client.cookies.set("cnet_session", "x" * 5000)
    assert client.get("/auth/session").status_code == 401


def test_a_user_lists_their_sessions_and_signs_one_out(site):
    platform, laptop, _ = site
    phone = TestClient(create_app(platform))
    csrf = _login(laptop).json()["csrf_token"]
    _login(phone)
    listed = laptop.get("/auth/sessions").json()
    assert len(listed) == 2 and [s["current"] for s in listed] == [False, True]
    phone_id = listed[0]["id"]
    assert laptop.delete(f"/auth/sessions/{phone_id}").status_code == 403  # CSRF
    assert laptop.delete(f"/auth/sessions/{phone_id}", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert phone.get("/auth/session").status_code == 401
    assert laptop.get("/auth/session").status_code == 200
    # another user's session is not theirs to end
    other = TestClient(create_app(platform))
    olga_csrf = _login(other, login="olga").json()["csrf_token"]
    mine = laptop.get("/auth/sessions").json()[0]["id"]
    assert other.delete(f"/auth/sessions/{mine}", headers={"X-CSRF-Token": olga_csrf}).status_code == 404
    assert [a[0] for a in _audit(platform, "session.revoke")] == ["alice"]


def test_sign_out_everywhere_ends_sessions_and_cli_logins_but_not_personal_tokens(site):
    platform, client, tokens = site
    other_browser = TestClient(create_app(platform))
    _login(other_browser)
    cli = client.post("/auth/token", json={"grant_type": "password", "login": "alice", "password": GOOD}).json()
    csrf = _login(client).json()["csrf_token"]
    ended = client.post("/auth/logout-everywhere", headers={"X-CSRF-Token": csrf})
    assert ended.status_code == 200 and ended.json() == {"sessions": 2, "refresh_tokens": 1, "login_tokens": 1}
    assert other_browser.get("/auth/session").status_code == 401
    assert client.get("/auth/session").status_code == 401
    bearer = TestClient(create_app(platform))
    assert bearer.get("/jobs", headers={"Authorization": f"Bearer {cli['access_token']}"}).status_code == 401
    assert bearer.post("/auth/token", json={"grant_type": "refresh_token",
                                            "refresh_token": cli["refresh_token"]}).status_code == 401
    assert bearer.get("/jobs", headers={"Authorization": f"Bearer {tokens['alice']}"}).status_code == 200


def test_logout_ends_this_session_only(site):
    platform, client, _ = site
    other = TestClient(create_app(platform))
    _login(other)
    csrf = _login(client).json()["csrf_token"]
    assert client.post("/auth/logout", headers={"X-CSRF-Token": csrf}).json()["session"] is True
    assert client.get("/auth/session").status_code == 401
    assert other.get("/auth/session").status_code == 200


def test_cli_login_tokens_refresh_by_rotation_and_a_replay_ends_the_sign_in(site):
    platform, client, _ = site
    first = client.post("/auth/token", json={"grant_type": "password", "login": "alice", "password": GOOD})
    assert first.status_code == 200, first.text
    pair = first.json()
    assert pair["expires_in"] == 3600 and pair["refresh_token"].startswith("cnr_")
    assert client.get("/jobs", headers={"Authorization": f"Bearer {pair['access_token']}"}).status_code == 200
    second = client.post("/auth/token", json={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
    assert second.status_code == 200 and second.json()["refresh_token"] != pair["refresh_token"]
    replay = client.post("/auth/token", json={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    # the thief's replay ended the newer token too: the whole sign-in is over
    assert client.post("/auth/token", json={"grant_type": "refresh_token",
                                            "refresh_token": second.json()["refresh_token"]}).status_code == 401
    assert client.post("/auth/token", json={"grant_type": "refresh_token", "refresh_token": "cnr_nonsense"}
                       ).status_code == 401
    assert client.post("/auth/token", json={"grant_type": "refresh_token"}).status_code == 422
    assert client.post("/auth/token", json={"grant_type": "password", "login": "alice"}).status_code == 422


def test_a_suspended_user_is_signed_out_and_cannot_sign_in(site):
    platform, client, _ = site
    _login(client)
    cli = client.post("/auth/token", json={"grant_type": "password", "login": "alice", "password": GOOD}).json()
    with platform.db.session() as session:
        users.set_status(session, None, audit.SYSTEM, accounts.get_user(session, "alice"), "suspend", "unpaid bills")
    assert client.get("/auth/session").status_code == 401
    refreshed = client.post("/auth/token", json={"grant_type": "refresh_token", "refresh_token": cli["refresh_token"]})
    assert refreshed.status_code == 403 and "suspended" in refreshed.json()["detail"]
    again = _login(client)
    assert again.status_code == 403 and "suspended: unpaid bills" in again.json()["detail"]
    assert _login(client, password=OTHER).status_code == 401  # a wrong password learns nothing of the status


def test_a_role_granted_or_revoked_counts_at_once_for_a_browser_session(site):
    platform, client, _ = site
    _login(client)
    assert client.get("/admin/users").status_code == 403
    with platform.db.session() as session:
        grants.grant(session, None, audit.SYSTEM, accounts.get_user(session, "alice"), "operator", "on call")
    assert client.get("/admin/users").status_code == 200
    with platform.db.session() as session:
        grants.revoke(session, None, audit.SYSTEM, accounts.get_user(session, "alice"), "operator", "off call")
    assert client.get("/admin/users").status_code == 403


def test_an_operators_temporary_password_must_be_changed_before_use(site):
    platform, client, tokens = site
    ops = {"Authorization": f"Bearer {tokens['ops']}"}
    given = client.post("/admin/users/bob/password", json={"how": "temporary"}, headers=ops)
    assert given.status_code == 200 and given.json()["must_change"] is True
    temporary = given.json()["temporary_password"]
    blocked = _login(client, login="bob", password=temporary)
    assert blocked.status_code == 403 and "must be changed" in blocked.json()["detail"]
    weak = client.post("/auth/password", json={"login": "bob", "current_password": temporary, "new_password": "short"})
    assert weak.status_code == 400 and "at least 10 characters" in weak.json()["detail"]
    changed = client.post("/auth/password", json={"login": "bob", "current_password": temporary,
                                                  "new_password": OTHER})
    assert changed.status_code == 200
    assert _login(client, login="bob", password=temporary).status_code == 401
    assert _login(client, login="bob", password=OTHER).status_code == 200
    # a tenant admin sets passwords in their tenant only
    tad = {"Authorization": f"Bearer {tokens['tad']}"}
    assert client.post("/admin/users/alice/password", json={"how": "temporary"}, headers=tad).status_code == 200
    assert client.post("/admin/users/olga/password", json={"how": "temporary"}, headers=tad).status_code == 404
    assert client.post("/admin/users/olga/password", json={"how": "temporary"},
                       headers={"Authorization": f"Bearer {tokens['alice']}"}).status_code == 403
    assert [(a, t) for a, t, _ in _audit(platform, "password.set")][-3:] == [
        ("ops", "user:bob"), ("bob", "user:bob"), ("tad", "user:alice")]


@pytest.mark.parametrize("password, why", [
    ("Sh0rt!", "at least 10 characters"),
    ("alllowercaseletters", "characters of 3 kinds"),
    ("Alice-Rules-2026", "contain the login name"),
    ("Password-2026!", "too easy to guess"),
    ("Ab1!" + "\x07" * 8, "control characters"),
])
def test_the_password_policy_names_the_rule_broken(site, password, why):
    _, client, _ = site
    answer = client.post("/auth/password", json={"login": "alice", "current_password": GOOD, "new_password": password})
    assert answer.status_code == 400 and why in answer.json()["detail"]


def test_a_long_passphrase_needs_no_mix_of_kinds(site):
    _, client, _ = site
    answer = client.post("/auth/password", json={"login": "alice", "current_password": GOOD,
                                                 "new_password": "purple mountains under rain"})
    assert answer.status_code == 200


def test_a_reset_link_by_email_works_once_and_tells_nobody_who_exists(make_platform, smtp_server):
    platform = make_platform(notifications=NotificationsConfig(smtp_host="127.0.0.1", smtp_port=smtp_server.port),
                             auth=AuthConfig(public_url="https://hpc.example.edu"))
    _people(platform)
    client = TestClient(create_app(platform))
    asked = client.post("/auth/password/forgot", json={"login": "alice"})
    nobody = client.post("/auth/password/forgot", json={"login": "nobody"})
    assert asked.status_code == nobody.status_code == 202 and asked.json() == nobody.json()
    [mail] = smtp_server.parsed()
    assert mail["To"] == "alice@uni.example"
    token = re.search(r"https://hpc\.example\.edu/password/reset\?token=(\S+)", mail.get_content()).group(1)
    client.post("/auth/password/forgot", json={"login": "alice"})
    assert len(smtp_server.messages) == 1  # one mail a minute at most
    reset = client.post("/auth/password/reset", json={"token": token, "new_password": OTHER})
    assert reset.status_code == 200
    assert _login(client, password=OTHER).status_code == 200
    again = client.post("/auth/password/reset", json={"token": token, "new_password": GOOD + "x"})
    assert again.status_code == 400 and "not valid" in again.json()["detail"]
    assert client.post("/auth/password/reset", json={"token": "made-up", "new_password": GOOD}).status_code == 400


def test_an_expired_reset_link_is_refused(make_platform):
    platform = make_platform()
    _people(platform)
    with platform.db.session() as session:
        token = passwords.make_link(session, accounts.get_user(session, "alice"), "reset", platform.settings.auth)
        session.execute(update(passwords.PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
    answer = TestClient(create_app(platform)).post("/auth/password/reset", json={"token": token, "new_password": OTHER})
    assert answer.status_code == 400


def test_an_email_address_is_verified_by_its_link(make_platform, smtp_server):
    platform = make_platform(notifications=NotificationsConfig(smtp_host="127.0.0.1", smtp_port=smtp_server.port))
    tokens = _people(platform)
    client = TestClient(create_app(platform))
    bearer = {"Authorization": f"Bearer {tokens['alice']}"}
    assert client.post("/auth/email/verify", headers=bearer).status_code == 202
    token = re.search(r"/email/verify\?token=(\S+)", smtp_server.parsed()[0].get_content()).group(1)
    confirmed = client.post("/auth/email/confirm", json={"token": token})
    assert confirmed.status_code == 200 and confirmed.json()["email_verified"] is True
    assert client.post("/auth/email/verify", headers=bearer).json()["detail"].endswith("already verified")
    assert _audit(platform, "user.set")[-1][2] == {"email_verified": [False, True]}


@pytest.mark.parametrize("body", [
    {"login": "", "password": GOOD},
    {"login": "alice\x00", "password": GOOD},
    {"login": "a" * 256, "password": GOOD},
    {"login": "alice", "password": ""},
    {"login": "alice", "password": "x" * 257},
    {"login": "alice"},
    {"login": 7, "password": GOOD},
])
def test_malformed_sign_ins_are_a_4xx_naming_the_problem(site, body):
    _, client, _ = site
    answer = client.post("/auth/login", json=body)
    assert answer.status_code == 422 and answer.json()["detail"]


def test_sign_in_methods_are_listed_without_secrets(site):
    _, client, _ = site
    methods = client.get("/auth/methods").json()
    assert methods["password"] is True and methods["ldap"] is False and methods["oidc"] == []
    assert methods["password_policy"]["min_length"] == 10


def test_the_server_refuses_to_start_with_a_mapping_to_an_unknown_tenant(tmp_path, db_url, clean_db):
    import os
    import subprocess
    import sys
    from pathlib import Path

    config = tmp_path / "config.toml"
    config.write_text(f'database_url = "{db_url}"\n\n[auth.ldap]\nurl = "ldap://127.0.0.1:1"\n'
                      'user_base = "ou=people,dc=example,dc=org"\n\n[[auth.ldap.groups]]\ngroup = "physics"\n'
                      'tenant = "no-such-tenant"\nroles = ["tenant_admin"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTENET_")}
    env.update(COMPUTENET_CONFIG=str(config), COMPUTENET_DATA_DIR=str(tmp_path / "data"), COLUMNS="200",
               COMPUTENET_SERVER__PORT="1")  # were it to start, it could not listen
    cnet = Path(sys.executable).with_name("cnet")
    proc = subprocess.run([str(cnet), "server"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    said = " ".join(proc.stderr.split())  # as rich wrapped it
    assert "group 'physics' names tenant 'no-such-tenant', which does not exist" in said
    assert 'configuration line 9: tenant = "no-such-tenant"' in said


def test_an_operator_at_the_server_gives_passwords_and_unlocks(tmp_path, db_url, clean_db):
    from test_people import _cnet

    from computenet.config import Settings
    from computenet.services.signin.login import with_password

    assert _cnet(tmp_path, db_url, "admin", "user", "add", "ana").exit_code == 0
    given = _cnet(tmp_path, db_url, "admin", "user", "password", "ana")
    assert given.exit_code == 0, given.output
    temporary = re.search(r"first sign-in.*: (\S+)", " ".join(given.output.split())).group(1)
    typed = _cnet(tmp_path, db_url, "admin", "user", "password", "ana", "--prompt", input=f"{OTHER}\n{OTHER}\n")
    assert typed.exit_code == 0 and "password of ana set" in typed.output
    weak = _cnet(tmp_path, db_url, "admin", "user", "password", "ana", "--prompt", input="short\nshort\n")
    assert weak.exit_code == 1 and "at least 10 characters" in weak.output
    policy = Settings(_env_prefix="COMPUTENET_TEST_IGNORED_").auth
    with clean_db.session() as session:
        assert not with_password(session, policy, "ana", OTHER, "cli-test").must_change_password
        for _ in range(policy.lockout_failures):
            with pytest.raises(Exception):
                with_password(session, policy, "ana", temporary, "cli-test")
        with pytest.raises(Exception, match="too many failed sign-ins"):
            with_password(session, policy, "ana", OTHER, "cli-test")
    assert _cnet(tmp_path, db_url, "admin", "user", "unlock", "ana").exit_code == 0
    with clean_db.session() as session:
        assert with_password(session, policy, "ana", OTHER, "cli-test").user.name == "ana"
