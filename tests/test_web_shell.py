"""The web shell in a real browser: start the `shell` interactive app on the local executor, open
its terminal page (xterm.js, the node's terminado through the platform's WebSocket proxy), type
`id -un` and see the login the job runs as; another user gets 404 at the page and at the session's
URL; the node's server refuses anything without the session's secret; en and zh-CN with axe."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from websockets.sync.client import connect

from computenet.cli.embedded import EmbeddedServer
from computenet.config import SessionsConfig
from computenet.services.tenancy import accounts
from computenet.services import sessions
from computenet.services.sessions.watch import server_activity
from computenet.store.models import InteractiveSession
from computenet.store.types import utcnow

from browser import axe, new_page, shot, sign_in, start_session, users_who_sign_in
from conftest import local_cluster, poll_until

GOOD = "Correct-Horse-7"
VENV_BIN = str(Path(sys.executable).parent)
try:
    import terminado  # noqa: F401  (with jupyterlab, in the test extra)
except ImportError:  # pragma: no cover
    pytest.skip("needs terminado in the test environment (the test extra)", allow_module_level=True)


def _typed(page, command: str, expect: str, timeout: float = 30.0) -> str:
    poll_until(lambda: page.locator("#terminal .xterm-rows").inner_text().strip(), timeout=timeout,
               what="the shell's prompt")
    page.locator("#terminal .xterm-helper-textarea").focus()
    page.keyboard.type(command + "\n")
    return poll_until(lambda: expect in (t := page.locator("#terminal .xterm-rows").inner_text()) and t,
                      timeout=timeout, what=f"{expect!r} in the terminal")


def test_shell_session_in_a_browser(make_platform, chromium, monkeypatch):
    # jobs of the single-tenant local executor get the server's PATH: the venv's python3 (terminado) on it
    monkeypatch.setenv("PATH", f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    platform = make_platform([local_cluster(tags=["terminado"])], sessions=SessionsConfig(start_timeout_s=60))
    users_who_sign_in(platform, ("alice", "bob"), GOOD)
    with EmbeddedServer(platform, run_services=True) as server:
        page = new_page(chromium, server.url)
        sign_in(page, "alice", GOOD)
        connect_link = start_session(page, "shell")
        with platform.db.session() as session:
            row = session.scalars(select(InteractiveSession)).one()
            sid, secret, address, port = row.id, row.secret, row.address, row.port
        assert connect_link.get_attribute("href") == f"/portal/sessions/{sid}/shell"

        # the node's server: nothing without the session's secret (the proxy adds it)
        base = f"http://{address}:{port}{sessions.base_url(sid)}"
        assert httpx.get(base + "api/status").status_code == 403
        with pytest.raises(Exception):
            connect(base.replace("http", "ws") + "websocket", open_timeout=5)
        assert httpx.get(base + "api/status", headers={"Authorization": f"token {secret}"}).status_code == 200

        page.goto(f"/portal/sessions/{sid}/shell")
        page.locator("#terminal-state:has-text('Connected.')").wait_for(timeout=20_000)
        text = _typed(page, "id -un", getpass.getuser())
        with platform.db.session() as session:  # the idle watch hears from the shell's server too
            seen = server_activity(platform, session.get(InteractiveSession, sid))
        assert seen is not None and abs((utcnow() - seen).total_seconds()) < 60
        assert getpass.getuser() in text and secret not in page.content()
        assert axe(page) == []
        shot(page, "session-shell-en")

        other = new_page(chromium, server.url)
        sign_in(other, "bob", GOOD)
        assert other.goto(f"/portal/sessions/{sid}/shell").status == 404
        assert other.goto(f"/sessions/{sid}/api/status").status == 404
        other.context.close()

        with platform.db.session() as session:
            accounts.get_user(session, "alice").language = "zh-CN"
        page.goto(f"/portal/sessions/{sid}/shell")
        page.locator("#terminal-state:has-text('已连接')").wait_for(timeout=20_000)
        _typed(page, "echo shell-$((6 * 7))", "shell-42")  # the same shell again (one per session)
        assert page.locator("html").get_attribute("lang") == "zh-CN" and axe(page) == []
        shot(page, "session-shell-zh-CN")

        page.goto("/portal/sessions")
        page.click("form[action$='/stop'] button")
        page.wait_for_url("**/portal/sessions?done=stopped")
        assert page.goto(f"/portal/sessions/{sid}/shell").status == 409
        page.context.close()
