"""The reverse proxy of interactive sessions: /sessions/<id>/... for the session's owner only.

HTTP (streamed both ways, httpx) and WebSockets (the `websockets` library) go to the host and
port the session reported and the watch accepted (services/sessions/report.py), read from the
database: nothing in the request chooses the target, only the path under the session's base URL.
The proxy adds the session's secret (Authorization: token ...); the platform's own cookies and
the caller's credentials never reach the node, and the node cannot set the platform's cookies.
Anyone but the owner gets 404, as for a session that does not exist. Where it connects is
sessions.reach.target's answer (the node, or a port forwarded over the cluster's SSH connection).
A session that is not running, or whose server stopped answering (its node died), gets a 409 that
says so: a page in the reader's language for a browser, JSON otherwise; never a 5xx.
"""

from __future__ import annotations

import asyncio
import time
from http.cookies import SimpleCookie

import httpx
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from ..services import tokens
from ..services.platform import Platform
from ..clusters.base import ClusterError
from ..services import sessions as sessions_service
from ..services.sessions import base_url, reach
from ..services.signin import web_sessions
from ..store.models import InteractiveSession
from ..store.types import utcnow

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}
PLATFORM_COOKIES = {web_sessions.COOKIE, "cnet_lang"}
ACTIVITY_EVERY_S = 30.0  # a session's last use is written at most this often
CHUNK_BYTES = 1 << 20  # a download is passed on in blocks of up to this (fewer, larger ASGI sends)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class Refused(Exception):
    def __init__(self, status: int, detail: str, language: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.language = status, detail, language


def _refusal(exc: Refused, headers) -> JSONResponse | HTMLResponse:
    """JSON for a program; for a browser's page load, a short page in the reader's language."""
    if "text/html" not in headers.get("accept", ""):
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status)
    from html import escape

    from ..web import i18n

    language = i18n.choose(exc.language, None, headers.get("accept-language"))
    said = i18n.localise(exc.detail, language, i18n.Formats(language, "CNY"))
    back = i18n.translations(language).gettext("Back to your sessions")
    page = (f'<!doctype html><html lang="{language}"><head><meta charset="utf-8"><title>{escape(said[:80])}</title>'
            f'</head><body><main><p role="alert">{escape(said)}</p>'
            f'<p><a href="/portal/sessions">{escape(back)}</a></p></main></body></html>')
    return HTMLResponse(page, status_code=exc.status)


def _caller(platform: Platform, cookies: dict, authorization: str | None) -> int:
    """The signed-in user's id (a browser session, or an API token as a Bearer credential)."""
    with platform.db.session() as session:
        if authorization and authorization.lower().startswith("bearer "):
            try:
                token = tokens.check(session, authorization[7:].strip())
            except tokens.TokenRefused as exc:
                raise Refused(401, str(exc)) from None
            return token.user_id
        secret = cookies.get(web_sessions.COOKIE)
        if secret:
            try:
                return web_sessions.check(session, secret, platform.settings.auth).user_id
            except web_sessions.SessionRefused as exc:
                raise Refused(401, str(exc)) from None
    raise Refused(401, "sign in to open a session")


def _target(platform: Platform, user_id: int, session_id: int) -> tuple[str, int, str, str | None]:
    """(host, port, secret, the owner's language) to reach a running session of this user."""
    with platform.db.session() as session:
        row = session.get(InteractiveSession, session_id)
        if row is None or row.owner_id != user_id:
            raise Refused(404, sessions_service.not_open(None, session_id))
        language = row.owner.language if row.owner is not None else None
        why = sessions_service.not_open(row, session_id)
        if why is not None:
            if row.state == "ended":
                reach.release(platform, session_id)  # this process's forward to it, if any
            raise Refused(409, why, language)
        where = (row.job.cluster.name, session_id, row.address, row.port)
        secret = row.secret
    try:  # outside the database session: a forward over SSH may have to connect first
        address, port = reach.connect_to(platform, *where)
    except ClusterError as exc:
        raise Refused(409, sessions_service.not_answering(session_id, str(exc)), language) from None
    return address, port, secret, language


class _Activity:
    """When each session was last used (in memory; written through every ACTIVITY_EVERY_S)."""

    def __init__(self) -> None:
        self.written: dict[int, float] = {}

    def due(self, session_id: int) -> bool:
        return time.monotonic() - self.written.get(session_id, 0.0) >= ACTIVITY_EVERY_S

    def touch(self, platform: Platform, session_id: int) -> None:
        if not self.due(session_id):
            return
        self.written[session_id] = time.monotonic()
        with platform.db.session() as session:
            row = session.get(InteractiveSession, session_id)
            if row is not None and row.state == "running":
                row.last_activity_at = utcnow()


def _same_origin(headers, scheme: str) -> bool:
    """A browser's request from another site is refused (SameSite=Lax already keeps the cookie off
    most of them; a WebSocket handshake has no CSRF token)."""
    origin = headers.get("origin")
    if origin is None:  # not a browser's cross-site request
        return True
    host = headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def _forward_cookies(header: str | None) -> str | None:
    if not header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(header)
    except Exception:
        return None
    kept = [f"{name}={morsel.coded_value}" for name, morsel in jar.items() if name not in PLATFORM_COOKIES]
    return "; ".join(kept) or None


def _request_headers(headers, secret: str) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP | {"authorization", "cookie"}]
    cookies = _forward_cookies(headers.get("cookie"))
    if cookies:
        out.append(("cookie", cookies))
    out.append(("host", headers.get("host", "")))  # the server checks Origin against Host (Jupyter)
    out.append(("authorization", f"token {secret}"))
    return out


def _response_headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    out = []
    for key, value in headers.multi_items():
        if key.lower() in HOP_BY_HOP:
            continue
        if key.lower() == "set-cookie" and value.split("=", 1)[0].strip() in PLATFORM_COOKIES:
            continue  # the node may not replace the platform's sign-in
        out.append((key, value))
    return out


def _path(scope, session_id: int) -> str:
    raw = scope.get("raw_path") or scope["path"].encode()
    path = raw.decode("latin-1")
    if not path.startswith(base_url(session_id)):
        raise Refused(404, "not a session path")
    query = scope.get("query_string", b"").decode("latin-1")
    return path + (f"?{query}" if query else "")


def mount(app: FastAPI) -> None:
    activity = _Activity()
    client: dict[str, httpx.AsyncClient] = {}

    def http_client() -> httpx.AsyncClient:
        if "c" not in client:
            client["c"] = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=False,
                                            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        return client["c"]

    @app.api_route("/sessions/{session_id}/{path:path}", methods=METHODS, include_in_schema=False)
    async def proxy_http(session_id: int, path: str, request: Request):
        platform: Platform = request.app.state.platform
        try:
            if request.method not in ("GET", "HEAD", "OPTIONS") and not _same_origin(request.headers, request.url.scheme):
                raise Refused(403, "a request from another site is refused")
            user_id = await run_in_threadpool(_caller, platform, request.cookies, request.headers.get("authorization"))
            address, port, secret, language = await run_in_threadpool(_target, platform, user_id, session_id)
            target = f"http://{address}:{port}{_path(request.scope, session_id)}"
        except Refused as exc:
            return _refusal(exc, request.headers)
        if activity.due(session_id):
            await run_in_threadpool(activity.touch, platform, session_id)
            await run_in_threadpool(reach.sweep, platform)  # forwards to sessions ended elsewhere
        body = request.stream() if request.method not in ("GET", "HEAD") else None
        upstream = http_client().build_request(request.method, httpx.URL(target),
                                               headers=_request_headers(request.headers, secret), content=body)
        try:
            answer = await http_client().send(upstream, stream=True)
        except httpx.HTTPError as exc:  # the node died, or its server did: said plainly, not a 502
            return _refusal(Refused(409, sessions_service.not_answering(session_id, type(exc).__name__), language),
                            request.headers)
        response = StreamingResponse(answer.aiter_raw(CHUNK_BYTES), status_code=answer.status_code,
                                     background=BackgroundTask(answer.aclose))
        response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                for k, v in _response_headers(answer.headers)]
        if "content-length" in answer.headers and "content-encoding" not in answer.headers:
            response.raw_headers.append((b"content-length", answer.headers["content-length"].encode()))
        return response

    @app.websocket("/sessions/{session_id}/{path:path}")
    async def proxy_ws(websocket: WebSocket, session_id: int, path: str):
        import websockets
        from websockets.asyncio.client import connect

        platform: Platform = websocket.app.state.platform
        try:
            if not _same_origin(websocket.headers, websocket.url.scheme):
                raise Refused(403, "a connection from another site is refused")
            user_id = await run_in_threadpool(_caller, platform, websocket.cookies,
                                              websocket.headers.get("authorization"))
            address, port, secret, _ = await run_in_threadpool(_target, platform, user_id, session_id)
            target = f"ws://{address}:{port}{_path(websocket.scope, session_id)}"
        except Refused as exc:
            # an HTTP answer to the handshake where the server can send one (404 as for HTTP), else a close
            if "websocket.http.response" in websocket.scope.get("extensions", {}):
                await websocket.send_denial_response(JSONResponse({"detail": str(exc.detail)},
                                                                  status_code=exc.status))
            else:
                await websocket.close(code=4000 + exc.status, reason=str(exc.detail)[:120])
            return
        await run_in_threadpool(activity.touch, platform, session_id)
        headers = [("authorization", f"token {secret}")]
        cookies = _forward_cookies(websocket.headers.get("cookie"))
        if cookies:
            headers.append(("cookie", cookies))
        wanted = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        try:
            upstream = await connect(target, additional_headers=headers, subprotocols=wanted or None,
                                     max_size=None, open_timeout=10, compression=None)
        except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError):
            await websocket.close(code=1011, reason="the session's server did not answer")
            return
        await websocket.accept(subprotocol=upstream.subprotocol)

        async def to_node():
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                await upstream.send(message["bytes"] if message.get("bytes") is not None else message["text"])
                if activity.due(session_id):  # a kernel in use over one socket is a session in use
                    await run_in_threadpool(activity.touch, platform, session_id)

        async def to_browser():
            async for message in upstream:
                if isinstance(message, bytes):
                    await websocket.send_bytes(message)
                else:
                    await websocket.send_text(message)

        tasks = [asyncio.create_task(to_node()), asyncio.create_task(to_browser())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await upstream.close()
            try:
                await websocket.close()
            except (RuntimeError, WebSocketDisconnect):
                pass  # closed already
