"""Every error the API gives is an RFC 9457 problem (``application/problem+json``).

The body keeps ``detail`` (what was wrong, in words: every earlier client reads it) and adds
``type``, ``title``, ``status``, ``instance`` and a stable ``code`` that clients may branch on.
``type`` is a relative URL that resolves: ``GET /v1/problems/<code>`` says what the code means.
The codes are the table below; docs/api.md lists them (a test keeps the two the same).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..services.errors import ServiceError

MEDIA_TYPE = "application/problem+json"

# code -> (status, title): the title is the same for every problem of a code (RFC 9457 3.1.3)
CODES: dict[str, tuple[int, str]] = {
    "bad_request": (400, "The request cannot be done as asked"),
    "invalid_request": (400, "The request cannot be done as asked"),
    "unauthenticated": (401, "No valid API token or sign-in session"),
    "insufficient_funds": (402, "The account cannot cover what this would cost"),
    "forbidden": (403, "Your role does not allow this"),
    "not_found": (404, "No such thing, or not one of yours"),
    "method_not_allowed": (405, "This method is not allowed here"),
    "conflict": (409, "It conflicts with the current state"),
    "too_large": (413, "Too large"),
    "validation_failed": (422, "A parameter or the body is malformed or out of range"),
    "unstorable_value": (422, "A value in the request cannot be stored"),
    "rate_limited": (429, "Too many requests"),
    "unavailable": (503, "A cluster or the platform cannot answer now"),
}
_BY_STATUS = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              409: "conflict", 413: "too_large", 422: "validation_failed", 429: "rate_limited", 503: "unavailable"}


def problem_body(request: Request | None, status: int, detail: str, code: str, **extra) -> dict:
    title = CODES[code][1] if code in CODES else f"HTTP {status}"
    body = {"type": f"/v1/problems/{code}", "title": title, "status": status, "detail": detail, "code": code}
    if request is not None:
        body["instance"] = request.url.path
    body.update(extra)
    return body


def problem(request: Request | None, status: int, detail: str, code: str | None = None,
            headers: dict[str, str] | None = None, **extra):
    from .app import SafeJSONResponse

    code = code or _BY_STATUS.get(status, "bad_request" if status < 500 else "unavailable")
    return SafeJSONResponse(problem_body(request, status, detail, code, **extra), status_code=status,
                            headers=headers, media_type=MEDIA_TYPE)


def install(app: FastAPI) -> None:
    """The handlers that turn every refusal into a problem, and the route that explains a code."""
    from .app import jsonable

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        return problem(request, exc.status_code, str(exc), exc.code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return problem(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError):
        # the database's own word that a value cannot be stored or compared (a NUL in text on
        # PostgreSQL, a number beyond its column): the request's fault, and nothing was written
        why = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        return problem(request, 422, f"a value in the request cannot be stored: {why}", "unstorable_value")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return problem(request, 422, f"{where}: {first['msg']}" if where else first["msg"], "validation_failed",
                       errors=jsonable(exc.errors()))

    from .responses import errors

    @app.get("/v1/problems/{code}", tags=["meta"], summary="What an error code means", responses=errors(404))
    def explain(code: str, request: Request):
        if code not in CODES:
            return problem(request, 404, f"no error code {code!r}", "not_found")
        status, title = CODES[code]
        return {"code": code, "status": status, "title": title}
