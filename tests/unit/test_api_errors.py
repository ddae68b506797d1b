"""The API edge: every kind of bad input becomes a 4xx with the error shape, never a 500."""

import base64
import json
from typing import Annotated, Any

import pytest
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from botocore.exceptions import ClientError
from pydantic import BaseModel

from push_core.api.resolver import HttpApi, body_size
from push_core.errors import Conflict
from push_core.storage.errors import StoreBusy

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


@router.get("/aws/<code>")
def aws_failure(code: str) -> dict[str, Any]:
    """An AWS call that failed with code, as boto3 raises it once its own retries are spent."""
    raise ClientError({"Error": {"Code": code, "Message": "from AWS"}}, "AnyOperation")


@router.get("/store-busy")
def store_busy() -> dict[str, Any]:
    raise StoreBusy("a transaction kept conflicting")


api = HttpApi(router)


class Context:
    function_name = "unit"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:unit"
    aws_request_id = "req"


def _invoke(
    method: str,
    path: str,
    body: str | None = None,
    *,
    b64: bool = False,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """The whole answer of the API to an HTTP API (v2) event: status, headers and body."""
    event = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": content_type},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": b64,
    }
    return api(event, Context())  # type: ignore[arg-type]


def _call(
    method: str,
    path: str,
    body: str | None = None,
    *,
    b64: bool = False,
    content_type: str = "application/json",
) -> tuple[int, dict[str, Any]]:
    result = _invoke(method, path, body, b64=b64, content_type=content_type)
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


@pytest.mark.parametrize(
    "path",
    [
        "/aws/ThrottlingException",
        "/aws/ProvisionedThroughputExceededException",
        "/aws/RequestLimitExceeded",
        "/aws/InternalServerError",
        "/aws/ServiceUnavailable",
        "/store-busy",
    ],
)
def test_a_busy_aws_service_is_a_503_to_retry_shortly(path: str):
    """The same codes storage turns into StoreBusy: one list, so an API client sees one answer for both."""
    result = _invoke("GET", path)
    assert result["statusCode"] == 503
    assert json.loads(result["body"])["error"]["code"] == "service_unavailable"
    assert result["headers"]["Retry-After"] == "1"


def test_any_other_aws_failure_is_a_logged_500_without_its_details():
    status, body = _call("GET", "/aws/AccessDeniedException")
    assert status == 500
    assert body["error"]["code"] == "internal_error"
    assert "AWS" not in body["error"]["message"]


def test_unknown_route_is_a_json_404():
    status, body = _call("GET", "/nowhere")
    assert status == 404
    assert body["error"]["code"] == "route_not_found"


def test_body_size_counts_decoded_bytes():
    assert body_size({"body": "héllo"}) == 6
    assert body_size({"body": base64.b64encode(b"\x00" * 10).decode(), "isBase64Encoded": True}) == 10
    assert body_size({}) == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('[{"name": "a", "count": 1}, {"name": "b", "count": 2}]', "body_not_object"),
        ('[{"name": "a", "count": 1}]', "body_not_object"),
        ('"name"', "body_not_object"),
        ("42", "body_not_object"),
        ("null", "body_not_object"),
    ],
)
def test_a_body_that_is_not_an_object_is_422_never_its_first_element(body: str, code: str) -> None:
    status, answer = _call("POST", "/things", body)
    assert (status, answer["error"]["code"]) == (422, code)


@pytest.mark.parametrize("depth", [33, 256, 5_000])
def test_deep_nesting_is_a_4xx(depth: int) -> None:
    status, answer = _call("POST", "/things", '{"name": ' + "[" * depth + "]" * depth + ', "count": 1}')
    assert status == 422
    assert answer["error"]["code"] == "body_too_deep"


def test_nesting_within_the_limit_reaches_validation() -> None:
    status, answer = _call("POST", "/things", '{"name": ' + "[" * 30 + "]" * 30 + ', "count": 1}')
    assert (status, answer["error"]["code"]) == (422, "validation_error")


@pytest.mark.parametrize("number", ["1" * 4_301, "-" + "9" * 5_000, "1" * 21, "1e999", "-1e400"])
def test_numbers_python_cannot_or_should_not_hold_are_422(number: str) -> None:
    status, answer = _call("POST", "/things", f'{{"name": "a", "count": {number}}}')
    assert (status, answer["error"]["code"]) == (422, "number_out_of_range")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_malformed(constant: str) -> None:
    status, answer = _call("POST", "/things", f'{{"name": "a", "count": {constant}}}')
    assert (status, answer["error"]["code"]) == (400, "malformed_json")


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/merge-patch+json",
    ],
)
def test_bodies_that_are_not_json_are_415(content_type: str) -> None:
    status, answer = _call("POST", "/things", "name=a&count=1", content_type=content_type)
    assert (status, answer["error"]["code"]) == (415, "unsupported_media_type")
    assert "application/json" in answer["error"]["message"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON", ""])
def test_json_media_types_and_a_missing_one_are_read_as_json(content_type: str) -> None:
    status, _ = _call("POST", "/things", json.dumps({"name": "a", "count": 1}), content_type=content_type)
    assert status == 200


@pytest.mark.parametrize("escaped", ["\\ud800", "\\udfff", "a\\udc00b"])
def test_lone_surrogates_are_refused_as_malformed(escaped: str) -> None:
    status, answer = _call("POST", "/things", f'{{"name": "{escaped}", "count": 1}}')
    assert (status, answer["error"]["code"]) == (400, "malformed_json")


def test_a_surrogate_pair_is_ordinary_text() -> None:
    assert _call("POST", "/things", '{"name": "\\ud83d\\ude00", "count": 1}') == (200, {"name": "\U0001f600"})
