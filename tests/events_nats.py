"""Helpers for the event tests: a reachable NATS JetStream, a private nats-server to restart,
and a consumer that reads what a stream holds for one subject filter."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import run_async

DEFAULT_URL = "nats://127.0.0.1:4222"


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 4222), timeout=2).close()
        return True
    except OSError:
        return False


def nats_url_or_skip() -> str:
    url = os.environ.get("COMPUTENET_TEST_NATS_URL", DEFAULT_URL)
    if not reachable(url):
        if os.environ.get("CI") == "true":
            pytest.fail(f"NATS at {url} does not answer (scripts/test starts it)")
        pytest.skip(f"NATS at {url} does not answer")
    return url


def consume(url: str, stream: str, subject: str, timeout: float = 1.0) -> list[dict]:
    """Every message the stream holds on ``subject`` (a filter), as a new consumer sees them,
    each with its Nats-Msg-Id."""

    async def read() -> list[dict]:
        import nats

        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(subject, stream=stream)
            seen = []
            while True:
                try:
                    batch = await sub.fetch(100, timeout=timeout)
                except (asyncio.TimeoutError, nats.errors.TimeoutError):
                    return seen
                for m in batch:
                    await m.ack()
                    seen.append(json.loads(m.data) | {"msg_id": (m.headers or {}).get("Nats-Msg-Id")})
        finally:
            await nc.close()

    return run_async(read())


def delete_stream(url: str, stream: str) -> None:
    async def drop() -> None:
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect(url)
        try:
            await nc.jetstream().delete_stream(stream)
        except NotFoundError:
            pass
        finally:
            await nc.close()

    run_async(drop())


class PrivateNats:
    """A nats-server of the test's own (free port, its own store): safe to stop and start."""

    def __init__(self, store: Path) -> None:
        self.binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(self.binary).exists():
            if os.environ.get("CI") == "true":
                pytest.fail("nats-server is not installed")
            pytest.skip("nats-server is not installed")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.store, self.proc = store, None
        self.url = f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                      "-sd", str(self.store)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not reachable(self.url):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the private nats-server did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None
