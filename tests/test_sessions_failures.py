"""Sessions that end against their owner's wishes, on the local executor (no JupyterLab: a tiny
server that says where it runs): the node dies mid-session (the runner and the job's process group
killed, as a machine that goes away) and the session runs into its time limit. Each time the
session ends, is charged and its owner told, and the proxy answers with a page that says what
happened, never a 5xx."""

from __future__ import annotations

import os
import signal
import socket
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from computenet.cli.embedded import EmbeddedServer
from computenet.config import SessionsConfig
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.sessions.watch import SessionWatch
from computenet.store.models import Charge, InteractiveSession, Notification
from computenet.store.types import utcnow

from conftest import local_cluster, poll_until, session_origin_client
from test_sessions import _publish, client, wait_state


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                status = (proc / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                found.append(int(proc.name))
    return found


def _notices(platform, kind: str) -> list[str]:
    with platform.db.session() as session:
        return [n.message for n in session.scalars(select(Notification).where(Notification.kind == kind))]


def _html(origin: httpx.Client, sid: int) -> httpx.Response:
    return origin.get(f"/sessions/{sid}/notebook",
                      headers={"Accept": "text/html,*/*;q=0.8", "Accept-Language": "zh-CN,zh;q=0.9"})


def test_a_node_that_dies_mid_session_ends_it_charged_told_and_the_proxy_says_so(make_platform):
    platform = make_platform([local_cluster()])
    with EmbeddedServer(platform, run_services=False) as srv:
        _publish(platform, srv, "node-echo")
        with client(platform, srv, "h18b-nina") as nina:
            sid = nina.start_session("node-echo")["id"]
            assert wait_state(platform, nina, sid, ("running", "ended"), timeout=90)["state"] == "running"
            origin = session_origin_client(srv, nina, sid)
            answer = origin.get(f"/sessions/{sid}/x")
            assert answer.status_code == 200 and answer.text == f"node {socket.gethostname()} path /sessions/{sid}/x"
            with platform.db.session() as session:
                row = session.get(InteractiveSession, sid)
                native, port, job_id = row.job.native_id, row.port, row.job_id
            # the machine goes away: the runner (the executor's slurmstepd) first, then the job's process group
            runner = int((platform.adapter("local")._job_dir(native) / "runner.pid").read_text())
            scripts = _children(runner)
            assert scripts
            os.kill(runner, signal.SIGKILL)
            for pid in scripts:
                os.killpg(pid, signal.SIGKILL)
            poll_until(lambda: _refused(port), timeout=30, what="the server gone")

            # before the watch notices: a plain answer, not a 502 (a page for a browser, JSON for a program)
            page = _html(origin, sid)
            assert page.status_code == 409 and page.headers["content-type"].startswith("text/html"), page.text
            assert "没有响应" in page.text and 'href="/portal/sessions"' in page.text
            api = origin.get(f"/sessions/{sid}/x")
            assert api.status_code == 409 and "does not answer" in api.json()["detail"]

            ended = wait_state(platform, nina, sid, ("ended",), timeout=90)
            assert ended["ended_reason"] == "node_failed" and "NODE_FAIL" in ended["detail"]
            told = _notices(platform, "session_ended")
            assert len(told) == 1 and f"session {sid} (node-echo) ended: its node stopped" in told[0]
            job = poll_until(lambda: (j := nina.job(job_id)).settled and j,
                             step=ClusterPoller(platform, "local").run_once, timeout=60, what="the charge")
            assert job.state == "NODE_FAIL" and job.cost > 0
            page = _html(origin, sid)
            assert page.status_code == 409 and "已结束" in page.text and "node_failed" in page.text


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def test_near_its_limit_the_owner_is_told_once_and_past_it_the_session_is_ended_charged_and_told(make_platform):
    platform = make_platform([local_cluster()], sessions=SessionsConfig(idle_minutes=600))
    assert platform.settings.sessions.warn_minutes_before_end == 10  # the default notice: 10 min before
    with EmbeddedServer(platform, run_services=False) as srv:
        _publish(platform, srv, "node-echo")
        with client(platform, srv, "h18b-tim") as tim:
            sid = tim.start_session("node-echo", hours=1)["id"]
            assert wait_state(platform, tim, sid, ("running", "ended"), timeout=90)["state"] == "running"
            origin = session_origin_client(srv, tim, sid)  # entered while it runs, as a browser would
            watch = SessionWatch(platform)

            def started_ago(minutes: float) -> None:  # the clock moved on (the executor's own limit is an hour)
                with platform.db.session() as session:
                    session.get(InteractiveSession, sid).job.start_time = utcnow() - timedelta(minutes=minutes)

            started_ago(45)
            watch.run_once()
            assert _notices(platform, "session_time_left") == []
            started_ago(52)
            watch.run_once()
            watch.run_once()
            told = _notices(platform, "session_time_left")
            assert len(told) == 1 and f"session {sid} (node-echo) ends in 8 minutes" in told[0], told
            assert tim.session(sid)["state"] == "running"
            longer = tim.extend_session(sid, 30)  # a new limit: a new notice when that one nears
            assert longer["time_limit_minutes"] == 90
            started_ago(85)
            watch.run_once()
            assert len(_notices(platform, "session_time_left")) == 2

            started_ago(90 + 3)  # past the limit and its two minutes' grace, the job still running
            assert watch.run_once().changed == [(sid, "time_limit")]
            shown = tim.session(sid)
            assert shown["state"] == "ended" and shown["ended_reason"] == "time_limit"
            told = _notices(platform, "session_ended")
            assert len(told) == 1 and "reached its time limit of 90 minutes and was ended" in told[0]
            job = poll_until(lambda: (j := tim.job(shown["job_id"])).settled and j,
                             step=ClusterPoller(platform, "local").run_once, timeout=60, what="the charge")
            assert job.state == "CANCELLED"
            with platform.db.session() as session:  # charged (a second's use may be under a cent, carried)
                assert session.scalars(select(Charge).where(Charge.job_id == job.id)).all()
            page = _html(origin, sid)
            assert page.status_code == 409 and "time_limit" in page.text
            watch.run_once()
            assert len(_notices(platform, "session_ended")) == 1  # told once
