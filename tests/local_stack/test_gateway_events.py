"""build_http_api_event: the payload format 2.0 event a handler receives."""

import base64
from datetime import UTC, datetime
from typing import Any

from dev.local_stack.gateway import build_http_api_event
from dev.local_stack.template import HttpRoute

GET_APP = HttpRoute("GET", "/v1/apps/{app_id}", "RegistryFunction")
NOT_FOUND = HttpRoute("ANY", "/{proxy+}", "RegistryFunction")
NOW = datetime(2026, 3, 12, 19, 3, 58, 123000, tzinfo=UTC)


def event_for(
    *,
    method: str = "GET",
    raw_path: str = "/v1/apps/a1",
    raw_query: str = "",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    route: HttpRoute = GET_APP,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    return build_http_api_event(
        method,
        raw_path,
        raw_query,
        headers if headers is not None else [("Host", "127.0.0.1:3000"), ("User-Agent", "curl/8")],
        body,
        route,
        {"app_id": "a1"} if path_parameters is None else path_parameters,
        "10.1.2.3",
        request_id="req-1",
        now=NOW,
    )


def test_the_event_has_the_version_route_key_raw_path_and_request_context_api_gateway_sends() -> None:
    event = event_for()

    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /v1/apps/{app_id}"
    assert event["rawPath"] == "/v1/apps/a1"
    assert event["rawQueryString"] == ""
    assert event["pathParameters"] == {"app_id": "a1"}
    assert event["isBase64Encoded"] is False
    assert event["requestContext"] == {
        "accountId": "123456789012",
        "apiId": "local",
        "domainName": "127.0.0.1:3000",
        "domainPrefix": "127",
        "http": {
            "method": "GET",
            "path": "/v1/apps/a1",
            "protocol": "HTTP/1.1",
            "sourceIp": "10.1.2.3",
            "userAgent": "curl/8",
        },
        "requestId": "req-1",
        "routeKey": "GET /v1/apps/{app_id}",
        "stage": "$default",
        "time": "12/Mar/2026:19:03:58 +0000",
        "timeEpoch": 1773342238123,
    }


def test_an_any_route_keeps_any_in_its_route_key_and_names_the_greedy_parameter_proxy() -> None:
    event = event_for(method="POST", raw_path="/nope/x", route=NOT_FOUND, path_parameters={"proxy": "nope/x"})

    assert event["routeKey"] == "ANY /{proxy+}"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["pathParameters"] == {"proxy": "nope/x"}


def test_optional_fields_are_left_out_when_empty() -> None:
    event = event_for(headers=[("Host", "localhost")], path_parameters={})

    assert not {"cookies", "queryStringParameters", "pathParameters", "body"} & set(event)


def test_header_names_are_lower_cased_and_repeated_headers_joined_with_commas() -> None:
    event = event_for(headers=[("Host", "h"), ("X-Tag", "a"), ("x-tag", "b"), ("Accept", "text/plain")])

    assert event["headers"]["x-tag"] == "a,b"
    assert event["headers"]["accept"] == "text/plain"
    assert "X-Tag" not in event["headers"]


def test_api_gateway_forwarding_headers_are_added() -> None:
    event = event_for(headers=[("Host", "127.0.0.1:3000")])

    assert event["headers"]["x-forwarded-for"] == "10.1.2.3"
    assert event["headers"]["x-forwarded-proto"] == "http"
    assert event["headers"]["x-forwarded-port"] == "3000"
    assert event["headers"]["x-amzn-trace-id"].startswith("Root=1-")


def test_cookie_headers_become_the_cookies_list_and_leave_the_headers() -> None:
    event = event_for(headers=[("Host", "h"), ("Cookie", "a=1; b=2"), ("cookie", "c=3")])

    assert event["cookies"] == ["a=1", "b=2", "c=3"]
    assert "cookie" not in event["headers"]


def test_query_parameters_are_decoded_and_repeated_keys_joined_with_commas_raw_string_kept() -> None:
    event = event_for(raw_query="tag=a&tag=b%20c&empty=&q=%C3%A9")

    assert event["rawQueryString"] == "tag=a&tag=b%20c&empty=&q=%C3%A9"
    assert event["queryStringParameters"] == {"tag": "a,b c", "empty": "", "q": "é"}


def test_a_utf8_json_body_arrives_as_text() -> None:
    event = event_for(
        method="POST",
        headers=[("Content-Type", "application/json; charset=utf-8")],
        body='{"név": 1}'.encode(),
    )

    assert event["body"] == '{"név": 1}'
    assert event["isBase64Encoded"] is False


def test_a_json_body_that_is_not_utf8_arrives_base64_encoded_so_the_handler_can_refuse_it() -> None:
    body = b'{"name": "\xff\xfe"}'

    event = event_for(method="POST", headers=[("Content-Type", "application/json")], body=body)

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_binary_and_untyped_bodies_arrive_base64_encoded() -> None:
    for headers in ([("Content-Type", "application/octet-stream")], []):
        event = event_for(method="POST", headers=headers, body=b"\x00\x01plain")

        assert event["isBase64Encoded"] is True
        assert base64.b64decode(event["body"]) == b"\x00\x01plain"


def test_a_form_body_arrives_base64_encoded_as_api_gateway_sends_it() -> None:
    event = event_for(
        method="POST",
        headers=[("Content-Type", "application/x-www-form-urlencoded")],
        body=b"token=abc&user=u",
    )

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"token=abc&user=u"


def test_textual_media_types_arrive_as_text() -> None:
    for content_type in (
        "text/plain",
        "TEXT/HTML; charset=utf-8",
        "application/xml",
        "application/javascript",
    ):
        event = event_for(method="POST", headers=[("Content-Type", content_type)], body=b"<x/>")

        assert (event["body"], event["isBase64Encoded"]) == ("<x/>", False)
