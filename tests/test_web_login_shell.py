"""The web shell on a cluster's login node, in a real browser: a user mapped to a Unix login
(cnet admin map-user) types `id -un` and sees that login, never the service account's; a user
without a login there gets 404 at the page and at its socket; a login without a shell is refused."""

from __future__ import annotations

import os
import pwd
import shutil

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from computenet.cli.embedded import EmbeddedServer
from computenet.services.tenancy import accounts, identities
from computenet.services import audit
from computenet.services.apps import login_shell
from computenet.services.errors import NotFound, Unavailable
from computenet.services.signin import passwords

from browser import axe, new_page, shot, sign_in
from conftest import add_user, local_cluster, poll_until

GOOD = "Correct-Horse-7"
LOGIN, NO_SHELL = "cnet-sshu", "cnet-ann"  # the test bed's Unix users (scripts/slurm-testbed)


def _exists(login: str) -> bool:
    try:
        pwd.getpwnam(login)
        return True
    except KeyError:
        return False


pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not _exists(LOGIN),
                                reason=f"needs root, util-linux setpriv and the Unix user {LOGIN}")


@pytest.fixture
def platform(make_platform):
    platform = make_platform([local_cluster()])
    for name, login in (("alice", LOGIN), ("bob", None), ("carol", NO_SHELL)):
        add_user(platform, name, balance="10.00")
        with platform.db.session() as session:
            user = accounts.get_user(session, name)
            passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)
            if login and _exists(login):
                identities.map_user(session, user, login, "local", audit.SYSTEM)
    return platform


def test_refusals_name_the_reason(platform):
    with platform.db.session() as session:
        ids = {n: accounts.get_user(session, n).id for n in ("alice", "bob", "carol")}
    with pytest.raises(NotFound, match="no Unix login of yours on cluster local"):
        login_shell.prepare(platform, ids["bob"], "local")
    with pytest.raises(NotFound, match="on cluster nowhere"):
        login_shell.prepare(platform, ids["alice"], "nowhere")
    if _exists(NO_SHELL) and pwd.getpwnam(NO_SHELL).pw_shell.endswith("nologin"):
        with pytest.raises(Unavailable, match=f"login {NO_SHELL} has no shell on local"):
            login_shell.prepare(platform, ids["carol"], "local")
    shell = login_shell.prepare(platform, ids["alice"], "local")
    entry = pwd.getpwnam(LOGIN)
    assert f"--reuid={entry.pw_uid}" in shell.argv and "--no-new-privs" in shell.argv
    assert shell.env["USER"] == LOGIN and "COMPUTENET" not in " ".join(shell.env)


def test_login_shell_in_a_browser(platform, chromium):
    with EmbeddedServer(platform, run_services=False) as server:
        page = new_page(chromium, server.url)
        sign_in(page, "alice", GOOD)
        page.goto("/portal/clusters")  # the way in: where the user has a login
        page.click(f"a:has-text('Open a shell on its login node (as {LOGIN})')")
        page.wait_for_url("**/portal/clusters/local/shell")
        page.locator("#terminal-state:has-text('Connected.')").wait_for(timeout=20_000)
        rows = page.locator("#terminal .xterm-rows")
        poll_until(lambda: rows.inner_text().strip(), timeout=20, what="the shell's prompt")
        page.locator("#terminal .xterm-helper-textarea").focus()
        page.keyboard.type("id -un; echo uid=$(id -u)\n")
        uid = pwd.getpwnam(LOGIN).pw_uid
        text = poll_until(lambda: f"uid={uid}" in (t := rows.inner_text()) and t, timeout=20, what="id's answer")
        assert f"\n{LOGIN}\n" in text.replace("\xa0", " ") and "\nroot\n" not in text
        assert "job control" not in text  # the PTY is the shell's controlling terminal
        assert axe(page) == []
        shot(page, "login-shell-en")
        page.keyboard.type("exit\n")  # the shell's end closes the socket and says so
        page.locator("#terminal-state:has-text('closed')").wait_for(timeout=20_000)
        with platform.db.session() as session:
            accounts.get_user(session, "alice").language = "zh-CN"
        page.goto("/portal/clusters/local/shell")
        page.locator("#terminal-state:has-text('已连接')").wait_for(timeout=20_000)
        poll_until(lambda: rows.inner_text().strip(), timeout=20, what="the shell's prompt")
        assert page.locator("html").get_attribute("lang") == "zh-CN" and axe(page) == []
        shot(page, "login-shell-zh-CN")
        page.context.close()

        other = new_page(chromium, server.url, locale="zh-CN")
        sign_in(other, "bob", GOOD)
        other.goto("/portal/clusters")
        assert other.locator("a[href$='/shell']").count() == 0
        assert other.goto("/portal/clusters/local/shell").status == 404
        refused = other.evaluate("""url => new Promise(resolve => {
            const ws = new WebSocket(url);
            ws.onopen = () => resolve("opened");
            ws.onerror = () => resolve("refused");
        })""", server.url.replace("http", "ws") + "/portal/clusters/local/shell/socket")
        assert refused == "refused"
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in other.context.cookies())
        with pytest.raises(InvalidStatus) as answer:
            connect(server.url.replace("http", "ws") + "/portal/clusters/local/shell/socket",
                    additional_headers={"Cookie": cookie}, open_timeout=10)
        assert answer.value.response.status_code == 404
        other.context.close()
