"""The SDK's retries: a server answering 429/503 and then 200 (a real HTTP server on a port), which
calls are sent again and which are not, and Retry-After."""

from __future__ import annotations

import json
import threading
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from computenet_client import ApiError, AsyncComputeNetClient, ComputeNetClient, RetryPolicy
from computenet_client.retry import retry_after

from conftest import run_async

JOB = {"id": 7, "name": "x", "state": "PENDING", "reason": None, "cluster": "c", "partition": "p",
       "native_id": "1", "account": "a", "owner": "o", "cores": 1, "gpus": 0, "time_limit_minutes": 5,
       "max_cost": "1.00", "submitted_at": "2026-01-01T00:00:00Z", "start_time": None, "end_time": None,
       "exit_code": None, "workdir": "/w", "stdout_path": "/w/o", "stderr_path": "/w/e", "settled": False}
FAST = RetryPolicy(retries=3, backoff_s=0.01, max_backoff_s=0.05, max_retry_after_s=5)


class Flaky:
    """A server that answers the first requests with the given (status, headers) and then 200 with a job."""

    def __init__(self, failures: list[tuple[int, dict[str, str]]]) -> None:
        self.failures = list(failures)
        self.seen: list[tuple[str, str]] = []
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                flaky.seen.append((self.command, self.path))
                if flaky.failures:
                    status, headers = flaky.failures.pop(0)
                    body = json.dumps({"status": status, "code": "rate_limited" if status == 429 else "unavailable",
                                       "detail": f"try later ({status})"}).encode()
                    content_type = "application/problem+json"
                else:
                    status, headers, content_type = 200, {}, "application/json"
                    body = json.dumps(JOB).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Type": content_type,
                                    "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def flaky():
    made: list[Flaky] = []

    def make(*failures: tuple[int, dict[str, str]]) -> Flaky:
        made.append(Flaky(list(failures)))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_a_read_is_sent_again_after_429_and_503(flaky):
    server = flaky((429, {"Retry-After": "1"}), (503, {}))
    with ComputeNetClient(server.url, "t", retry=FAST) as cn:
        job = cn.wait_submitted(7, timeout=0)  # one GET /jobs/7
    assert job.id == 7
    assert server.seen == [("GET", "/v1/jobs/7")] * 3


def test_a_submit_without_a_key_is_not_repeated_after_503(flaky):
    server = flaky((503, {}))
    with ComputeNetClient(server.url, "t", retry=FAST) as cn, pytest.raises(ApiError) as err:
        cn.submit("#!/bin/bash\ntrue\n")
    assert err.value.status == 503 and err.value.code == "unavailable"
    assert len(server.seen) == 1  # the first send may have made a job: it is not sent again


def test_a_submit_with_a_key_is_repeated_after_503(flaky):
    server = flaky((503, {}), (502, {}))
    with ComputeNetClient(server.url, "t", retry=FAST) as cn:
        job = cn.submit("#!/bin/bash\ntrue\n", idempotency_key="k-1")
    assert job.id == 7 and [m for m, _ in server.seen] == ["POST"] * 3


def test_a_429_is_repeated_for_any_call(flaky):
    server = flaky((429, {"Retry-After": "0"}))
    with ComputeNetClient(server.url, "t", retry=FAST) as cn:
        assert cn.cancel(7).id == 7  # refused before anything happened: safe to send again
    assert len(server.seen) == 2


def test_gives_up_after_the_retries_and_on_a_long_retry_after(flaky):
    server = flaky(*[(503, {})] * 5)
    with ComputeNetClient(server.url, "t", retry=FAST) as cn, pytest.raises(ApiError) as err:
        cn.wait_submitted(7, timeout=0)
    assert err.value.status == 503 and len(server.seen) == 4  # the first send and three more
    patient = flaky((429, {"Retry-After": "3600"}))
    with ComputeNetClient(patient.url, "t", retry=FAST) as cn, pytest.raises(ApiError) as err:
        cn.wait_submitted(7, timeout=0)
    assert err.value.status == 429 and err.value.code == "rate_limited" and len(patient.seen) == 1


def test_retries_off(flaky):
    server = flaky((503, {}))
    with ComputeNetClient(server.url, "t", retry=RetryPolicy(retries=0)) as cn, pytest.raises(ApiError):
        cn.wait_submitted(7, timeout=0)
    assert len(server.seen) == 1


def test_the_async_client_retries_the_same_way(flaky):
    server = flaky((429, {"Retry-After": "0"}), (503, {}))

    async def main() -> int:
        async with AsyncComputeNetClient(server.url, "t", retry=FAST) as cn:
            return (await cn.wait_submitted(7, timeout=0)).id

    assert run_async(main()) == 7 and len(server.seen) == 3


def test_a_refused_connection_is_retried_then_reported():
    with ComputeNetClient("http://127.0.0.1:9", "t", retry=FAST) as cn, pytest.raises(ApiError) as err:
        cn.me()
    assert err.value.status == 0 and "cannot reach" in err.value.detail


def test_retry_after_as_seconds_or_a_date():
    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after(answer("7")) == 7
    later = datetime.now(timezone.utc) + timedelta(seconds=120)
    assert 100 < retry_after(answer(format_datetime(later, usegmt=True))) <= 120
    assert retry_after(answer("soon")) is None and retry_after(httpx.Response(429)) is None
    assert FAST.delay(0, answer("2")) == 2 and FAST.delay(0, answer("60")) is None  # over max_retry_after_s
    assert FAST.delay(3, answer("1")) is None  # no retries left
