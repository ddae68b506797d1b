"""The API edge: every kind of bad input becomes a 4xx with the error shape, never a 500."""

import base64
import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from push_core.api.resolver import HttpApi, body_size
from push_core.errors import Conflict

router = APIGatewayHttpRouter()


class Thing(BaseModel):
    name: str
    count: int


@router.post("/things")
def create_thing(thing: Annotated[Thing, Body()]) -> dict[str, Any]:
    return {"name": thing.name}


@router.get("/conflict")
def conflict() -> dict[str, Any]:
    raise Conflict("Already there.", code="already_there")


api = HttpApi(router)


class Context:
    function_name = "unit"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:unit"
    aws_request_id = "req"


def _call(method: str, path: str, body: str | None = None, *, b64: bool = False) -> tuple[int, dict[str, Any]]:
    event = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": b64,
    }
    result = api(event, Context())  # type: ignore[arg-type]
    return result["statusCode"], json.loads(result["body"])


def test_valid_request_passes():
    assert _call("POST", "/things", json.dumps({"name": "a", "count": 1})) == (200, {"name": "a"})


def test_malformed_json_is_400():
    status, body = _call("POST", "/things", '{"name": ')
    assert status == 400
    assert body["error"]["code"] == "malformed_json"


def test_non_utf8_body_is_400():
    status, body = _call("POST", "/things", base64.b64encode(b'{"name": "\xff"}').decode(), b64=True)
    assert status == 400
    assert body["error"]["code"] == "malformed_json"


def test_missing_and_wrong_typed_fields_are_422_naming_the_field():
    status, body = _call("POST", "/things", json.dumps({"name": "a", "count": "many"}))
    assert status == 422
    assert body["error"]["code"] == "validation_error"
    assert "count" in body["error"]["message"]


def test_oversized_body_is_413_before_parsing():
    status, body = _call("POST", "/things", json.dumps({"name": "x" * 70_000, "count": 1}))
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"


def test_domain_errors_keep_their_status_and_code():
    assert _call("GET", "/conflict") == (
        409,
        {"error": {"code": "already_there", "message": "Already there."}},
    )


def test_unknown_route_is_a_json_404():
    status, body = _call("GET", "/nowhere")
    assert status == 404
    assert body["error"]["code"] == "route_not_found"


def test_body_size_counts_decoded_bytes():
    assert body_size({"body": "héllo"}) == 6
    assert body_size({"body": base64.b64encode(b"\x00" * 10).decode(), "isBase64Encoded": True}) == 10
    assert body_size({}) == 0
