"""`cnet session start|list|show|open|extend|stop` against a live embedded server (its loops run the
job and move the session along) on the local executor, with a tiny server that says where it runs."""

from __future__ import annotations

import json
import stat

import httpx
import pytest
from typer.testing import CliRunner

from computenet.cli.embedded import EmbeddedServer
from computenet.cli.main import app

from conftest import add_user, local_cluster, poll_until
from test_cli_fast import _heavy_loaded
from test_sessions import _publish


@pytest.fixture
def cli(make_platform, tmp_path):
    platform = make_platform([local_cluster()])
    _, token = add_user(platform, "h18b-cleo", balance="200.00")
    browser = tmp_path / "browser"
    browser.write_text(f"#!/bin/sh\nprintf '%s' \"$1\" > {tmp_path / 'opened'}\n")
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    with EmbeddedServer(platform, run_services=True) as server:
        _publish(platform, server, "node-echo")
        env = {"COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": token, "COLUMNS": "200",
               "BROWSER": f"{browser} %s"}
        runner = CliRunner()

        def invoke(*args: str, code: int = 0) -> str:
            result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
            assert result.exit_code == code, result.output
            return result.output
        yield invoke, server, token, tmp_path


def test_session_commands_start_open_extend_stop(cli):
    invoke, server, token, tmp_path = cli
    out = invoke("session", "start", "node-echo", "-c", "1", "-t", "1")
    sid = out.split()[1]  # ids are the database's (PostgreSQL's sequences go on across tests)
    assert out.startswith(f"session {sid} (node-echo on local): queued, 60 min limit")
    assert f"cnet session open {sid}" in out
    listed = invoke("session", "list").splitlines()  # a pipe: plain columns, a header
    assert listed[0].split() == ["ID", "APP", "STATE", "CLUSTER", "CORES", "LEFT", "COST", "URL"]
    first = listed[1].split()  # the watch may have it running already
    assert first[:2] == [sid, "node-echo"] and first[2] in ("queued", "starting", "running") and first[3:5] == [
        "local", "1"], first

    shown = poll_until(lambda: (s := json.loads(invoke("session", "show", sid, "--json")))["state"] == "running"
                       and s, timeout=90, what="the session running")
    where = server.origins.session_origin(int(sid))  # the sessions' own origin, not the portal's
    assert shown["url"] == f"{where}/sessions/{sid}/" and shown["cores"] == 1
    url = invoke("session", "open", sid).strip()
    assert url == f"{where}/sessions/{sid}/"
    # the portal's token opens nothing there; --browser gets a one-time ticket that becomes the cookie
    assert httpx.get(url + "here", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 401
    ticket_url = invoke("session", "open", sid, "--browser").strip()
    assert ticket_url.startswith(f"{where}/sessions/{sid}/_cnet/enter?ticket=")
    poll_until(lambda: (tmp_path / "opened").exists(), timeout=10, what="the browser started")
    assert (tmp_path / "opened").read_text() == ticket_url
    with httpx.Client(timeout=30, follow_redirects=True) as browser:  # as the browser would
        answer = browser.get(ticket_url.replace("next=", "next=here"))
        assert answer.status_code == 200 and answer.text.endswith(f"path /sessions/{sid}/here")
    text = invoke("session", "show", sid)
    assert "state:           running" in text and f"url:             {url}" in text and "cost so far:" in text

    assert f"session {sid} (node-echo on local): running, 90 min limit, may cost up to" in invoke(
        "session", "extend", sid, "30")
    assert "at most 1440 min" in invoke("session", "extend", sid, "2000", code=1)
    assert json.loads(invoke("session", "extend", sid, "5", "--json"))["time_limit_minutes"] == 95

    assert invoke("session", "stop", sid).strip() == f"session {sid}: stopped (ended)"
    assert invoke("session", "list", "--noheader").strip() == ""  # live ones only
    row = invoke("session", "list", "--all", "--noheader").split()
    assert row[:4] == [sid, "node-echo", "ended:stopped", "local"] and row[-1] == "-"
    assert json.loads(invoke("session", "list", "--all", "--json"))[0]["ended_reason"] == "stopped"
    assert f"session {sid} is ended (stopped)" in invoke("session", "open", sid, code=1)
    assert "no session 999999" in invoke("session", "show", "999999", code=1)
    assert "session 999999: no session 999999" in invoke("session", "stop", sid, "999999", code=1)
    assert "not interactive" in invoke("session", "start", "generic-shell", code=1)


def test_session_help_and_list_leave_heavy_libraries_out():
    assert _heavy_loaded(["session", "--help"]) == []
    assert _heavy_loaded(["session", "start", "--help"]) == []
