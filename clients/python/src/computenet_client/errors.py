"""The one exception the SDK raises for a refused or failed call."""

from __future__ import annotations

import httpx


class ApiError(Exception):
    """``status`` is the HTTP status (0: the server could not be reached); ``code`` the problem's stable
    code (docs/api.md: ``insufficient_funds``, ``not_found``, ...) where the server gave one."""

    def __init__(self, status: int, detail: str, code: str | None = None) -> None:
        super().__init__(f"{detail} (HTTP {status})")
        self.status = status
        self.detail = detail
        self.code = code


def problem_error(response: httpx.Response) -> ApiError:
    """The server's problem (RFC 9457) as an ApiError: its detail, and its code for programs."""
    try:
        body = response.json()
    except ValueError:
        return ApiError(response.status_code, response.text)
    if not isinstance(body, dict):
        return ApiError(response.status_code, str(body))
    detail = body.get("detail", response.text)
    code = body.get("code")
    return ApiError(response.status_code, detail if isinstance(detail, str) else str(detail),
                    code if isinstance(code, str) else None)
