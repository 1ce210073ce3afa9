"""`cnet login` with a password against a running server: the password is asked for, a short-lived
token and a refresh token are kept 0600, the token is renewed when it expires, `cnet logout` ends the
sign-in on the server, `cnet passwd` changes the password."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from computenet.cli.main import app
from computenet.client import ApiError, ComputeNetClient
from computenet.services.tenancy import accounts
from computenet.services import audit
from computenet.services.signin import passwords

from conftest import add_user

runner = CliRunner()
GOOD = "Correct-Horse-7"


@pytest.fixture
def home(platform, server, tmp_path):
    add_user(platform, "lee")
    with platform.db.session() as session:
        passwords.set_password(session, audit.SYSTEM, accounts.get_user(session, "lee"), GOOD, platform.settings.auth)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "COMPUTENET_URL": "", "COMPUTENET_TOKEN": "", "COLUMNS": "200"}

    def run(*args, input=None):
        return runner.invoke(app, list(args), env=env, input=input)

    run.url, run.saved = server.url, tmp_path / "cfg" / "computenet" / "login.json"
    return run


def test_login_asks_for_the_password_and_keeps_tokens_privately(home):
    result = home("login", home.url, "--user", "lee", input=f"{GOOD}\n")
    assert result.exit_code == 0, result.output
    assert GOOD not in result.output  # asked for hidden, never echoed
    saved = json.loads(home.saved.read_text())
    assert oct(home.saved.stat().st_mode & 0o777) == "0o600"
    assert saved["user"] == "lee" and saved["refresh_token"].startswith("cnr_") and saved["token"].startswith("cnet_")
    assert home("jobs").exit_code == 0


def test_an_expiring_token_is_renewed_with_the_refresh_token(home):
    home("login", home.url, "--user", "lee", input=f"{GOOD}\n")
    before = json.loads(home.saved.read_text())
    expired = before | {"expires_at": (datetime.now(timezone.utc) - timedelta(seconds=5)).isoformat()}
    home.saved.write_text(json.dumps(expired))
    assert home("clusters").exit_code == 0
    after = json.loads(home.saved.read_text())
    assert after["token"] != before["token"] and after["refresh_token"] != before["refresh_token"]
    assert datetime.fromisoformat(after["expires_at"]) > datetime.now(timezone.utc) + timedelta(minutes=50)
    # the rotated-out refresh token no longer buys anything
    with ComputeNetClient(home.url) as c, pytest.raises(ApiError) as refused:
        c._call("POST", "/auth/token", json={"grant_type": "refresh_token", "refresh_token": before["refresh_token"]})
    assert refused.value.status == 401


def test_a_wrong_password_is_a_clear_error_and_saves_nothing(home):
    result = home("login", home.url, "--user", "lee", input="wrong-password\n")
    assert result.exit_code == 1 and "unknown user or wrong password" in result.output
    assert not home.saved.exists()


def test_logout_ends_the_sign_in_on_the_server(home):
    home("login", home.url, "--user", "lee", input=f"{GOOD}\n")
    saved = json.loads(home.saved.read_text())
    result = home("logout")
    assert result.exit_code == 0 and not home.saved.exists()
    with ComputeNetClient(home.url) as c, pytest.raises(ApiError) as refused:
        c._call("POST", "/auth/token", json={"grant_type": "refresh_token", "refresh_token": saved["refresh_token"]})
    assert refused.value.status == 401
    assert home("jobs").exit_code == 1


def test_passwd_changes_the_password(home):
    home("login", home.url, "--user", "lee", input=f"{GOOD}\n")
    new = "Battery-Staple-8"
    result = home("passwd", input=f"{GOOD}\n{new}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert home("login", home.url, "--user", "lee", input=f"{GOOD}\n").exit_code == 1
    assert home("login", home.url, "--user", "lee", input=f"{new}\n").exit_code == 0
    weak = home("passwd", input=f"{new}\nshort\nshort\n")
    assert weak.exit_code == 1 and "at least 10 characters" in weak.output
