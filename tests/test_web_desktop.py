"""The remote desktop in a real browser: start the `desktop` interactive app on the local executor
from the portal (TigerVNC's Xvnc, a window manager and an xterm on the node, noVNC and the job's own
websockify behind the platform's proxy), connect, see the desktop drawn, type a command into the
xterm and find what it wrote in the job's directory; the node's server refuses anything without the
session's secret and the VNC server listens on no TCP port; another user gets 404; stop, charged.
A cluster without the `desktop` tag refuses the app with the reason (no browser, no packages)."""

from __future__ import annotations

import os
import shutil
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from computenet.cli.embedded import EmbeddedServer
from computenet.client.sdk import ComputeNetClient
from computenet.config import SessionsConfig
from computenet.services import sessions
from computenet.services.sessions.watch import server_activity
from computenet.store.models import Charge, InteractiveSession
from computenet.store.types import utcnow
from computenet.web.pages.sessions import desktop_url

from conftest import add_user, local_cluster, poll_until

GOOD = "Correct-Horse-7"
NOVNC = Path("/usr/share/novnc/vnc.html")


def _has_desktop_packages() -> bool:
    if not (shutil.which("Xvnc") and shutil.which("xauth") and shutil.which("xterm") and NOVNC.exists()):
        return False
    return any(Path(d, "websockify", "websocketproxy.py").exists()
               for d in ("/usr/lib/python3/dist-packages", "/usr/local/lib/python3/dist-packages"))


needs_desktop = pytest.mark.skipif(
    not _has_desktop_packages() and os.environ.get("CI") != "true",
    reason="needs tigervnc-standalone-server, xauth, novnc, python3-websockify and xterm (scripts/test installs them)")

# what the desktop looks like: distinct colours and the share of pixels that are not the root's black
CANVAS_PIXELS = """() => {
  const canvas = document.querySelector("#noVNC_container canvas");
  if (!canvas || canvas.width < 100 || canvas.height < 100) return null;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const colours = new Set();
  let lit = 0, seen = 0;
  for (let i = 0; i < data.length; i += 4 * 7) {
    seen += 1;
    colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    if (data[i] + data[i + 1] + data[i + 2] > 60) lit += 1;
  }
  return {colours: colours.size, lit: lit / seen, width: canvas.width, height: canvas.height};
}"""


def _tcp_listeners_of(workdir: str, program: str) -> list[int]:
    """The TCP sockets in LISTEN held by this job's `program` processes (found by their working directory)."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                listening.add(fields[9])
    found, pids = [], []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().split(b"\0")[0] == program.encode() \
                    and os.readlink(proc / "cwd") == os.path.realpath(workdir):
                pids.append(int(proc.name))
                for fd in (proc / "fd").iterdir():
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in listening:
                        found.append(int(target[8:-1]))
        except OSError:
            continue
    assert pids, f"no {program} process of the job in {workdir}"
    return found


def test_desktop_without_the_tag_is_refused_with_the_reason(make_platform):
    platform = make_platform([local_cluster(tags=["terminado"])])
    _, token = add_user(platform, "dora", balance="500.00")
    with EmbeddedServer(platform, run_services=False) as srv, ComputeNetClient(srv.url, token) as dora:
        answer = dora.http.post("/sessions", json={"app": "desktop", "cores": 1, "hours": 1})
        assert answer.status_code == 400, answer.text
        detail = answer.json()["detail"]
        assert "desktop 1 is not available on any cluster" in detail and "it needs a cluster tagged desktop" in detail
        assert dora.sessions() == [] and dora.jobs() == []
        with platform.db.session() as session:
            assert session.scalar(select(func.count()).select_from(InteractiveSession)) == 0


@needs_desktop
def test_desktop_session_in_a_browser(make_platform, chromium):
    from browser import new_page, shot, sign_in, start_session, users_who_sign_in

    platform = make_platform([local_cluster(tags=["desktop"])], sessions=SessionsConfig(start_timeout_s=60))
    users_who_sign_in(platform, ("dorothea", "edgar"), GOOD)
    with EmbeddedServer(platform, run_services=True) as server:
        page = new_page(chromium, server.url)
        sign_in(page, "dorothea", GOOD)
        connect_link = start_session(page, "desktop")
        with platform.db.session() as session:
            row = session.scalars(select(InteractiveSession)).one()
            sid, secret, address, port = row.id, row.secret, row.address, row.port
            job_id, workdir, owner_id = row.job_id, row.job.workdir, row.owner_id
        try:
            base = sessions.base_url(sid)
            # through the portal's connect (a one-time ticket for the sessions' own origin), to noVNC's page
            assert connect_link.get_attribute("href") == f"/portal/sessions/{sid}/connect"
            assert "autoconnect=true" in desktop_url(base) and f"path=sessions/{sid}/websockify" in desktop_url(base)

            # the node's server: nothing without the session's secret (the proxy adds it); VNC on no TCP port
            direct = f"http://{address}:{port}{base}"
            assert httpx.get(direct + "vnc.html").status_code == 403
            with pytest.raises(InvalidStatus) as refused:
                connect(direct.replace("http", "ws") + "websockify", open_timeout=5)
            assert refused.value.response.status_code == 403
            assert httpx.get(direct + "vnc.html", headers={"Authorization": f"token {secret}"}).status_code == 200
            assert _tcp_listeners_of(workdir, "Xvnc") == []

            with page.context.expect_page() as opened:
                connect_link.click()
            desk = opened.value
            desk.locator("html.noVNC_connected").wait_for(timeout=30_000)
            assert desk.url.startswith(f"{server.origins.session_origin(sid)}{base}vnc.html")
            drawn = poll_until(lambda: (p := desk.evaluate(CANVAS_PIXELS)) and p["colours"] >= 3
                               and p["lit"] > 0.05 and p, timeout=30, what="the desktop drawn in noVNC's canvas")
            assert drawn["width"] >= 600 and drawn["height"] >= 400, drawn
            # the xterm has the focus: what is typed runs on the node, in the job's directory
            typed = Path(workdir) / "typed-in-desktop.txt"

            def typed_in() -> bool:
                return typed.exists() and typed.read_text().strip() == "desktop-42"

            # on a busy machine the first keys can reach the desktop before the xterm has the focus:
            # the command is typed again (it only writes the file) until it has run, three times at most
            for attempt in range(3):
                desk.locator("#noVNC_container canvas").click(position={"x": 300, "y": 200})
                desk.keyboard.press("Control+u")  # whatever half a line an earlier try left
                desk.keyboard.type("echo desktop-$((6 * 7)) > typed-in-desktop.txt\n", delay=20)
                try:
                    poll_until(typed_in, timeout=30, what="the command typed into the desktop's xterm")
                    break
                except AssertionError:
                    if attempt == 2:
                        raise
            shot(desk, "session-desktop")
            with platform.db.session() as session:  # a connected browser is a session in use
                seen = server_activity(platform, session.get(InteractiveSession, sid))
            assert seen is not None and abs((utcnow() - seen).total_seconds()) < 60
            assert secret not in desk.content() and secret not in page.content()

            other = new_page(chromium, server.url)
            sign_in(other, "edgar", GOOD)
            assert other.goto(f"{server.origins.session_origin(sid)}{base}vnc.html").status in (401, 404)
            assert other.goto(f"/portal/sessions/{sid}/connect").status == 404  # no ticket for another's
            other.context.close()
            desk.close()

            page.goto("/portal/sessions")
            page.click("form[action$='/stop'] button")
            page.wait_for_url("**/portal/sessions?done=stopped")

            def charged():
                with platform.db.session() as session:
                    return session.scalar(select(func.sum(Charge.amount)).where(Charge.job_id == job_id))
            assert Decimal(poll_until(charged, timeout=90, what="the session's charge")) > 0
        finally:  # a failed test leaves no desktop running (the local executor's jobs outlive the server)
            sessions.stop(platform, owner_id, sid)
        page.context.close()
