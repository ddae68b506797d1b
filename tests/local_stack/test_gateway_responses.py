"""Gateway: requests in, handler results out, the way API Gateway maps them (payload format 2.0)."""

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from dev.local_stack.gateway import MAX_REQUEST_BYTES, Gateway
from dev.local_stack.runtime import LocalFunction
from dev.local_stack.template import FunctionSpec, HttpRoute

# Returns whatever JSON the request carries: each test states the handler result it wants mapped.
RESPOND = """
import base64, json

def handler(event, context):
    body = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"]
    return json.loads(body)
"""
ECHO = """
import json

def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
"""
BOOM = """
def handler(event, context):
    raise RuntimeError("kaboom")
"""


@pytest.fixture
def client(make_spec: Callable[..., FunctionSpec], process_state: None) -> Client:
    functions = {
        name: LocalFunction(make_spec(name, source))
        for name, source in (("Respond", RESPOND), ("Echo", ECHO), ("Boom", BOOM))
    }
    routes = [
        HttpRoute("POST", "/respond", "Respond"),
        HttpRoute("ANY", "/echo/{proxy+}", "Echo"),
        HttpRoute("GET", "/boom", "Boom"),
    ]
    return Client(Gateway(routes, functions), use_cookies=False)  # send Cookie headers as written


def body_of(response: TestResponse) -> Any:
    return json.loads(response.get_data())


def respond_with(client: Client, result: object) -> TestResponse:
    return client.post("/respond", data=json.dumps(result), content_type="application/json")


def test_status_headers_multi_value_headers_and_cookies_are_mapped_to_the_http_response(
    client: Client,
) -> None:
    response = respond_with(
        client,
        {
            "statusCode": 201,
            "headers": {"content-type": "text/plain", "x-count": 3, "x-flag": True},
            "multiValueHeaders": {"x-multi": ["a", "b"]},
            "cookies": ["session=1; HttpOnly", "theme=dark"],
            "body": "created",
        },
    )

    assert response.status_code == 201
    assert response.get_data(as_text=True) == "created"
    assert response.headers["content-type"] == "text/plain"
    assert (response.headers["x-count"], response.headers["x-flag"]) == ("3", "true")
    assert response.headers.getlist("x-multi") == ["a", "b"]
    assert response.headers.getlist("set-cookie") == ["session=1; HttpOnly", "theme=dark"]


def test_a_base64_encoded_body_is_decoded_to_bytes(client: Client) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00"
    response = respond_with(
        client,
        {
            "statusCode": 200,
            "headers": {"content-type": "image/png"},
            "isBase64Encoded": True,
            "body": base64.b64encode(png).decode(),
        },
    )

    assert response.get_data() == png


def test_no_content_type_is_invented_for_a_structured_response(client: Client) -> None:
    response = respond_with(client, {"statusCode": 204})

    assert response.status_code == 204
    assert "content-type" not in response.headers


def test_a_dict_without_status_code_is_a_200_json_response_of_that_dict(client: Client) -> None:
    response = respond_with(client, {"hello": "world", "n": 1})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert body_of(response) == {"hello": "world", "n": 1}


def test_a_string_result_is_sent_as_the_body_of_a_200(client: Client) -> None:
    response = respond_with(client, "just text")

    assert (response.status_code, response.get_data(as_text=True)) == (200, "just text")


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": "200"},
        {"statusCode": 99},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "isBase64Encoded": True, "body": "not base64!"},
        {"statusCode": 200, "headers": {"x-list": ["a"]}},
    ],
)
def test_a_malformed_response_is_an_api_gateway_500(
    client: Client, result: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    response = respond_with(client, result)

    assert response.status_code == 500
    assert response.get_data() == b'{"message":"Internal Server Error"}'
    assert "malformed response" in caplog.text


def test_a_handler_that_raises_is_an_api_gateway_500_and_its_traceback_is_logged(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="dev.local_stack.gateway"):
        response = client.get("/boom")

    assert response.status_code == 500
    assert response.get_data() == b'{"message":"Internal Server Error"}'
    assert response.headers["content-type"] == "application/json"
    (record,) = caplog.records
    assert record.exc_info is not None
    assert "kaboom" in str(record.exc_info[1])


def test_a_request_no_route_matches_is_api_gateways_own_404(client: Client) -> None:
    response = client.get("/nowhere")

    assert response.status_code == 404
    assert response.get_data() == b'{"message":"Not Found"}'


def test_a_request_body_over_10_mb_is_refused_with_413_before_any_handler_runs(client: Client) -> None:
    response = client.post("/boom", data=b"x" * (MAX_REQUEST_BYTES + 1), content_type="text/plain")

    assert response.status_code == 413
    assert response.get_data() == b'{"message":"Request Entity Too Large"}'


def test_a_request_body_of_exactly_10_mb_is_passed_on(client: Client) -> None:
    response = client.post("/echo/big", data=b"x" * MAX_REQUEST_BYTES, content_type="text/plain")

    assert response.status_code == 200
    assert len(body_of(response)["body"]) == MAX_REQUEST_BYTES


def test_the_handler_sees_raw_path_decoded_parameters_query_and_cookies_of_the_real_request(
    client: Client,
) -> None:
    response = client.delete(
        "/echo/a%20b/c?x=1&x=2", headers=[("Cookie", "s=1"), ("X-Trace", "t1"), ("Host", "localhost:3000")]
    )

    event = body_of(response)
    assert event["routeKey"] == "ANY /echo/{proxy+}"
    assert event["rawPath"] == "/echo/a%20b/c"
    assert event["pathParameters"] == {"proxy": "a b/c"}
    assert event["rawQueryString"] == "x=1&x=2"
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["cookies"] == ["s=1"]
    assert event["headers"]["x-trace"] == "t1"
    assert event["requestContext"]["http"]["method"] == "DELETE"
    assert event["requestContext"]["domainName"] == "localhost:3000"


def test_every_response_carries_the_request_id_the_handler_saw(client: Client) -> None:
    response = client.get("/echo/x")

    assert response.headers["apigw-requestid"] == body_of(response)["requestContext"]["requestId"]


def test_a_route_naming_a_function_that_was_not_loaded_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="MissingFunction"):
        Gateway([HttpRoute("GET", "/x", "MissingFunction")], {})
