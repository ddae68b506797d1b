"""Building the HTTP API: routers, validation, OpenAPI metadata, and errors mapped once, at the edge."""

import base64
import binascii
import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from push_core.api.json_body import parse_json_object
from push_core.api.rate_limits import enforce_rate_limits
from push_core.config import get_settings
from push_core.errors import PushlaneError
from push_core.observability import logger
from push_core.storage.errors import LimitReached, StoreBusy, is_transient

API_TITLE = "pushlane"
API_VERSION = "1.0.0"
SECURITY_SCHEMES = {
    "bearer": HTTPBearer(description="An app key (pl_sk_… / pl_pk_…), a device key (pl_dk_…) or the admin key"),
    "apiKey": APIKey(name="X-Api-Key", in_=APIKeyIn.header, description="The same key in a header"),
}
AUTHENTICATED: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable, stable", examples=["device_not_found"])
    message: str = Field(description="A sentence for people", examples=["No such device."])


class ErrorBody(BaseModel):
    """Every error pushlane answers, whatever the status."""

    error: ErrorDetail


_ERRORS: dict[int, str] = {
    400: "Malformed request (e.g. not JSON, not UTF-8)",
    401: "Missing, invalid or revoked key",
    403: "The key's role may not do this",
    404: "No such resource (including another app's)",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "The body is not JSON (Content-Type)",
    422: "A field is missing or invalid",
    429: "Too many requests; wait for Retry-After",
    503: "A dependency is busy; retry",
}


def answers(*success: int) -> dict[int, OpenAPIResponse]:
    """A route's documented responses: its success statuses (the body its return annotation declares,
    none for 204) and every error status in the one error shape."""
    documented: dict[int, OpenAPIResponse] = {
        status: {"description": HTTPStatus(status).phrase, **({"content": {}} if status == 204 else {})}
        for status in success
    }
    for status, text in _ERRORS.items():
        documented[status] = {"description": text, "content": {"application/json": {"model": ErrorBody}}}
    return documented


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    """The one error shape: {"error": {"code": ..., "message": ...}}."""
    return Response(
        status_code=status,
        content_type="application/json",
        body={"error": {"code": code, "message": message}},
        headers=headers,
    )


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
    return f"{where}: {error.get('msg', 'is invalid')}"


# What each storage limit means to a client: its error code and sentence.
_LIMITS = {
    "MaxDevicesPerApp": (
        "device_quota_exceeded",
        "The app has its {limit} devices (MaxDevicesPerApp); delete some first.",
    ),
    "MaxTopicsPerDevice": (
        "topic_quota_exceeded",
        "The device is subscribed to its {limit} topics (MaxTopicsPerDevice); unsubscribe one first.",
    ),
}


def _register_storage_error_handlers(app: APIGatewayHttpResolver) -> None:
    """Storage's own errors, as a client sees them."""

    @app.exception_handler(StoreBusy)
    def _store_busy(_: StoreBusy) -> Response[Any]:
        return error_response(
            503, "service_unavailable", "The data store is busy; retry shortly.", {"Retry-After": "1"}
        )

    @app.exception_handler(LimitReached)
    def _limit_reached(error: LimitReached) -> Response[Any]:
        code, sentence = _LIMITS[error.parameter]
        return error_response(409, code, sentence.format(limit=error.limit))


def _register_error_handlers(app: APIGatewayHttpResolver) -> None:
    @app.exception_handler(PushlaneError)
    def _domain_error(error: PushlaneError) -> Response[Any]:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        if error.status == 503:
            headers = {"Retry-After": "1"}
        return error_response(error.status, error.code, error.message, {**(headers or {}), **error.headers} or None)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response[Any]:
        errors = list(error.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "The body is not valid JSON.")
        message = "; ".join(_describe(e) for e in errors[:5])
        return error_response(422, "validation_error", message or "The request is invalid.")

    @app.exception_handler(IdempotencyValidationError)
    def _key_reused(_: IdempotencyValidationError) -> Response[Any]:
        return error_response(
            422, "idempotency_key_reused", "This Idempotency-Key was used with a different body in the last 24 hours."
        )

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _key_in_progress(_: IdempotencyAlreadyInProgressError) -> Response[Any]:
        return error_response(
            409, "idempotency_key_in_progress", "A request with this Idempotency-Key is still running; retry shortly."
        )

    @app.exception_handler(UnicodeDecodeError)
    def _not_utf8(_: UnicodeDecodeError) -> Response[Any]:
        return error_response(400, "malformed_json", "The body is not UTF-8 encoded JSON.")

    @app.exception_handler(NotFoundError)
    def _no_route(_: NotFoundError) -> Response[Any]:
        event = app.current_event
        return error_response(
            404, "route_not_found", f"No route for {event.http_method} {event.path}; see /v1/openapi.json."
        )

    @app.exception_handler(ClientError)
    def _aws_error(error: ClientError) -> Response[Any]:
        if is_transient(error):
            return error_response(
                503, "service_unavailable", "The data store is busy; retry shortly.", {"Retry-After": "1"}
            )
        logger.exception("AWS call failed")
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")


def build_resolver(*routers: APIGatewayHttpRouter) -> APIGatewayHttpResolver:
    """A resolver with validation on, the given routers, and pushlane's error mapping."""
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json_object)
    for router in routers:
        app.include_router(router)
    app.use(middlewares=[enforce_rate_limits])  # before every route, after request validation
    _register_error_handlers(app)
    _register_storage_error_handlers(app)
    return app


def body_size(event: dict[str, Any]) -> int:
    """Bytes in the request body as the client sent it."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return len(base64.b64decode(body))
        except (binascii.Error, ValueError):
            return len(body)
    return len(body.encode())


class HttpApi:
    """A Lambda entry point for a set of routers, refusing oversized bodies before parsing them."""

    def __init__(self, *routers: APIGatewayHttpRouter) -> None:
        self.resolver = build_resolver(*routers)

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        limit = get_settings().max_body_bytes
        size = body_size(event)
        if size > limit:
            return _standalone(error_response(413, "payload_too_large", f"The body is over {limit} bytes."))
        if size:
            media_type = _media_type(event)
            if media_type not in ("", "application/json"):
                return _standalone(
                    error_response(
                        415,
                        "unsupported_media_type",
                        f"The body is {media_type}; send JSON with Content-Type: application/json.",
                    )
                )
            # Powertools matches the media type case-sensitively; hand it the canonical spelling.
            event = {**event, "headers": {**_other_headers(event), "content-type": "application/json"}}
        result: dict[str, Any] = self.resolver.resolve(event, context)
        return result


def _other_headers(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}


def _media_type(event: dict[str, Any]) -> str:
    """The body's media type, lower case and without parameters ("" when the client sent none)."""
    headers = event.get("headers") or {}
    value = next((str(v) for k, v in headers.items() if k.lower() == "content-type"), "")
    return value.split(";")[0].strip().lower()


def _standalone(response: Response[Any]) -> dict[str, Any]:
    # Answered before the resolver runs, so shaped here the way the resolver would shape it.
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(response.body),
        "isBase64Encoded": False,
    }
