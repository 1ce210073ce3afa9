"""Errors the API and CLI turn into clear messages (and HTTP codes)."""


class ServiceError(Exception):
    status_code = 400


class InvalidRequest(ServiceError):
    status_code = 400


class NotFound(ServiceError):
    status_code = 404


class Forbidden(ServiceError):
    status_code = 403


class InsufficientFunds(ServiceError):
    status_code = 402


class Conflict(ServiceError):
    status_code = 409


class Unavailable(ServiceError):
    status_code = 503


class TooLarge(ServiceError):
    """Over a quota or a size limit."""

    status_code = 413
