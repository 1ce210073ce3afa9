"""The reverse proxy of interactive sessions: /sessions/<id>/... on the session origin, for the
session's owner only.

HTTP (streamed both ways, httpx) and WebSockets (the `websockets` library) go to the host and
port the session reported and the watch accepted (services/sessions/report.py), read from the
database: nothing in the request chooses the target, only the path under the session's base URL.
The proxy adds the session's secret (Authorization: token ...); the platform's own cookies and
the caller's credentials never reach the node, and the node cannot set the platform's cookies.
Anyone but the owner gets 404, as for a session that does not exist (or 401: no way in at all).

It runs on the sessions' own origin (api/session_origin.py), where the only credential is a cookie
of the one session (services/sessions/access.py): the portal's cookie and API tokens open nothing
here. The owner gets that cookie at /sessions/<id>/_cnet/enter?ticket=..., with a one-time ticket
from the portal's "connect" (or the API's POST /sessions/<id>/ticket); a browser without it is sent
to the portal's connect, which asks for a sign-in when needed. The portal's origin only redirects.
Where it connects is sessions.reach.target's answer (the node, or a port forwarded over the cluster's
SSH connection). A session that is not running, or whose server stopped answering (its node died),
gets a 409 that says so: a page in the reader's language for a browser, JSON otherwise; never a 5xx.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qsl, quote, urlencode
from http.cookies import SimpleCookie

import httpx
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from starlette.background import BackgroundTask

from ..services.tenancy import tokens
from ..services.platform import Platform
from ..clusters.base import ClusterError
from ..services import sessions as sessions_service
from ..services.sessions import access, base_url, reach
from ..services.signin import web_sessions
from ..store.models import InteractiveSession
from ..store.types import utcnow
from .session_origin import ENTER, NEXT_PATH, TICKET_PARAM, Origins

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}
ACCESS_COOKIE = "cnet_access"  # a session's own cookie on the session origin (Path=/sessions/<id>/)
PLATFORM_COOKIES = {web_sessions.COOKIE, "cnet_lang", ACCESS_COOKIE}
ACTIVITY_EVERY_S = 30.0  # a session's last use is written at most this often
CHUNK_BYTES = 1 << 20  # a download is passed on in blocks of up to this (fewer, larger ASGI sends)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class Refused(Exception):
    def __init__(self, status: int, detail: str, language: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.language = status, detail, language


def _said(exc: Refused, headers) -> JSONResponse | HTMLResponse:
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
    """The portal's signed-in user (a browser session, or an API token as a Bearer credential): for
    the portal origin's own sockets (the login shell), never for a session's proxy."""
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


def _session_caller(platform: Platform, cookies: dict, session_id: int) -> int:
    """The user whose cookie for this session came with the request (nothing else counts here)."""
    secret = cookies.get(ACCESS_COOKIE)
    if not secret:
        raise Refused(401, "open the session from the portal")
    with platform.db.session() as session:
        try:
            return access.check_cookie(session, secret, session_id)
        except access.AccessRefused as exc:
            raise Refused(exc.status, exc.detail) from None


def _redeem(platform: Platform, ticket: str, session_id: int, cookie: bool = True) -> str:
    """The cookie a ticket is exchanged for (cookie=False: its user's id, for a WebSocket's ticket);
    the ticket is spent even when refused."""
    refused = None
    with platform.db.session() as session:
        try:
            return access.redeem_ticket(session, ticket, session_id, platform.settings, cookie=cookie)
        except access.AccessRefused as exc:
            refused = exc  # leaving the block commits the spent ticket
    raise Refused(refused.status, refused.detail)


def _host_check(origins: Origins, headers, session_id: int) -> None:
    """On a host per session, the host's session must be the path's."""
    own = origins.host_session(headers.get("host", ""))
    if own is not None and own is not False and own != session_id:
        raise Refused(404, f"no session {session_id}")


def _navigation(request: Request) -> bool:
    if request.method != "GET":
        return False
    mode = request.headers.get("sec-fetch-mode")
    return mode == "navigate" if mode is not None else "text/html" in request.headers.get("accept", "")


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
        cluster = row.job.cluster.name if row.job is not None else None  # no job: a stand-in server here
        where = (cluster, session_id, row.address, row.port)
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


def _same_origin(headers, scheme: str, also: str | None = None) -> bool:
    """A browser's request from another site is refused (SameSite=Lax already keeps the cookie off
    most of them; a WebSocket handshake has no CSRF token). ``also``: one more origin allowed."""
    origin = headers.get("origin")
    if origin is None:  # not a browser's cross-site request
        return True
    host = headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}") or (also is not None and origin == also)


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
    if TICKET_PARAM in query:  # the ticket is the platform's: the node never sees it
        query = urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != TICKET_PARAM])
    return path + (f"?{query}" if query else "")


def _enter(request: Request, platform: Platform, origins: Origins, session_id: int):
    """A ticket from the portal becomes this session's cookie; then on to the page it was for."""
    wanted = request.query_params.get("next", "")
    if not NEXT_PATH.match(wanted):
        raise Refused(400, "next must be a path under the session")
    cookie = _redeem(platform, request.query_params.get("ticket", ""), session_id)
    response = RedirectResponse(base_url(session_id) + wanted, status_code=303)
    per_host = "{id}" in origins.sessions  # a host of its own: the cookie stays on it (host-only)
    response.set_cookie(ACCESS_COOKIE, cookie, path="/" if per_host else base_url(session_id), httponly=True,
                        samesite="lax", secure=origins.secure() or request.url.scheme == "https")
    response.headers["Referrer-Policy"] = "no-referrer"  # the spent ticket is in this URL
    response.headers["Cache-Control"] = "no-store"
    return response


def _refusal(request: Request, origins: Origins, session_id: int, exc: Refused):
    """A browser opening a page without its cookie goes to the portal's connect (and back)."""
    if exc.status == 401 and _navigation(request):
        rest = request.url.path[len(base_url(session_id)):]
        target = f"{origins.portal}/portal/sessions/{session_id}/connect"
        if NEXT_PATH.match(rest):
            target += "?next=" + quote(rest, safe="/")
        return RedirectResponse(target, status_code=303)
    return _said(exc, request.headers)


def mount_portal_side(app: FastAPI) -> None:
    """On the portal's origin, /sessions/<id>/... is the session origin's: GET is redirected there,
    anything else refused (after the API's own /sessions routes, which are matched first)."""

    @app.api_route("/sessions/{session_id}/{path:path}", methods=METHODS, include_in_schema=False)
    async def elsewhere(session_id: int, path: str, request: Request):
        origins: Origins = request.app.state.origins
        raw = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")  # as sent
        query = request.scope.get("query_string", b"").decode("latin-1")
        target = origins.session_origin(session_id) + raw + (f"?{query}" if query else "")
        if request.method in ("GET", "HEAD"):
            return RedirectResponse(target, status_code=302)
        return JSONResponse({"detail": f"sessions are served at {origins.session_origin(session_id)}, "
                                       "not on the portal's address"}, status_code=403)

    @app.websocket("/sessions/{session_id}/{path:path}")
    async def elsewhere_ws(websocket: WebSocket, session_id: int, path: str):
        origins: Origins = websocket.app.state.origins
        detail = f"sessions are served at {origins.session_origin(session_id)}, not on the portal's address"
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(JSONResponse({"detail": detail}, status_code=403))
        else:
            await websocket.close(code=4403, reason=detail[:120])


def sessions_app(platform: Platform, state) -> FastAPI:
    """The session origin's whole app: the proxy and nothing else (no API, no portal)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state = state  # the portal app's (platform, origins)
    mount(app)

    @app.api_route("/{path:path}", methods=METHODS, include_in_schema=False)
    async def nothing_else(path: str):
        return JSONResponse({"detail": "this address serves interactive sessions only"}, status_code=404)
    return app


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
        origins: Origins = request.app.state.origins
        try:
            _host_check(origins, request.headers, session_id)
            if path == ENTER and request.method == "GET":
                return await run_in_threadpool(_enter, request, platform, origins, session_id)
            if request.method not in ("GET", "HEAD", "OPTIONS") and not _same_origin(request.headers, request.url.scheme):
                raise Refused(403, "a request from another site is refused")
            user_id = await run_in_threadpool(_session_caller, platform, request.cookies, session_id)
            address, port, secret, language = await run_in_threadpool(_target, platform, user_id, session_id)
            target = f"http://{address}:{port}{_path(request.scope, session_id)}"
        except Refused as exc:
            return _refusal(request, origins, session_id, exc)
        if activity.due(session_id):
            await run_in_threadpool(activity.touch, platform, session_id)
            await run_in_threadpool(reach.sweep, platform)  # forwards to sessions ended elsewhere
        body = request.stream() if request.method not in ("GET", "HEAD") else None
        upstream = http_client().build_request(request.method, httpx.URL(target),
                                               headers=_request_headers(request.headers, secret), content=body)
        try:
            answer = await http_client().send(upstream, stream=True)
        except httpx.HTTPError as exc:  # the node died, or its server did: said plainly, not a 502
            return _said(Refused(409, sessions_service.not_answering(session_id, type(exc).__name__), language),
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
        origins: Origins = websocket.app.state.origins
        try:
            _host_check(origins, websocket.headers, session_id)
            ticket = websocket.query_params.get(TICKET_PARAM)
            # with a ticket (the portal's shell page) the portal's origin may open it; a cookie: this origin only
            if not _same_origin(websocket.headers, websocket.url.scheme, origins.portal if ticket else None):
                raise Refused(403, "a connection from another site is refused")
            if ticket:
                user_id = int(await run_in_threadpool(_redeem, platform, ticket, session_id, False))
            else:
                user_id = await run_in_threadpool(_session_caller, platform, websocket.cookies, session_id)
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
