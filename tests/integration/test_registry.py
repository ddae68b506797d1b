"""Apps, keys, devices and topics through the real registry routes."""

import json
from typing import Any

import pytest

from push_core.storage import devices as device_store
from tests.fixtures import sample_data
from tests.integration.harness import LocalAws

P256DH = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"


def test_only_the_admin_key_creates_apps(aws: LocalAws):
    app = aws.new_app()
    assert aws.http("POST", "/v1/apps", app["secret"], {"name": "x"}).status == 403
    assert aws.http("POST", "/v1/apps", None, {"name": "x"}).status == 401


def test_app_is_read_renamed_and_hidden_from_other_apps(aws: LocalAws):
    app, other = aws.new_app("first"), aws.new_app("second")
    assert aws.http("GET", f"/v1/apps/{app['id']}", app["secret"]).body["name"] == "first"
    renamed = aws.http("PATCH", f"/v1/apps/{app['id']}", app["secret"], {"name": "renamed"})
    assert (renamed.status, renamed.body["name"]) == (200, "renamed")
    assert aws.http("PATCH", f"/v1/apps/{app['id']}", app["secret"], {}).body["error"]["code"] == "no_changes"
    foreign = aws.http("GET", f"/v1/apps/{app['id']}", other["secret"])
    unknown = aws.http("GET", "/v1/apps/01JD0000000000000000000000", other["secret"])
    assert foreign.status == unknown.status == 404
    assert foreign.body == unknown.body
    assert aws.http("GET", f"/v1/apps/{app['id']}", sample_data.ADMIN_KEY).status == 200


def test_keys_rotate_with_two_live_keys_per_role(aws: LocalAws):
    app = aws.new_app()
    second = aws.http("POST", f"/v1/apps/{app['id']}/keys", app["secret"], {"role": "secret"})
    assert second.status == 201
    third = aws.http("POST", f"/v1/apps/{app['id']}/keys", app["secret"], {"role": "secret"})
    assert (third.status, third.body["error"]["code"]) == (409, "key_limit_reached")

    # The new key works; revoking the old one stops it at once and frees a slot.
    new_key = second.body["key"]
    old_id = app["secret"].split("_")[2]
    assert aws.http("DELETE", f"/v1/apps/{app['id']}/keys/{old_id}", new_key).status == 204
    assert aws.http("GET", f"/v1/apps/{app['id']}", app["secret"]).status == 401
    assert aws.http("GET", f"/v1/apps/{app['id']}", new_key).status == 200
    assert aws.http("POST", f"/v1/apps/{app['id']}/keys", new_key, {"role": "secret"}).status == 201
    assert aws.http("DELETE", f"/v1/apps/{app['id']}/keys/{old_id}", new_key).status == 404

    listed = aws.http("GET", f"/v1/apps/{app['id']}/keys", new_key).body["keys"]
    assert sorted((k["role"], k["revoked_at"] is None) for k in listed) == [
        ("public", True),
        ("secret", False),
        ("secret", True),
        ("secret", True),
    ]
    assert all("key" not in k for k in listed)  # secrets are shown only when issued


def _register(aws: LocalAws, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    reply = aws.http("POST", "/v1/devices", key, body)
    return reply.status, reply.body


KNOWN_TOKENS: list[dict[str, Any]] = [
    {"platform": "apns", "token": "ab" * 32},
    {"platform": "fcm", "token": "dGVzdA:APA91b-known"},
    {"platform": "inbox", "token": "client-chosen-id"},
    {
        "platform": "webpush",
        "subscription": {
            "endpoint": "https://updates.push.services.mozilla.com/wpush/v2/known",
            "keys": {"p256dh": P256DH, "auth": "BTBZMqHH6r4Tts7J_aSIgg"},
        },
    },
]


@pytest.mark.parametrize("body", KNOWN_TOKENS, ids=lambda b: str(b["platform"]))
def test_the_public_key_cannot_take_over_a_registered_token(aws: LocalAws, body: dict[str, Any]):
    # Given a device registered by its owner, who subscribed it and received a message
    app = aws.new_app()
    status, owner = _register(aws, app["public"], body)
    assert status == 201
    device_id, device_key = owner["device"]["id"], owner["device_key"]
    assert aws.http("PUT", f"/v1/devices/{device_id}/topics/private", device_key).status == 201

    # When a stranger holding only the public key (it ships inside the app) registers the same token
    status, answer = _register(aws, app["public"], body)

    # Then they get no device, no key, and the owner's key still works
    assert (status, answer["error"]["code"]) == (409, "token_already_registered")
    assert set(answer) == {"error"}
    assert device_id not in json.dumps(answer)
    assert aws.http("GET", f"/v1/devices/{device_id}/topics", device_key).body["topics"] == ["private"]


def test_a_device_renews_its_own_registration_and_keeps_its_key(aws: LocalAws):
    app = aws.new_app()
    body = {"platform": "apns", "token": "AB" * 32}
    _, first = _register(aws, app["public"], body)
    device_id, device_key = first["device"]["id"], first["device_key"]

    status, again = _register(aws, device_key, {"platform": "apns", "token": "ab" * 32})

    assert status == 200
    assert again["device"]["id"] == device_id
    assert again["device_key"] is None
    assert again["device"]["registered_at"] >= first["device"]["registered_at"]
    assert aws.http("GET", f"/v1/devices/{device_id}", device_key).status == 200


def test_a_device_key_registers_nothing_but_its_own_token(aws: LocalAws):
    app = aws.new_app()
    _, mine = _register(aws, app["public"], {"platform": "apns", "token": "01" * 32})
    _, theirs = _register(aws, app["public"], {"platform": "apns", "token": "02" * 32})

    other = _register(aws, mine["device_key"], {"platform": "apns", "token": "02" * 32})
    new = _register(aws, mine["device_key"], {"platform": "apns", "token": "03" * 32})

    assert (other[0], other[1]["error"]["code"]) == (409, "token_already_registered")
    assert (new[0], new[1]["error"]["code"]) == (403, "device_key_cannot_register")
    assert aws.http("GET", f"/v1/devices/{theirs['device']['id']}", theirs["device_key"]).status == 200


def test_the_secret_key_recovers_a_device_with_a_new_key(aws: LocalAws):
    # Given a device whose app lost its key (a reinstall), recovered by the app's server
    app = aws.new_app()
    _, first = _register(aws, app["public"], {"platform": "apns", "token": "AB" * 32})
    device_id = first["device"]["id"]

    status, again = _register(aws, app["secret"], {"platform": "apns", "token": "ab" * 32})

    assert status == 200
    assert again["device"]["id"] == device_id
    assert aws.http("GET", f"/v1/devices/{device_id}", first["device_key"]).status == 401
    assert aws.http("GET", f"/v1/devices/{device_id}", again["device_key"]).status == 200


@pytest.mark.parametrize("expiration_time", [None, 1767225600000, 1767225600000.5])
def test_a_browser_registers_with_what_push_subscription_to_json_returns(aws: LocalAws, expiration_time: Any):
    app = aws.new_app()
    subscription = {
        "endpoint": "https://fcm.googleapis.com/fcm/send/dpH5lCsTSSM:APA91bHqj",
        "expirationTime": expiration_time,
        "keys": {"p256dh": P256DH, "auth": "BTBZMqHH6r4Tts7J_aSIgg"},
    }
    status, answer = _register(aws, app["public"], {"platform": "webpush", "subscription": subscription})
    assert (status, answer["device"]["platform"]) == (201, "webpush")


def test_every_platform_registers_and_bad_registrations_are_422(aws: LocalAws):
    app = aws.new_app()
    good: list[dict[str, Any]] = [
        {"platform": "inbox"},
        {"platform": "apns", "token": "0f" * 32, "environment": "sandbox"},
        {"platform": "fcm", "token": "dGVzdA:APA91b-token_1"},
        {
            "platform": "webpush",
            "subscription": {
                "endpoint": "https://updates.push.services.mozilla.com/wpush/v2/abc",
                "keys": {"p256dh": P256DH, "auth": "BTBZMqHH6r4Tts7J_aSIgg"},
            },
        },
        {"platform": "webhook", "url": "https://hooks.example.com/pushlane"},
    ]
    for body in good:
        reply = aws.http("POST", "/v1/devices", app["public"], body)
        assert (reply.status, reply.body["device"]["platform"]) == (201, body["platform"])
    for body in (
        {"platform": "apns", "token": "zz"},
        {"platform": "webhook", "url": "ftp://x"},
        {"token": "x"},
    ):
        assert aws.http("POST", "/v1/devices", app["public"], body).status == 422


def test_subscriptions_are_listed_counted_and_removed(aws: LocalAws):
    app = aws.new_app()
    device = aws.new_device(app, ["b", "a"])
    path = f"/v1/devices/{device['id']}/topics"
    assert aws.http("GET", path, device["key"]).body == {"device_id": device["id"], "topics": ["a", "b"]}
    assert aws.http("PUT", f"{path}/a", device["key"]).status == 200  # already subscribed
    assert aws.http("GET", "/v1/topics/a", app["secret"]).body == {"topic": "a", "subscribers": 1}
    assert aws.http("GET", "/v1/topics/*", app["secret"]).body["subscribers"] == 1
    assert aws.http("DELETE", f"{path}/a", device["key"]).status == 204
    assert aws.http("DELETE", f"{path}/a", device["key"]).body["error"]["code"] == "not_subscribed"
    assert aws.http("GET", "/v1/topics/a", app["secret"]).body["subscribers"] == 0
    assert aws.http("PUT", f"{path}/*", device["key"]).body["error"]["code"] == "reserved_topic"
    assert aws.http("PUT", f"{path}/bad%20topic", device["key"]).status == 422


def test_device_keys_reach_only_their_own_device(aws: LocalAws):
    app = aws.new_app()
    one, two = aws.new_device(app), aws.new_device(app)
    assert aws.http("GET", f"/v1/devices/{two['id']}", one["key"]).status == 404
    assert aws.http("PUT", f"/v1/devices/{two['id']}/topics/t", one["key"]).status == 404
    assert aws.http("GET", f"/v1/devices/{two['id']}/messages", one["key"]).status == 404
    # The app's secret key manages devices but does not read their inbox.
    assert aws.http("GET", f"/v1/devices/{two['id']}", app["secret"]).status == 200
    assert aws.http("GET", f"/v1/devices/{two['id']}/messages", app["secret"]).status == 403


def test_deleting_a_device_removes_its_key_subscriptions_and_inbox(aws: LocalAws):
    app = aws.new_app()
    device = aws.new_device(app, ["t"])
    aws.publish(app, topics=["t"])
    aws.drain()
    assert aws.http("DELETE", f"/v1/devices/{device['id']}", device["key"]).status == 204
    assert aws.http("GET", f"/v1/devices/{device['id']}", app["secret"]).status == 404
    assert aws.http("GET", f"/v1/devices/{device['id']}/messages", device["key"]).status == 401
    assert aws.http("GET", "/v1/topics/t", app["secret"]).body["subscribers"] == 0
    assert device_store.device_partition(app["id"], device["id"]) == []


def test_deleting_an_app_revokes_its_keys_and_purges_its_devices(aws: LocalAws):
    app = aws.new_app()
    devices = [aws.new_device(app, ["t"]) for _ in range(5)]
    assert aws.http("DELETE", f"/v1/apps/{app['id']}", app["secret"]).status == 204
    assert aws.http("GET", f"/v1/apps/{app['id']}", app["secret"]).status == 401
    assert aws.http("GET", f"/v1/apps/{app['id']}", sample_data.ADMIN_KEY).status == 404
    aws.drain()  # the purge jobs
    for device in devices:
        assert device_store.get_device(app["id"], device["id"]) is None
        assert device_store.device_partition(app["id"], device["id"]) == []
