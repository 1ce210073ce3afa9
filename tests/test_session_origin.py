"""Sessions on an origin of their own (issue 18): the ticket service, and the proxy on the session
origin against a small real HTTP/WebSocket server standing in for a session's node.

The session origin takes neither the portal's cookie nor an API token; a one-time ticket (seconds of
life, used once, bound to user and session) becomes a cookie of that one session; the portal's origin
only redirects there; the API's URLs are on the session origin."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta
from http.cookies import SimpleCookie

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.server import serve as ws_serve
from websockets.sync.client import connect

from computenet.api.session_origin import Origins, origins
from computenet.cli.embedded import EmbeddedServer
from computenet.config import SessionsConfig
from computenet.services.tenancy import accounts
from computenet.services.errors import Conflict, NotFound
from computenet.services.sessions import access
from computenet.services.signin import web_sessions
from computenet.store.models import InteractiveSession, SessionAccess, User
from computenet.store.types import utcnow

from conftest import add_user, make_settings

class FakeNode:
    """A session's server: answers HTTP with what it was sent (headers, path) and echoes WebSocket text."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def echo(ws):
            async for message in ws:
                await ws.send(json.dumps({"echo": message, "path": ws.request.path,
                                          "headers": dict(ws.request.headers.raw_items())}))

        def http(connection, request):
            if request.headers.get("upgrade", "").lower() == "websocket":
                return None
            body = json.dumps({"path": request.path, "headers": dict(request.headers.raw_items())})
            response = connection.respond(200, body)
            response.headers["Content-Type"] = "application/json"
            response.headers["Set-Cookie"] = "cnet_access=planted; Path=/"
            return response

        async def main():
            async with ws_serve(echo, "127.0.0.1", 0, process_request=http) as server:
                self.port = server.sockets[0].getsockname()[1]
                self.stop = self.loop.create_future()
                self.ready.set()
                await self.stop
        self.loop.run_until_complete(main())

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set_result, None)
        self.thread.join(10)


@pytest.fixture
def node():
    made = FakeNode()
    yield made
    made.close()


def running_session(platform, owner_id: int, node: FakeNode | None = None) -> int:
    with platform.db.session() as session:
        row = InteractiveSession(owner_id=owner_id, app="jupyterlab", app_version="4", kind="jupyterlab",
                                 state="running", secret="node-secret-" + str(owner_id), address="127.0.0.1",
                                 port=node.port if node else 9, detail="")
        session.add(row)
        session.flush()
        return row.id


def signed_in(platform, name: str) -> tuple[int, str]:
    """A portal sign-in of the user: the web session's id and its cookie."""
    with platform.db.session() as session:
        user = accounts.get_user(session, name)
        row, secret = web_sessions.start(session, user, "password", "127.0.0.1", "test", platform.settings.auth)
        return row.id, secret


# -- the ticket service -----------------------------------------------------------------------------

def test_a_ticket_works_once_for_its_session_and_becomes_a_cookie_of_that_session(make_platform):
    platform = make_platform()
    alice, _ = add_user(platform, "alice")
    bob, _ = add_user(platform, "bob")
    mine, theirs = running_session(platform, alice), running_session(platform, bob)
    with platform.db.session() as session:
        user = session.get(User, alice)
        ticket = access.issue_ticket(session, user, mine, platform.settings)
        with pytest.raises(NotFound):  # someone else's session: as if there were none
            access.issue_ticket(session, user, theirs, platform.settings)
        stored = session.scalars(select(SessionAccess)).all()
        assert [r.kind for r in stored] == ["ticket"] and ticket not in {r.secret_hash for r in stored}
    with platform.db.session() as session:
        with pytest.raises(access.AccessRefused) as other:  # a ticket opens only its own session
            access.redeem_ticket(session, ticket, theirs, platform.settings)
        assert other.value.status == 403
    with platform.db.session() as session:
        cookie = access.redeem_ticket(session, ticket, mine, platform.settings)
        assert access.check_cookie(session, cookie, mine) == alice
        with pytest.raises(access.AccessRefused):
            access.check_cookie(session, cookie, theirs)
    with platform.db.session() as session:
        with pytest.raises(access.AccessRefused) as again:
            access.redeem_ticket(session, ticket, mine, platform.settings)
        assert again.value.status == 403 and "used already" in again.value.detail


def test_a_ticket_expires_in_seconds_and_a_stopped_session_gets_none(make_platform):
    platform = make_platform(sessions=SessionsConfig(ticket_seconds=5))
    alice, _ = add_user(platform, "alice")
    sid = running_session(platform, alice)
    then = utcnow()
    with platform.db.session() as session:
        ticket = access.issue_ticket(session, session.get(User, alice), sid, platform.settings, now=then)
    with platform.db.session() as session:
        with pytest.raises(access.AccessRefused) as late:
            access.redeem_ticket(session, ticket, sid, platform.settings, now=then + timedelta(seconds=6))
        assert "expired" in late.value.detail
    with platform.db.session() as session:
        session.get(InteractiveSession, sid).state = "ended"
    with platform.db.session() as session:
        with pytest.raises(Conflict):
            access.issue_ticket(session, session.get(User, alice), sid, platform.settings)


def test_signing_out_of_the_portal_or_suspension_closes_the_session_too(make_platform):
    platform = make_platform()
    alice, _ = add_user(platform, "alice")
    sid = running_session(platform, alice)
    web_id, _ = signed_in(platform, "alice")
    with platform.db.session() as session:
        ticket = access.issue_ticket(session, session.get(User, alice), sid, platform.settings,
                                     web_session_id=web_id)
    with platform.db.session() as session:
        cookie = access.redeem_ticket(session, ticket, sid, platform.settings)
        assert access.check_cookie(session, cookie, sid) == alice
        web_sessions.revoke(session, session.get(User, alice), web_id)
    with platform.db.session() as session:
        with pytest.raises(access.AccessRefused) as out:
            access.check_cookie(session, cookie, sid)
        assert "signed out" in out.value.detail
    # an API client's ticket (no sign-in to follow): the user's status still counts
    with platform.db.session() as session:
        ticket = access.issue_ticket(session, session.get(User, alice), sid, platform.settings)
        cookie = access.redeem_ticket(session, ticket, sid, platform.settings)
        session.get(User, alice).status = "suspended"
    with platform.db.session() as session:
        with pytest.raises(access.AccessRefused):
            access.check_cookie(session, cookie, sid)


def test_the_embedded_default_and_configured_origins():
    from pathlib import Path

    settings = make_settings(Path("/nonexistent"), "sqlite://", [])
    default = origins(settings, 8750, 8751)
    assert default.portal == "http://127.0.0.1:8750" and default.sessions == "http://localhost:8751"
    assert default.session_url(7, "lab") == "http://localhost:8751/sessions/7/lab"
    one = Origins("https://hpc.example.org", "https://sessions.example.org")
    assert one.is_sessions_request({"headers": [(b"host", b"sessions.example.org")], "server": ("10.0.0.1", 8750)})
    assert not one.is_sessions_request({"headers": [(b"host", b"hpc.example.org")], "server": ("10.0.0.1", 8750)})
    each = Origins("https://hpc.example.org", "https://{id}.sessions.example.org")
    assert each.session_url(12) == "https://12.sessions.example.org/sessions/12/"
    assert each.host_session("12.sessions.example.org") == 12 and each.host_session("hpc.example.org") is False
    assert each.host_session("x.12.sessions.example.org") is False
    with pytest.raises(ValueError):
        SessionsConfig(origin="https://sessions.example.org/path")


# -- the proxy on the session origin ------------------------------------------------------------------

def test_the_session_origin_takes_only_a_tickets_cookie(make_platform, node):
    platform = make_platform()
    alice, alice_token = add_user(platform, "alice")
    bob, bob_token = add_user(platform, "bob")
    sid, bobs = running_session(platform, alice, node), running_session(platform, bob, node)
    _, portal_cookie = signed_in(platform, "alice")
    with EmbeddedServer(platform, run_services=False) as server:
        where = server.origins
        assert where.sessions.startswith("http://localhost:") and where.portal == server.url
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {alice_token}"}, timeout=30)
        # the API's URLs are on the session origin
        assert api.get(f"/sessions/{sid}").json()["url"] == f"{where.sessions}/sessions/{sid}/"
        # the portal's origin no longer serves sessions: a redirect there, anything else refused
        moved = httpx.get(f"{server.url}/sessions/{sid}/api/status?x=1", cookies={"cnet_session": portal_cookie})
        assert moved.status_code == 302 and moved.headers["location"] == f"{where.sessions}/sessions/{sid}/api/status?x=1"
        assert httpx.post(f"{server.url}/sessions/{sid}/api/kernels", json={}).status_code == 403
        # on the session origin: neither the portal's cookie nor an API token opens anything
        base = f"{where.sessions}/sessions/{sid}/"
        assert httpx.get(f"{base}api/status", headers={"Authorization": f"Bearer {alice_token}"}).status_code == 401
        assert httpx.get(f"{base}api/status", cookies={"cnet_session": portal_cookie}).status_code == 401
        # and it serves nothing but sessions: no portal, no API
        for path in ("/portal/jobs", "/sessions", f"/sessions/{sid}", "/health", "/auth/sessions"):
            assert httpx.get(f"{where.sessions}{path}", cookies={"cnet_session": portal_cookie},
                             headers={"Authorization": f"Bearer {alice_token}"}).status_code == 404, path
        # a browser without the cookie is sent to the portal's connect (which asks for a sign-in)
        bounced = httpx.get(f"{base}lab", headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"})
        assert bounced.status_code == 303
        assert bounced.headers["location"] == f"{server.url}/portal/sessions/{sid}/connect?next=lab"

        made = api.post(f"/sessions/{sid}/ticket")
        assert made.status_code == 201, made.text
        connect_url = made.json()["connect_url"]
        assert connect_url.startswith(f"{where.sessions}/sessions/{sid}/_cnet/enter?ticket=")
        assert api.post(f"/sessions/{bobs}/ticket").status_code == 404  # bob's session: not found
        entered = httpx.get(connect_url)
        assert entered.status_code == 303 and entered.headers["location"] == f"/sessions/{sid}/"
        jar = SimpleCookie(entered.headers["set-cookie"])
        cookie = jar["cnet_access"]
        assert cookie["path"] == f"/sessions/{sid}/" and cookie["httponly"] and cookie["samesite"].lower() == "lax"
        assert entered.headers["referrer-policy"] == "no-referrer"
        # used once: the same link again is refused and gives no cookie
        again = httpx.get(connect_url)
        assert again.status_code == 403 and "set-cookie" not in again.headers

        session_cookie = {"cnet_access": cookie.value, "cnet_session": portal_cookie, "_xsrf": "kept"}
        seen = httpx.get(f"{base}api/status?a=b", cookies=session_cookie)
        assert seen.status_code == 200
        sent = seen.json()
        assert sent["path"] == f"/sessions/{sid}/api/status?a=b"
        assert sent["headers"]["authorization"] == f"token node-secret-{alice}"
        assert sent["headers"]["cookie"] == "_xsrf=kept"  # neither platform cookie reaches the node
        assert "cnet_access" not in seen.headers.get("set-cookie", "")  # nor may the node set one
        # that cookie is this session's alone: bob's session says 404/401 to it
        assert httpx.get(f"{where.sessions}/sessions/{bobs}/api/status",
                         cookies={"cnet_access": cookie.value}).status_code in (401, 404)

        # a ticket for bob's own session does not open alice's
        bob_api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {bob_token}"}, timeout=30)
        bob_ticket = bob_api.post(f"/sessions/{bobs}/ticket").json()["connect_url"].split("ticket=")[1].split("&")[0]
        assert httpx.get(f"{base}_cnet/enter?ticket={bob_ticket}&next=").status_code == 403

        # hostile input: a "next" that leaves the session, a ticket that is no ticket: 4xx, nothing made
        # (a plain query is allowed in next: noVNC's page takes its options so)
        for bad in ("//evil.example/", "../../portal/jobs", "/portal/jobs", "x?y=<b>", "lab/%2e%2e/x", "x?a=1#f"):
            answer = httpx.get(f"{base}_cnet/enter", params={"ticket": "t", "next": bad})
            assert answer.status_code == 400 and "set-cookie" not in answer.headers, bad
        for junk in ("", "x" * 5000, "\u00e9\u0000"):
            answer = httpx.get(f"{base}_cnet/enter", params={"ticket": junk, "next": ""})
            assert answer.status_code == 403 and "set-cookie" not in answer.headers
        assert httpx.get(f"{base}api/status", cookies={"cnet_access": "forged"}).status_code == 401

        # an expired ticket is refused
        late = api.post(f"/sessions/{sid}/ticket").json()["connect_url"]
        with platform.db.session() as session:
            for row in session.scalars(select(SessionAccess).where(SessionAccess.used_at.is_(None),
                                                                          SessionAccess.kind == "ticket")):
                row.expires_at = utcnow() - timedelta(seconds=1)
        refused = httpx.get(late)
        assert refused.status_code == 403 and "expired" in refused.json()["detail"]

        # a WebSocket: with the cookie on the session origin, or with a ticket from the portal's page
        ws_base = base.replace("http://", "ws://")
        with connect(f"{ws_base}websocket", additional_headers={
                "Cookie": f"cnet_access={cookie.value}", "Origin": where.sessions}, open_timeout=10) as ws:
            ws.send("hello")
            echoed = json.loads(ws.recv(timeout=10))
        assert echoed["echo"] == "hello" and echoed["headers"]["authorization"] == f"token node-secret-{alice}"
        with pytest.raises(Exception):  # the portal's page may not use the cookie (another origin)
            connect(f"{ws_base}websocket", additional_headers={
                "Cookie": f"cnet_access={cookie.value}", "Origin": server.url}, open_timeout=10).close()
        fresh = api.post(f"/sessions/{sid}/ticket").json()["connect_url"].split("ticket=")[1].split("&")[0]
        with connect(f"{ws_base}websocket?cnet-ticket={fresh}", additional_headers={"Origin": server.url},
                     open_timeout=10) as ws:
            ws.send("from the portal")
            echoed = json.loads(ws.recv(timeout=10))
        assert echoed["echo"] == "from the portal" and "cnet-ticket" not in echoed["path"]
        with pytest.raises(Exception):  # once only
            connect(f"{ws_base}websocket?cnet-ticket={fresh}", additional_headers={"Origin": server.url},
                    open_timeout=10).close()
        api.close()
        bob_api.close()


def test_a_host_per_session_takes_only_its_own_sessions_path(make_platform, node):
    platform = make_platform(sessions=SessionsConfig(origin="http://{id}.sessions.test"))
    alice, token = add_user(platform, "alice")
    sid = running_session(platform, alice, node)
    other = running_session(platform, alice, node)
    with EmbeddedServer(platform, run_services=False) as server:
        assert server.origins.port is None  # by Host alone: one listening port
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        connect_url = api.post(f"/sessions/{sid}/ticket").json()["connect_url"]
        assert connect_url.startswith(f"http://{sid}.sessions.test/sessions/{sid}/_cnet/enter?")
        path = connect_url.split("sessions.test", 1)[1]
        host = {"Host": f"{sid}.sessions.test"}
        entered = httpx.get(f"{server.url}{path}", headers=host)
        assert entered.status_code == 303
        cookie = SimpleCookie(entered.headers["set-cookie"])["cnet_access"]
        assert cookie["path"] == "/"  # host-only on the session's own host
        jar = {"cnet_access": cookie.value}
        assert httpx.get(f"{server.url}/sessions/{sid}/api/status", headers=host, cookies=jar).status_code == 200
        # another session's path on this session's host: not found
        assert httpx.get(f"{server.url}/sessions/{other}/api/status", headers=host, cookies=jar).status_code == 404
        assert httpx.get(f"{server.url}/portal/jobs", headers=host).status_code == 404
        api.close()
