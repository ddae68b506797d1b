"""Typed errors of the domain. The API edge maps each to its status and JSON body in one place."""

from typing import ClassVar


class PushlaneError(Exception):
    """An error a client can act on: a status, a machine-readable code and a human sentence."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        # Response headers that belong to the error (Retry-After, RateLimit).
        self.headers: dict[str, str] = {}


class BadRequest(PushlaneError):
    status = 400
    default_code = "bad_request"


class Unauthorized(PushlaneError):
    status = 401
    default_code = "unauthorized"


class Forbidden(PushlaneError):
    status = 403
    default_code = "forbidden"


class NotFound(PushlaneError):
    status = 404
    default_code = "not_found"


class Conflict(PushlaneError):
    status = 409
    default_code = "conflict"


class QuotaExceeded(PushlaneError):
    """A per-app quota (devices, topics per device) is used up; deleting something makes room."""

    status = 409
    default_code = "quota_exceeded"


class PayloadTooLarge(PushlaneError):
    status = 413
    default_code = "payload_too_large"


class UnprocessableEntity(PushlaneError):
    status = 422
    default_code = "validation_error"


class ServiceUnavailable(PushlaneError):
    """A dependency (DynamoDB, SQS) is throttling or unreachable; the client may retry."""

    status = 503
    default_code = "service_unavailable"


class TooManyRequests(PushlaneError):
    """A rate limit or per-minute quota is spent until its window ends (headers say when)."""

    status = 429
    default_code = "rate_limited"

    def __init__(self, message: str, *, code: str | None = None, headers: dict[str, str]) -> None:
        super().__init__(message, code=code)
        self.headers = headers
