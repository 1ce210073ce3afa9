"""The API's version: every route is served under ``/v1``; the same paths without it are aliases.

The OpenAPI document shows only ``/v1``. An answer on an alias says so (RFC 9745 ``Deprecation``,
RFC 8594 ``Sunset`` and a ``successor-version`` link), so a client can find and fix its old calls
before the aliases go (docs/api.md gives the date).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from starlette.requests import HTTPConnection

from .responses import errors

PREFIX = "/v1"
DEPRECATED_SINCE = 1796083200  # 2026-12-01T00:00:00Z, when /v1 was introduced (RFC 9745 wants a date)
SUNSET = "Wed, 30 Jun 2027 00:00:00 GMT"  # the aliases are removed in the first release after this


def _on_alias(connection: HTTPConnection) -> None:
    connection.state.api_alias = True


def include(app: FastAPI, routers: list[APIRouter]) -> None:
    for router in routers:
        app.include_router(router, prefix=PREFIX, responses=errors(429))
        app.include_router(router, include_in_schema=False, dependencies=[Depends(_on_alias)])
    app.add_middleware(AliasNotice)


class AliasNotice:
    """Adds the deprecation headers to an answer given on an unversioned alias."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_noting(message):
            if message["type"] == "http.response.start" and scope.get("state", {}).get("api_alias"):
                # the raw (still percent-encoded) path: a decoded one could carry CR LF into a header
                raw = scope.get("raw_path") or scope.get("path", "").encode("ascii", "replace")
                message["headers"] = list(message.get("headers", [])) + [
                    (b"deprecation", f"@{DEPRECATED_SINCE}".encode()),
                    (b"sunset", SUNSET.encode()),
                    (b"link", b"<" + PREFIX.encode() + raw.split(b"?")[0] + b'>; rel="successor-version"'),
                ]
            await send(message)

        await self.app(scope, receive, send_noting)
