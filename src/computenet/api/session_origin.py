"""Where sessions are served: an origin of their own, never the portal's (issue 18).

A session runs its owner's code: a notebook's JavaScript output, or a notebook a colleague shared.
Served on the portal's origin, that code could fetch('/portal/...') or call the API with the owner's
cookie. So, as JupyterHub, Open OnDemand and Coder do, sessions live on another origin:

- ``sessions.origin = "https://sessions.example.org"``: one host for all sessions (each one's cookie
  has Path=/sessions/<id>/), routed here by its Host header (a reverse proxy sends both hosts here);
- ``"https://{id}.sessions.example.org"`` (wildcard DNS): a host per session, which also keeps
  sessions apart from each other (host-only cookies); the host's id must be the path's;
- unset (the embedded default, `cnet server` on one machine, no DNS): a second listening port,
  ``sessions.port`` (default server.port + 1), reached as http://localhost:<port> when the portal is
  http://127.0.0.1:<port> (and the other way round). Another port alone would be another origin, but
  cookies ignore ports: another host name also gives another cookie jar and another *site*, so
  SameSite keeps the portal's cookie off any request a session's page makes.

A request is the session origin's when it came in on the sessions port or names its host; the
dispatcher sends it to a small app of its own (the proxy, api/session_proxy.py) that serves nothing but
/sessions/<id>/... and accepts only that session's cookie. On the portal's origin /sessions/<id>/...
is redirected there (GET) or refused.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from ..config import Settings
from ..services.sessions import base_url

TICKET_PARAM = "cnet-ticket"  # a WebSocket's ticket (the portal's shell page has no cookie there)
ENTER = "_cnet/enter"  # under a session's base URL: where a ticket becomes its cookie (never forwarded)
# where a ticket leads, under the session's base URL: a relative path, no "..", nothing to escape
# a page under the session's base URL (a relative path, never "..", with a plain query: noVNC's options)
NEXT_PATH = re.compile(r"^(?!/)(?!(?:.*/)?\.\.(?:/|$))[A-Za-z0-9._~/-]{0,200}(\?[A-Za-z0-9._~/=&%-]{0,300})?$")
LOOPBACK_NAMES = {"127.0.0.1": "localhost", "localhost": "127.0.0.1", "0.0.0.0": "localhost", "::": "localhost",
                  "::1": "localhost"}


@dataclass(frozen=True)
class Origins:
    """The portal's origin and the sessions' (a template with {id} for a host per session)."""

    portal: str
    sessions: str
    port: int | None = None  # the listening port that serves sessions only (None: by Host alone)

    def session_origin(self, session_id: int) -> str:
        return self.sessions.format(id=session_id)

    def session_url(self, session_id: int, rest: str = "") -> str:
        """Where the session lives: <its origin>/sessions/<id>/<rest>."""
        return self.session_origin(session_id) + base_url(session_id) + rest

    def secure(self) -> bool:
        return self.sessions.startswith("https://")

    def is_sessions_request(self, scope) -> bool:
        """Did this request come to the session origin (its port, or its host)?"""
        server = scope.get("server")
        if self.port is not None and server and server[1] == self.port:
            return True
        host = _header(scope, b"host")
        return host is not None and self.host_session(host) is not False

    def host_session(self, host: str) -> int | None | bool:
        """False: not a sessions host; None: the one host of all sessions; an id: a session's own host."""
        split = urlsplit(self.sessions)
        wanted = split.netloc.lower()
        host = host.lower()
        if "{id}" not in wanted:
            return None if host == wanted or (split.port is None and host.split(":")[0] == wanted) else False
        pattern = re.escape(wanted).replace(re.escape("{id}"), "([0-9]{1,18})")
        found = re.fullmatch(pattern, host) or (split.port is None and re.fullmatch(pattern, host.split(":")[0]))
        return int(found.group(1)) if found else False

    def enter_url(self, session_id: int, ticket: str, next_path: str = "") -> str:
        """Where the browser takes a ticket: the session origin turns it into the session's cookie."""
        return self.session_url(session_id, ENTER) + "?" + urlencode({"ticket": ticket, "next": next_path})

    def socket_url(self, session_id: int, rest: str) -> str:
        """A WebSocket of the session, on its origin (ws:// or wss://)."""
        return re.sub(r"^http", "ws", self.session_url(session_id, rest))


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def portal_url(settings: Settings, port: int | None = None, host: str | None = None) -> str:
    if settings.auth.public_url:
        return settings.auth.public_url.rstrip("/")
    host = host or settings.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{host}:{port or settings.server.port}"


def sessions_port(settings: Settings) -> int | None:
    """The second port to listen on: sessions.port, or server.port + 1 when no origin is configured."""
    if settings.sessions.port is not None:
        return settings.sessions.port
    return None if settings.sessions.origin else settings.server.port + 1


def origins(settings: Settings, portal_port: int | None = None, listen_port: int | None = None,
            host: str | None = None) -> Origins:
    """The origins for these settings; host, portal_port and listen_port: what was actually bound."""
    portal = portal_url(settings, portal_port, host)
    port = listen_port if listen_port is not None else sessions_port(settings)
    if settings.sessions.origin:
        return Origins(portal, settings.sessions.origin.rstrip("/"), port)
    split = urlsplit(portal)
    host = split.hostname or "127.0.0.1"
    # another name for this machine where there is one; else only the port differs (still another
    # origin, and the proxy takes no portal credential; but the cookie jar is shared)
    other = LOOPBACK_NAMES.get(host, host)
    return Origins(portal, f"{split.scheme}://{other}:{port}", port)


def listening_sockets(host: str, ports: list[int]) -> list[socket.socket]:
    """Bound sockets for uvicorn (which serves one app on all of them); port 0 picks a free one."""
    out = []
    for port in ports:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            for made in out:
                made.close()
            raise
        sock.set_inheritable(True)
        out.append(sock)
    return out


def bind(app, settings: Settings, host: str, port: int, sessions: int | None = None) -> list[socket.socket]:
    """Bind the server's port and, unless a configured origin reaches sessions by host alone, the
    sessions' port (``sessions``, else sessions.port, else the server's port + 1, else any free one
    when that is taken); set the app's origins from the ports bound (port 0: a free one)."""
    derived = sessions is None and settings.sessions.port is None
    if sessions is None:
        sessions = settings.sessions.port
    if derived and not settings.sessions.origin:
        sessions = port + 1 if port else 0
    try:
        sockets = listening_sockets(host, [port] if sessions is None else [port, sessions])
    except OSError:
        if not derived or not sessions:
            raise  # a port someone named: its being taken is theirs to know
        sockets = listening_sockets(host, [port, 0])  # the server's port + 1 is taken: any free one
    bound = [sock.getsockname()[1] for sock in sockets]
    app.state.origins = origins(settings, bound[0], bound[1] if len(bound) > 1 else None, host)
    return sockets


class SessionOriginDispatch:
    """ASGI middleware: a request for the session origin goes to the sessions app, nothing else does."""

    def __init__(self, app, sessions_app) -> None:
        self.app = app
        self.sessions_app = sessions_app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            found: Origins | None = getattr(scope["app"].state, "origins", None) if "app" in scope else None
            if found is not None and found.is_sessions_request(scope):
                return await self.sessions_app(scope, receive, send)
        return await self.app(scope, receive, send)
