"""Rate limits per caller, answered with 429, a problem body and ``Retry-After``.

The counting is the ``limits`` library's moving window (the library behind slowapi and
Flask-Limiter), so the rules are its strings ("300/second;12000/minute") and its storages:
``memory://`` counts per process (each API replica on its own), ``redis://host:port`` shares the
count between replicas. A caller is its API token, else its sign-in cookie, else its address;
only a digest of a secret is kept. The session proxy (a notebook's many small requests) and the
portal's static files are not counted.
"""

from __future__ import annotations

import hashlib
import math
import re
import time

from limits import parse_many
from limits import strategies
from limits.aio import strategies as aio_strategies
from limits.storage import storage_from_string

from .problems import MEDIA_TYPE, problem_body

_NOT_COUNTED = re.compile(r"^/(sessions/\d+/|static/|portal/static/)")


def _caller(scope) -> str:
    headers = dict(scope.get("headers") or [])
    secret = headers.get(b"authorization", b"")
    if not secret:
        for part in headers.get(b"cookie", b"").split(b";"):
            name, _, value = part.strip().partition(b"=")
            if name == b"cnet_session":
                secret = value
                break
    if secret:
        return "k:" + hashlib.sha256(secret).hexdigest()[:32]
    client = scope.get("client") or ("?", 0)
    return f"a:{client[0]}"


class RateLimit:
    def __init__(self, app, rules: str, storage: str = "memory://") -> None:
        self.app = app
        self.rules = parse_many(rules) if rules and rules.strip() else []
        if not self.rules:
            return
        uri = storage.removeprefix("async+")
        if uri.startswith("memory://"):
            # in-process counts through the library's thread-safe storage, called without awaiting:
            # its asyncio storage holds an asyncio.Lock across a thread hop while expiring hits, and
            # a request in another event loop (TestClient runs one per request) waited on it forever
            self.limiter = _Awaitable(strategies.MovingWindowRateLimiter(storage_from_string(uri)))
        else:  # a shared store over the network: its asyncio client, in the server's one loop
            self.limiter = aio_strategies.MovingWindowRateLimiter(storage_from_string(f"async+{uri}"))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.rules or _NOT_COUNTED.match(scope.get("path", "")):
            return await self.app(scope, receive, send)
        who = _caller(scope)
        for rule in self.rules:
            if not await self.limiter.hit(rule, who):
                stats = await self.limiter.get_window_stats(rule, who)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                return await _refuse(send, wait, str(rule), scope.get("path", ""))
        return await self.app(scope, receive, send)


class _Awaitable:
    """A synchronous limiter with the asyncio limiter's awaitable methods."""

    def __init__(self, limiter) -> None:
        self.limiter = limiter

    async def hit(self, rule, who: str) -> bool:
        return self.limiter.hit(rule, who)

    async def get_window_stats(self, rule, who: str):
        return self.limiter.get_window_stats(rule, who)


async def _refuse(send, wait: int, rule: str, path: str) -> None:
    import json

    body = json.dumps(problem_body(None, 429, f"too many requests ({rule}): try again in {wait} s", "rate_limited",
                                   retry_after_s=wait), ensure_ascii=True).encode()
    await send({"type": "http.response.start", "status": 429, "headers": [
        (b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(wait).encode())]})
    await send({"type": "http.response.body", "body": body})
