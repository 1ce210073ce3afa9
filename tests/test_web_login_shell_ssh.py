"""The login-node web shell of a cluster reached over SSH (an OpenSSH server on loopback in front
of the test bed's alpha): the shell is an SSH session as the user's mapped login with that login's
own key, never the service account's; a cluster without per-user keys is refused."""

from __future__ import annotations

import os
import pwd
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from computenet.cli.embedded import EmbeddedServer
from computenet.config import ClusterConfig, Price
from computenet.services.tenancy import accounts, identities
from computenet.services import audit
from computenet.services.apps import login_shell
from computenet.services.errors import Unavailable
from computenet.services.signin import passwords

from browser import new_page, shot, sign_in
from conftest import add_user, poll_until

pytestmark = pytest.mark.slurm
GOOD = "Correct-Horse-7"
LOGIN = "cnet-sshu"


def _alpha(ssh_login, testbed, **extra) -> ClusterConfig:
    return ClusterConfig(name="alpha", kind="slurm", transport="ssh", ssh_host=ssh_login["host"],
                         ssh_port=ssh_login["port"], ssh_user="root", ssh_key=ssh_login["key"],
                         ssh_known_hosts=ssh_login["known_hosts"], slurm_conf=testbed["SLURM_CONF_ALPHA"],
                         workdir_root=str(Path(os.environ["COMPUTENET_TESTBED"]) / "work"),
                         prices={"*": Price(core_hour=Decimal("0.05"))}, **extra)


def _user(platform, name: str, login: str) -> int:
    user_id, _ = add_user(platform, name, balance="10.00")
    with platform.db.session() as session:
        user = accounts.get_user(session, name)
        passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)
        identities.map_user(session, user, login, "alpha", audit.SYSTEM)
    return user_id


def test_no_per_user_keys_no_shell(ssh_login, testbed, make_platform):
    platform = make_platform([_alpha(ssh_login, testbed)])
    user_id = _user(platform, "sue", LOGIN)
    with pytest.raises(Unavailable, match="never uses the service account"):
        login_shell.prepare(platform, user_id, "alpha")


def test_ssh_login_shell_in_a_browser(ssh_login, testbed, make_platform, chromium, tmp_path):
    try:
        pwd.getpwnam(LOGIN)
    except KeyError:  # a login shell, and an account that is not locked: sshd lets it in with a key
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", LOGIN], check=True)
        subprocess.run(["usermod", "-p", "*", LOGIN], check=True)
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / LOGIN)], check=True)
    with open(ssh_login["authorized_keys"], "a") as handle:
        handle.write((keys / f"{LOGIN}.pub").read_text())
    platform = make_platform([_alpha(ssh_login, testbed, ssh_user_key=str(keys / "{user}"), run_as_users=True)])
    _user(platform, "sue", LOGIN)
    with EmbeddedServer(platform, run_services=False) as server:
        page = new_page(chromium, server.url)
        sign_in(page, "sue", GOOD)
        page.goto("/portal/clusters/alpha/shell")
        page.locator("#terminal-state:has-text('Connected.')").wait_for(timeout=30_000)
        rows = page.locator("#terminal .xterm-rows")
        poll_until(lambda: rows.inner_text().strip(), timeout=30, what="the shell's prompt")
        page.locator("#terminal .xterm-helper-textarea").focus()
        page.keyboard.type("id -un; echo uid=$(id -u)\n")
        uid = pwd.getpwnam(LOGIN).pw_uid
        text = poll_until(lambda: f"uid={uid}" in (t := rows.inner_text()) and t, timeout=30, what="id's answer")
        assert f"\n{LOGIN}\n" in text.replace("\xa0", " ") and "\nroot\n" not in text
        shot(page, "login-shell-ssh-en")
        page.keyboard.type("exit\n")
        page.locator("#terminal-state:has-text('closed')").wait_for(timeout=20_000)
        page.context.close()
    platform.adapter("alpha").transport.close()
