"""When a call is sent again, and after how long.

A 429 was refused before the server did anything, so any call may be repeated after its Retry-After.
A 502/503/504 or a broken connection may have happened mid-way: only idempotent calls (GET, PUT, DELETE,
and a POST the SDK knows to be safe, such as a submit with an idempotency key) are sent again.
A connection that was never made (refused, or timed out while connecting) sent nothing: always retried.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

import httpx

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3  # sends after the first; 0 turns retrying off
    backoff_s: float = 0.25  # the first pause; doubles each time, with jitter
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 30.0  # a server asking for a longer pause gets the error at once

    def delay(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before send number ``attempt + 1`` (attempt counts from 0), or None: give up."""
        if attempt >= self.retries:
            return None
        if response is not None:
            asked = retry_after(response)
            if asked is not None:
                return asked if asked <= self.max_retry_after_s else None
        pause = min(self.max_backoff_s, self.backoff_s * 2.0 ** attempt)
        return pause * (0.5 + random.random() / 2)  # jitter: clients that failed together spread out

    def retryable_status(self, status: int, idempotent: bool) -> bool:
        return status == 429 or (idempotent and status in RETRY_STATUSES)

    @staticmethod
    def retryable_error(exc: httpx.HTTPError, idempotent: bool) -> bool:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return True  # nothing reached the server
        return idempotent and isinstance(exc, httpx.TransportError)


NO_RETRY = RetryPolicy(retries=0)


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
