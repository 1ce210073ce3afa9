"""The sessions page in a real browser: start JupyterLab on the local executor from the portal,
connect once it answers (the JupyterLab UI through the proxy, on the sessions' own origin), run code
on its kernel over the proxied WebSocket, see that the session's page cannot read the portal (its
origin is another), that another user's browser gets 404 at the session's URL, stop it and find its
charge; the page in en and zh-CN, with axe."""

from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from computenet.cli.embedded import EmbeddedServer
from computenet.config import SessionsConfig
from computenet.services.tenancy import accounts
from computenet.store.models import Charge, InteractiveSession

from browser import axe, new_page, shot, sign_in, start_session, users_who_sign_in
from conftest import local_cluster, poll_until

GOOD = "Correct-Horse-7"
VENV_BIN = str(Path(sys.executable).parent)
pytestmark = pytest.mark.skipif(not (Path(VENV_BIN) / "jupyter-lab").exists(),
                                reason="needs jupyterlab in the test environment (the test extra)")

RUN_CELL = """async ([base, code]) => {
  const made = await fetch(base + "api/kernels", {method: "POST", headers: {"Content-Type": "application/json"},
                                                 body: JSON.stringify({name: "python3"})});
  if (made.status !== 201) return "kernel: HTTP " + made.status;
  const kernel = await made.json();
  const ws = new WebSocket(base.replace(/^http/, "ws") + "api/kernels/" + kernel.id + "/channels");
  const id = crypto.randomUUID();
  return await new Promise((resolve) => {
    let out = "";
    ws.onerror = () => resolve("websocket error");
    ws.onopen = () => ws.send(JSON.stringify({header: {msg_id: id, username: "browser", session: crypto.randomUUID(),
      msg_type: "execute_request", version: "5.3"}, parent_header: {}, metadata: {}, channel: "shell", buffers: [],
      content: {code: code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false,
                stop_on_error: true}}));
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (!msg.parent_header || msg.parent_header.msg_id !== id) return;
      if (msg.header.msg_type === "stream") out += msg.content.text;
      if (msg.header.msg_type === "status" && msg.content.execution_state === "idle") { ws.close(); resolve(out); }
    };
  });
}"""


# what a session's page (a notebook's JavaScript output, a shared notebook) would try: the owner's portal
# pages and API with the owner's cookie, by absolute URL and by path
STEAL = """async ([portal]) => {
  const out = {};
  const tries = {absolute: [portal + "/portal/jobs", {credentials: "include"}],
                 path: ["/portal/jobs", {credentials: "include"}],
                 api: [portal + "/sessions", {credentials: "include"}]};
  for (const [name, [url, options]] of Object.entries(tries)) {
    try {
      const answer = await fetch(url, options);
      const text = await answer.text();
      out[name] = {status: answer.status, portal: text.includes("/static/portal.css") || text.includes('"app"')};
    } catch (error) {
      out[name] = {blocked: String(error)};
    }
  }
  return out;
}"""


def test_jupyterlab_from_the_portal_in_a_browser(make_platform, chromium, monkeypatch):
    monkeypatch.setenv("PATH", f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    platform = make_platform([local_cluster(tags=["jupyterlab"])], sessions=SessionsConfig(start_timeout_s=120))
    users_who_sign_in(platform, ("alice", "bob"), GOOD)
    with EmbeddedServer(platform, run_services=True) as server:
        page = new_page(chromium, server.url)
        sign_in(page, "alice", GOOD)

        def looked_at_empty(page):
            assert axe(page) == []
            shot(page, "sessions-empty-en")

        connect = start_session(page, "jupyterlab", wait_ms=120_000, before_start=looked_at_empty)
        assert axe(page) == []
        shot(page, "sessions-running-en")
        with platform.db.session() as session:
            row = session.scalars(select(InteractiveSession)).one()
            sid, job_id, secret, native = row.id, row.job_id, row.secret, row.job.native_id
        assert secret not in page.content()

        with page.context.expect_page() as opened:
            connect.click()
        lab = opened.value
        lab.wait_for_selector(".jp-LauncherCard", timeout=60_000)  # JupyterLab's own UI, through the proxy
        # the session's page cannot read the owner's portal pages or call the API as the owner
        stolen = lab.evaluate(STEAL, [server.url])
        for name, answer in stolen.items():
            assert "blocked" in answer or not answer["portal"], (name, stolen)
        session_origin = lab.evaluate("location.origin")
        assert session_origin != server.url and lab.url == f"{session_origin}/sessions/{sid}/lab"
        assert all(c["name"] != "cnet_session" for c in lab.context.cookies(session_origin))
        shot(lab, "session-jupyterlab")
        assert lab.locator(".jp-DirListing-item").count() >= 1 and ".cnet-session" not in lab.content()
        code = "import os\nprint('sum of squares', sum(i * i for i in range(10)), 'in job', os.environ['SLURM_JOB_ID'])"
        printed = lab.evaluate(RUN_CELL, [f"{session_origin}/sessions/{sid}/", code])
        assert printed.strip() == f"sum of squares 285 in job {native}"

        other = new_page(chromium, server.url)
        sign_in(other, "bob", GOOD)
        for where in (f"{session_origin}/sessions/{sid}/lab", f"{server.url}/sessions/{sid}/lab"):
            answer = other.goto(where)  # sent to the portal's connect, which knows no such session of bob's
            assert answer.status == 404 and secret not in other.content()
        other.context.close()

        with platform.db.session() as session:
            accounts.get_user(session, "alice").language = "zh-CN"
        page.goto("/portal/sessions")
        assert page.locator("html").get_attribute("lang") == "zh-CN" and axe(page) == []
        shot(page, "sessions-running-zh-CN")
        page.click("form[action$='/stop'] button")
        page.wait_for_url("**/portal/sessions?done=stopped")
        assert "已停止" in page.content()

        def charged():
            with platform.db.session() as session:
                return session.scalar(select(func.sum(Charge.amount)).where(Charge.job_id == job_id))
        total = poll_until(charged, timeout=90, what="the session's charge")
        assert Decimal(total) > 0
        page.goto("/portal/sessions")
        cell = page.locator("tbody tr td.num").nth(1).inner_text()
        assert cell.replace(",", "").strip().endswith(f"{Decimal(total):.2f}"), cell
        shot(page, "sessions-ended-zh-CN")
        page.context.close()
