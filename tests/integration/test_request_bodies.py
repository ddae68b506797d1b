"""Every route that takes a body refuses bodies of the wrong shape with a 4xx, and accepts none of them in part."""

import json
from typing import Any

import pytest

from tests.fixtures import sample_data
from tests.integration.harness import LocalAws

# A valid body for each route that takes one, and the key it needs ("admin", "secret", "public", "device").
VALID_BODIES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("POST", "/v1/apps"): ("admin", {"name": "shape"}),
    ("PATCH", "/v1/apps/{app_id}"): ("secret", {"name": "renamed"}),
    ("POST", "/v1/apps/{app_id}/keys"): ("secret", {"role": "public"}),
    ("PUT", "/v1/apps/{app_id}/credentials"): ("secret", {"platform": "webhook"}),
    ("POST", "/v1/devices"): ("public", {"platform": "inbox"}),
    ("POST", "/v1/messages"): ("secret", {"topics": ["news"], "body": "one"}),
    ("POST", "/v1/devices/{device_id}/messages/confirm"): ("device", {"up_to": "01JD0000000000000000000000"}),
}


def _documented_body_routes(aws: LocalAws) -> set[tuple[str, str]]:
    document = aws.http("GET", "/v1/openapi.json").body
    if isinstance(document, str):
        document = json.loads(document)
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    }


@pytest.fixture(scope="module")
def realm(aws: LocalAws) -> dict[str, str]:
    app = aws.new_app()
    device = aws.new_device(app, ["news"])
    return {**app, "admin": sample_data.ADMIN_KEY, "device": device["key"], "device_id": device["id"]}


def _send(aws: LocalAws, realm: dict[str, str], route: tuple[str, str], data: str, content_type: str) -> Any:
    method, template = route
    role, _ = VALID_BODIES[route]
    path = template.format(app_id=realm["id"], device_id=realm["device_id"])
    return aws.http(method, path, realm[role], data=data, headers={"Content-Type": content_type})


def test_every_body_route_is_covered(aws: LocalAws):
    assert _documented_body_routes(aws) == set(VALID_BODIES)


@pytest.mark.parametrize("route", sorted(VALID_BODIES))
def test_an_array_of_valid_bodies_is_422_on_every_route(aws: LocalAws, realm: dict[str, str], route):
    _, valid = VALID_BODIES[route]
    reply = _send(aws, realm, route, json.dumps([valid, valid, valid]), "application/json")
    assert (reply.status, reply.body["error"]["code"]) == (422, "body_not_object")


@pytest.mark.parametrize("route", sorted(VALID_BODIES))
@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        ('{"a": ' + "[" * 300 + "]" * 300 + "}", "application/json", 422, "body_too_deep"),
        ('{"a": ' + "7" * 4_400 + "}", "application/json", 422, "number_out_of_range"),
        ("--x\r\n", "multipart/form-data", 415, "unsupported_media_type"),
        ("a=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ('{"a": NaN}', "application/json", 400, "malformed_json"),
    ],
    ids=["deep", "huge-int", "multipart-no-boundary", "form", "nan"],
)
def test_malformed_bodies_are_4xx_with_the_error_shape(
    aws: LocalAws, realm: dict[str, str], route, data: str, content_type: str, status: int, code: str
):
    reply = _send(aws, realm, route, data, content_type)
    assert (reply.status, reply.body["error"]["code"]) == (status, code)
    assert reply.body["error"]["message"]


def test_an_array_publishes_nothing(aws: LocalAws, realm: dict[str, str]):
    # Given three publications sent as one array (once, the first was published and the rest dropped)
    bodies = [{"topics": ["news"], "body": f"m{i}"} for i in range(3)]
    reply = aws.http("POST", "/v1/messages", realm["secret"], bodies)
    aws.drain()

    # Then the client is told, and nothing reached the device
    assert reply.status == 422
    device = {"id": realm["device_id"], "key": realm["device"]}
    assert aws.poll(device)["messages"] == []


@pytest.mark.parametrize(
    "wrong",
    [{"ttl": True}, {"ttl": "60"}, {"importance": True}, {"importance": 4.0}, {"receipts": 1}, {"receipts": "yes"}],
    ids=["ttl-bool", "ttl-string", "importance-bool", "importance-float", "receipts-int", "receipts-string"],
)
def test_a_publication_field_of_the_wrong_json_type_is_refused_not_coerced(
    aws: LocalAws, realm: dict[str, str], wrong: dict[str, Any]
):
    # A JSON true is not a ttl of 1, nor 1 a true: the document says integer and boolean (found by the fuzz test)
    reply = aws.http("POST", "/v1/messages", realm["secret"], {"topics": ["news"], "body": "typed", **wrong})
    assert (reply.status, reply.body["error"]["code"]) == (422, "validation_error")
    assert next(iter(wrong)) in reply.body["error"]["message"]
