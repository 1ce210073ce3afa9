"""The error answers the API gives, as the OpenAPI document declares them.

Every error body is an RFC 9457 problem (api/problems.py): ``detail`` says what was wrong,
``code`` is stable for programs; a 422 adds the validator's ``errors``. A router declares the codes its routes really return
(``APIRouter(responses=errors(...))``), so that clients and the schemathesis
test (tests/test_schemathesis.py) hold the API to its document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    type: str = Field(description="a URL (relative to the API) that explains the code")
    title: str = Field(description="the same for every problem of this code")
    status: int = Field(description="the HTTP status")
    detail: str = Field(description="what was wrong, in words")
    code: str = Field(description="stable, for programs: docs/api.md lists every code")
    instance: str | None = Field(None, description="the path asked for")


class ValidationErrorOut(ErrorOut):
    detail: str = Field(description="the first problem: where it is and what is wrong")
    errors: list[dict[str, Any]] = Field(default_factory=list, description="every problem the validator found")


MEANINGS = {
    400: "the request cannot be done as asked (the detail says why)",
    401: "no API token, or one that is invalid, expired or revoked",
    402: "the account cannot cover what this would cost",
    403: "your role does not allow this",
    404: "no such thing, or not one of yours",
    409: "it conflicts with the current state (already exists, already ended, in use)",
    413: "the request body is too large",
    422: "a parameter or the body is malformed or out of range",
    429: "too many tries: wait (the detail says until when)",
    503: "a cluster or the platform cannot answer now, or a report ran past its time limit",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for these status codes, each with the error body it carries."""
    # the schema inline, as JSON: "model" would take the route's media type (text/plain for /metrics)
    return {code: {"description": MEANINGS[code], "content": {"application/problem+json": {
        "schema": (ValidationErrorOut if code == 422 else ErrorOut).model_json_schema()}}} for code in codes}
