"""The FastAPI application: routers (under /v1, with aliases), problems for errors, size and rate limits."""

from __future__ import annotations

import json
import math
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from .. import __version__
from ..services.loops import BackgroundServices
from ..services.platform import Platform
from .problems import MEDIA_TYPE as PROBLEM
from .problems import problem_body
from .routers import accounts, admin, apps, billing, clusters, files, jobs, monitoring, notifications
from .routers import reports as report_routes
from .routers import tokens as token_routes
from .routers import users as user_routes
from .routers import auth as auth_routes
from .routers import oidc as oidc_routes

MAX_BODY_BYTES = 2 * 1024 * 1024  # a script is at most 1 MiB; JSON escaping can double it
MAX_CHUNK_BYTES = 64 * 1024 * 1024 + 4096  # an upload chunk (files/uploads.py allows up to 64 MiB)


def create_app(platform: Platform, run_services: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services = BackgroundServices(platform) if run_services else None
        if services:
            services.start()
        yield
        if services:
            services.stop()

    app = FastAPI(title="ComputeNet", version=__version__, lifespan=lifespan, default_response_class=SafeJSONResponse,
                  description="One front door over many Slurm clusters.", docs_url=None, redoc_url=None)
    app.state.platform = platform

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, chunk_limit=MAX_CHUNK_BYTES)
    from .rate_limits import RateLimit

    app.add_middleware(RateLimit, rules=platform.settings.server.rate_limit,
                       storage=platform.settings.server.rate_limit_storage)
    app.add_middleware(NoNulInUrl)

    from . import problems

    problems.install(app)

    @app.get("/v1/health", tags=["meta"])
    @app.get("/health", tags=["meta"], include_in_schema=False)
    def health():
        return {"status": "ok", "version": __version__}

    from . import session_proxy, versions
    from .routers import sessions as session_routes

    from .routers import webhooks as webhook_routes  # a project's webhook endpoints

    versions.include(app, [jobs.router, clusters.router, accounts.router, billing.router, notifications.router,
                           admin.router, webhook_routes.router, webhook_routes.tenant_router, files.router, apps.router, monitoring.router, report_routes.router,
                           token_routes.router, user_routes.router, auth_routes.router, session_routes.router])
    # a browser's sign-in flow, not an API: its callback is the URL registered at the provider, unversioned
    app.include_router(oidc_routes.router)
    from .session_origin import SessionOriginDispatch, origins as session_origins

    # /sessions/<id>/...: the session's own server, for its owner, on the sessions' own origin only
    # (api/session_origin.py); the server start-up sets the origins again with the ports it bound
    app.state.origins = session_origins(platform.settings)
    session_proxy.mount_portal_side(app)
    app.add_middleware(SessionOriginDispatch, sessions_app=session_proxy.sessions_app(platform, app.state))
    from ..web import mount as mount_portal

    mount_portal(app)  # the portal at / (and /docs with local assets)
    return app


class _TooLarge(Exception):
    pass


class NoNulInUrl:
    """A NUL byte in the path or query is refused up front (PostgreSQL text cannot hold one)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            query = scope.get("query_string", b"").lower()
            if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
                response = JSONResponse(problem_body(None, 422, "the URL contains a NUL byte", "validation_failed"),
                                        status_code=422, media_type=PROBLEM)
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


class BodyLimit:
    """Refuse oversized bodies before reading them (a 50 MB script gets a 413)."""

    def __init__(self, app, limit: int, chunk_limit: int | None = None) -> None:
        self.app = app
        self.default_limit = limit
        self.chunk_limit = chunk_limit or limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        # upload chunks are the one place a large body is expected
        limit = self.chunk_limit if path.removeprefix("/v1").startswith("/uploads/") and "/chunks/" in path \
            else self.default_limit
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await self._refuse(scope, receive, send, limit)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope, receive, send, limit):
        response = JSONResponse(problem_body(None, 413, f"request body is larger than {limit} bytes", "too_large"),
                                status_code=413, media_type=PROBLEM)
        await response(scope, receive, send)


def jsonable(errors: list) -> list:
    return [{k: _plain(v) for k, v in e.items()} for e in errors]


def _plain(value):
    """A validation error's parts as JSON can carry them: the input that failed may be NaN, a huge
    number, bytes or an exception; echoing it back must not fail in its turn."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class SafeJSONResponse(JSONResponse):
    """JSON that a lone surrogate echoed from the request (a name in a "not found" message) cannot
    break: such text is escaped (\\udXXX) instead of failing to encode as UTF-8."""

    def render(self, content) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
