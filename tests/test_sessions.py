"""Interactive sessions on the local executor: a real JupyterLab started as a job, opened through
the platform's proxy (HTTP and a kernel's WebSocket), stopped and charged; the owner-only rule,
a refused report, a server that never comes up, idle stop and extend."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import sys
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from websockets.sync.client import connect

from computenet.client.sdk import ApiError, ComputeNetClient
from computenet.cli.embedded import EmbeddedServer
from computenet.config import SessionsConfig
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.sessions import report
from computenet.services.sessions.watch import SessionWatch
from computenet.store.models import InteractiveSession, Notification, Transfer, User
from computenet.store.types import utcnow

from conftest import add_user, local_cluster, poll_until

FIXTURES = Path(__file__).parent / "fixtures" / "sessions"
VENV_BIN = str(Path(sys.executable).parent)
needs_jupyter = pytest.mark.skipif(not (Path(VENV_BIN) / "jupyter-lab").exists(),
                                   reason="needs jupyterlab in the test environment (the test extra)")


@pytest.fixture
def lab(make_platform, monkeypatch):
    # jobs of the single-tenant local executor get the server's PATH: the venv's jupyter on it
    monkeypatch.setenv("PATH", f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    platform = make_platform([local_cluster(tags=["jupyterlab"])],
                             sessions=SessionsConfig(start_timeout_s=120, idle_minutes=60))
    with EmbeddedServer(platform, run_services=False) as srv:
        yield platform, srv


def client(platform, srv, name: str, balance: str = "500.00", role: str | None = None) -> ComputeNetClient:
    _, token = add_user(platform, name, balance=balance)
    if role:
        with platform.db.session() as session:
            session.scalar(select(User).where(User.name == name)).role = role
    return ComputeNetClient(srv.url, token)


def advance(platform):
    poller, watch = ClusterPoller(platform, "local"), SessionWatch(platform)

    def step():
        poller.run_once()
        watch.run_once()
    return step


def wait_state(platform, who: ComputeNetClient, session_id: int, states: tuple[str, ...], timeout: float = 120):
    return poll_until(lambda: (s := who.session(session_id))["state"] in states and s, timeout=timeout,
                      what=f"session {session_id} to be {'/'.join(states)}", step=advance(platform))


def execute(base_ws: str, kernel_id: str, code: str, headers: dict) -> str:
    """Run code on the kernel over its WebSocket (Jupyter's messaging protocol); its stdout."""
    msg_id = uuid.uuid4().hex
    message = {"header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                          "msg_type": "execute_request", "version": "5.3"},
               "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
               "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                           "allow_stdin": False, "stop_on_error": True}}
    out = []
    with connect(f"{base_ws}api/kernels/{kernel_id}/channels", additional_headers=headers, open_timeout=30) as ws:
        ws.send(json.dumps(message))
        while True:
            reply = json.loads(ws.recv(timeout=60))
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = reply["header"]["msg_type"]
            if kind == "stream":
                out.append(reply["content"]["text"])
            if kind == "error":
                raise AssertionError(reply["content"])
            if kind == "status" and reply["content"]["execution_state"] == "idle":
                return "".join(out)


def session_cookie(who: ComputeNetClient, session_id: int) -> dict:
    """The session origin's cookie for a session, got with a ticket from the API (no token works there)."""
    entered = httpx.get(who.session_connect_url(session_id), timeout=30)
    assert entered.status_code == 303, entered.text
    return {"Cookie": f"cnet_access={entered.cookies['cnet_access']}"}


@needs_jupyter
def test_jupyterlab_through_the_proxy_owner_only_stopped_and_charged(lab):
    platform, srv = lab
    alice, bob = client(platform, srv, "alice"), client(platform, srv, "bob")
    started = alice.start_session("jupyterlab", cores=1, hours=1)
    assert started["state"] == "queued" and started["app"] == "jupyterlab" and started["cores"] == 1
    assert started["time_limit_minutes"] == 60
    sid, job_id = started["id"], started["job_id"]
    shown = wait_state(platform, alice, sid, ("running",))
    assert shown["ready"] and shown["url"] == f"{srv.origins.sessions}/sessions/{sid}/" and 0 < shown["time_left_s"] <= 3600
    assert Decimal(shown["cost_so_far"]) >= 0
    with platform.db.session() as session:
        row = session.get(InteractiveSession, sid)
        secret, workdir, host = row.secret, row.job.workdir, row.host
    assert host == socket.gethostname()
    # the secret: a private file in the job's directory, never in an answer or on a command line
    assert stat.S_IMODE(os.stat(Path(workdir) / ".cnet-session.secret").st_mode) == 0o600
    assert secret not in json.dumps(alice.sessions()) and secret not in json.dumps(alice.job(job_id).model_dump(mode="json"))
    jupyter = [p for p in Path("/proc").iterdir() if p.name.isdigit() and b"jupyter" in _cmdline(p)]
    assert jupyter and all(secret.encode() not in _cmdline(p) for p in jupyter)

    # on the sessions' own origin an API token opens nothing: a ticket from the API becomes a cookie
    token = {"Authorization": f"Bearer {alice.http.headers['authorization'].split()[-1]}"}
    base = shown["url"]
    assert httpx.get(f"{base}api/status", headers=token, timeout=30).status_code == 401
    auth = session_cookie(alice, sid)
    status = httpx.get(f"{base}api/status", headers=auth, timeout=30)
    assert status.status_code == 200 and "started" in status.json()
    # the secret file is in the session's directory, hidden from JupyterLab (no listing, no download)
    listing = httpx.get(f"{base}api/contents", headers=auth, timeout=30).json()
    assert ".cnet-session.secret" not in {item["name"] for item in listing["content"]}
    assert httpx.get(f"{base}api/contents/.cnet-session.secret", headers=auth, timeout=30).status_code == 404
    assert httpx.get(f"{base}files/.cnet-session.secret", headers=auth, timeout=30).status_code in (403, 404)
    lab_page = httpx.get(f"{base}lab", headers=auth, timeout=30)
    assert lab_page.status_code == 200 and "JupyterLab" in lab_page.text
    kernel = httpx.post(f"{base}api/kernels", headers=auth | {"Content-Type": "application/json"},
                        json={"name": "python3"}, timeout=60)
    assert kernel.status_code == 201, kernel.text
    code = "import os\nprint('sum of squares', sum(i * i for i in range(10)), 'in job', os.environ['SLURM_JOB_ID'])"
    printed = execute(base.replace("http://", "ws://"), kernel.json()["id"], code, auth)
    with platform.db.session() as session:
        native = session.get(InteractiveSession, sid).job.native_id
    assert printed.strip() == f"sum of squares 285 in job {native}"

    # someone else: 404 everywhere, as if there were no such session (HTTP, WebSocket, the API)
    bob_auth = {"Authorization": f"Bearer {bob.http.headers['authorization'].split()[-1]}"}
    assert httpx.get(f"{base}api/status", headers=bob_auth, timeout=30).status_code == 401
    assert httpx.get(f"{base}api/status", timeout=30).status_code == 401
    for ask in (lambda: bob.session(sid), lambda: bob.session_connect_url(sid)):
        with pytest.raises(ApiError) as info:
            ask()
        assert info.value.status == 404
    with pytest.raises(Exception) as closed:
        execute(base.replace("http://", "ws://"), kernel.json()["id"], "print(1)", bob_auth)
    assert "HTTP 401" in str(closed.value) or "4401" in str(closed.value)
    # a cross-site browser request is refused before it reaches the node
    assert httpx.post(f"{base}api/kernels", headers=auth | {"Origin": "https://evil.example"},
                      json={}, timeout=30).status_code == 403

    # an hour without a proxied request, but the kernel just ran a cell: JupyterLab's own account of
    # its activity keeps the session from an idle stop
    platform.settings.sessions.idle_minutes = 30
    with platform.db.session() as session:
        session.get(InteractiveSession, sid).last_activity_at = utcnow() - timedelta(hours=1)
    SessionWatch(platform).run_once()
    assert alice.session(sid)["state"] == "running"
    with platform.db.session() as session:
        assert utcnow() - session.get(InteractiveSession, sid).last_activity_at < timedelta(minutes=5)

    ended = alice.stop_session(sid)
    assert ended["state"] == "ended" and ended["ended_reason"] == "stopped"
    assert httpx.get(f"{base}api/status", headers=auth, timeout=30).status_code == 409
    poller = ClusterPoller(platform, "local")
    job = poll_until(lambda: (j := alice.job(job_id)).cost and j, timeout=60, step=poller.run_once,
                     what="the session's charge")
    assert job.state == "CANCELLED" and job.cost > 0
    # on the bill: the account's ledger shows the job's charge
    entries = [e for a in alice.me(entries=50).accounts for e in a.entries if e.job_id == job_id]
    assert any(e.kind == "post" and e.amount == -job.cost for e in entries), entries


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
    except OSError:
        return b""


def _publish(platform, srv, *names: str) -> None:
    with client(platform, srv, "operator1", role="operator") as op:
        for name in names:
            op.publish_app((FIXTURES / f"{name}.yaml").read_text(), "platform")


def test_a_server_that_never_comes_up_times_out_with_its_log(make_platform):
    platform = make_platform([local_cluster()], sessions=SessionsConfig(start_timeout_s=3))
    with EmbeddedServer(platform, run_services=False) as srv:
        _publish(platform, srv, "never-up")
        with client(platform, srv, "carol") as carol:
            sid = carol.start_session("never-up")["id"]
            shown = wait_state(platform, carol, sid, ("ended",), timeout=60)
            assert shown["ended_reason"] == "timeout" and "did not answer within 3 s" in shown["detail"]
            log = poll_until(lambda: carol.output(shown["job_id"]).data, what="the session's log")
            assert "loading the model the server needs" in log and "session server starts on" in log
            job = poll_until(lambda: (j := carol.job(shown["job_id"])).state == "CANCELLED" and j,
                             step=ClusterPoller(platform, "local").run_once, what="the job cancelled")
            assert job.state == "CANCELLED"


def test_a_report_naming_another_host_is_refused_and_never_proxied(make_platform):
    platform = make_platform([local_cluster()])
    with EmbeddedServer(platform, run_services=False) as srv:
        _publish(platform, srv, "elsewhere")
        with client(platform, srv, "dave") as dave:
            sid = dave.start_session("elsewhere")["id"]
            shown = wait_state(platform, dave, sid, ("ended",), timeout=60)
            assert shown["ended_reason"] == "refused" and "169.254.169.254" in shown["detail"]
            assert "not the job's node" in shown["detail"]
            with platform.db.session() as session:
                assert session.get(InteractiveSession, sid).address is None
            with pytest.raises(ApiError) as info:  # no way in to a session that never ran
                dave.session_connect_url(sid)
            assert info.value.status == 409


def test_report_check_accepts_only_the_jobs_node_and_a_port(make_platform):
    platform = make_platform([local_cluster()])
    with platform.db.session() as session:
        from computenet.store.models import Cluster, Job

        cluster = session.scalar(select(Cluster).where(Cluster.name == "local"))
        job = Job(cluster=cluster)
        me = socket.gethostname()
        assert report.check(platform, job, {"host": me, "port": 8888}) == (me, "127.0.0.1", 8888)
        for bad in ({"host": me, "port": 80}, {"host": me, "port": "8888"}, {"host": me, "port": 70000},
                    {"host": me, "port": True}, {"host": "localhost.evil", "port": 8888}, {"port": 8888},
                    ["host", me], "x"):
            with pytest.raises(report.ReportRefused):
                report.check(platform, job, bad)
        session.rollback()


def test_idle_session_is_stopped_and_its_owner_told_extend_holds_more(make_platform):
    platform = make_platform([local_cluster()], sessions=SessionsConfig(idle_minutes=0.05))
    with EmbeddedServer(platform, run_services=False) as srv:
        _publish(platform, srv, "tiny-web")
        with client(platform, srv, "erin", balance="100.00") as erin:
            sid = erin.start_session("tiny-web", hours=1)["id"]
            running = wait_state(platform, erin, sid, ("running", "ended"), timeout=60)
            assert running["state"] == "running", running
            before = Decimal(running["max_cost"])
            longer = erin.extend_session(sid, 30)
            assert longer["time_limit_minutes"] == 90 and Decimal(longer["max_cost"]) == before * Decimal("1.5")
            with platform.db.session() as session:  # the open hold covers the longer limit
                job = session.get(InteractiveSession, sid).job
                assert session.get(Transfer, job.hold_id).amount == int(job.max_cost * 100)
            with pytest.raises(ApiError) as info:  # above the partition's 24 h
                erin.extend_session(sid, 24 * 60)
            assert info.value.status == 400 and "at most 1440 min" in info.value.detail
            with pytest.raises(ApiError) as info:  # more than the account can hold (36/h a core, 100 in all)
                erin.extend_session(sid, 20 * 60)
            assert info.value.status == 402
            assert erin.session(sid)["time_limit_minutes"] == 90  # a refusal changes nothing
            ended = wait_state(platform, erin, sid, ("ended",), timeout=60)
            assert ended["ended_reason"] == "idle"
            with platform.db.session() as session:
                notes = session.scalars(select(Notification).where(Notification.kind == "session_idle")).all()
                assert len(notes) == 1 and f"session {sid}" in notes[0].message


def test_the_platform_cookies_stay_off_the_node_and_the_node_cannot_set_them():
    from computenet.api import session_proxy

    sent = session_proxy._request_headers(
        httpx.Headers({"cookie": "cnet_session=SIGNIN; _xsrf=abc; cnet_lang=en", "authorization": "Bearer T",
                       "host": "portal.example", "connection": "keep-alive"}), "SECRET")
    as_dict = {}
    for key, value in sent:
        as_dict.setdefault(key.lower(), []).append(value)
    assert as_dict["cookie"] == ["_xsrf=abc"] and as_dict["authorization"] == ["token SECRET"]
    assert "connection" not in as_dict and as_dict["host"] == ["portal.example"]
    kept = session_proxy._response_headers(httpx.Headers([
        ("set-cookie", "cnet_session=planted; Path=/"), ("set-cookie", "_xsrf=x; Path=/sessions/1/"),
        ("content-type", "text/html"), ("transfer-encoding", "chunked")]))
    assert kept == [("set-cookie", "_xsrf=x; Path=/sessions/1/"), ("content-type", "text/html")]


@pytest.mark.parametrize("body, status, words", [
    ({"app": "no-such-app"}, 404, "no app 'no-such-app'"),
    ({"app": "generic-shell"}, 400, "not interactive"),
    ({"app": "tiny-web", "cores": 0}, 422, "cores"),
    ({"app": "tiny-web", "cores": 3}, 400, "above the app's maximum of 2"),
    ({"app": "tiny-web", "hours": 0}, 422, "hours"),
    ({"app": "tiny-web", "hours": 25}, 400, "above the app's maximum of 1440"),
    ({"app": "tiny-web", "shell": "rm -rf /"}, 422, "shell"),
    ({"app": "tiny-web", "account": "someone-elses-lab"}, 400, "someone-elses-lab"),
])
def test_bad_starts_are_refused_and_leave_nothing_behind(make_platform, body, status, words):
    platform = make_platform([local_cluster()])
    with EmbeddedServer(platform, run_services=False) as srv:
        _publish(platform, srv, "tiny-web")
        with client(platform, srv, "fay") as fay:
            answer = fay.http.post("/sessions", json=body)
            assert answer.status_code == status, answer.text
            assert words in answer.text
            assert fay.sessions() == [] and fay.jobs() == []
            with platform.db.session() as session:
                assert session.scalar(select(func.count()).select_from(InteractiveSession)) == 0


def test_a_start_the_account_cannot_cover_is_refused_and_leaves_nothing(make_platform):
    platform = make_platform([local_cluster()])
    with EmbeddedServer(platform, run_services=False) as srv:
        _publish(platform, srv, "tiny-web")
        with client(platform, srv, "gus", balance="1.00") as gus:
            with pytest.raises(ApiError) as info:
                gus.start_session("tiny-web", hours=2)  # 36 an hour a core
            assert info.value.status == 402 and "cannot cover" in info.value.detail
            assert gus.sessions() == [] and gus.jobs() == []
