"""Errors the API and CLI turn into clear messages (and HTTP codes)."""


class ServiceError(Exception):
    """A refusal with an HTTP status and a stable machine-readable code (the API's problem+json
    ``code``: docs/api.md lists them; clients branch on the code, people read the detail)."""

    status_code = 400
    code = "bad_request"


class InvalidRequest(ServiceError):
    status_code = 400
    code = "invalid_request"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class InsufficientFunds(ServiceError):
    status_code = 402
    code = "insufficient_funds"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class Unavailable(ServiceError):
    status_code = 503
    code = "unavailable"


class TooLarge(ServiceError):
    """Over a quota or a size limit."""

    status_code = 413
    code = "too_large"
