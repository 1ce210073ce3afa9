"""The FastAPI application: routers, error mapping, request size limit."""

from __future__ import annotations

import json
import math
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from .. import __version__
from ..services.errors import ServiceError
from ..services.loops import BackgroundServices
from ..services.platform import Platform
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
    app.add_middleware(NoNulInUrl)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        return SafeJSONResponse({"detail": str(exc)}, status_code=exc.status_code)

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError):
        # the database's own word that a value cannot be stored or compared (a NUL in text on
        # PostgreSQL, a number beyond its column): the request's fault, and nothing was written
        why = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        return SafeJSONResponse({"detail": f"a value in the request cannot be stored: {why}"}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return SafeJSONResponse({"detail": f"{where}: {first['msg']}" if where else first["msg"],
                                 "errors": jsonable(exc.errors())}, status_code=422)

    @app.get("/health", tags=["meta"])
    def health():
        return {"status": "ok", "version": __version__}

    app.include_router(jobs.router)
    app.include_router(clusters.router)
    app.include_router(accounts.router)
    app.include_router(billing.router)
    app.include_router(notifications.router)
    app.include_router(admin.router)
    from .routers import webhooks as webhook_routes  # noqa: E402  (a project's webhook endpoints)

    app.include_router(webhook_routes.router)
    app.include_router(files.router)
    app.include_router(apps.router)
    app.include_router(monitoring.router)
    app.include_router(report_routes.router)
    app.include_router(token_routes.router)
    app.include_router(user_routes.router)
    app.include_router(auth_routes.router)
    app.include_router(oidc_routes.router)
    from .routers import sessions as session_routes
    from . import session_proxy

    app.include_router(session_routes.router)
    session_proxy.mount(app)  # /sessions/<id>/...: the session's own server, for its owner
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
                response = JSONResponse({"detail": "the URL contains a NUL byte"}, status_code=422)
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
        limit = self.chunk_limit if path.startswith("/uploads/") and "/chunks/" in path else self.default_limit
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
        response = JSONResponse({"detail": f"request body is larger than {limit} bytes"}, status_code=413)
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
