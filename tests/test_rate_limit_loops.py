"""The API's rate limiter counted in-process is safe to call from several event loops at once.

Starlette's TestClient runs each request outside a ``with`` block in an event loop of its own, and a
server may run more than one loop; the ``limits`` library's asyncio memory storage holds an
``asyncio.Lock`` across a thread hop while it expires old hits, and a request in another loop waiting
on that lock was never woken (a CI run hung for good in test_hostile_input)."""

from __future__ import annotations

import asyncio
import threading

from computenet.api.rate_limits import RateLimit

from conftest import run_async

CALLS = 300


def _run(coroutine) -> None:
    """In a new event loop on this (not the main) thread."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coroutine)
    finally:
        loop.close()


async def _ok(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _scope() -> dict:
    return {"type": "http", "path": "/v1/jobs", "headers": [(b"authorization", b"Bearer the-same-caller")],
            "client": ("127.0.0.1", 1)}


def test_two_event_loops_counting_the_same_caller_never_wait_for_each_other():
    limit = RateLimit(_ok, "100000/second", "memory://")
    statuses: list[int] = []
    stuck: list[BaseException] = []

    def loop() -> None:
        async def many() -> None:
            async def send(message):
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            for _ in range(CALLS):
                await asyncio.wait_for(limit(_scope(), None, send), timeout=10)

        try:
            _run(many())
        except BaseException as exc:  # noqa: BLE001 - reported below
            stuck.append(exc)

    threads = [threading.Thread(target=loop) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not stuck, stuck
    assert statuses == [200] * (2 * CALLS)


def test_the_limit_still_refuses_past_its_count():
    limit = RateLimit(_ok, "3/minute", "memory://")
    statuses: list[int] = []

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def calls() -> None:
        for _ in range(5):
            await limit(_scope(), None, send)

    run_async(calls())
    assert statuses == [200, 200, 200, 429, 429]
