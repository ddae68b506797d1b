"""Apps, keys, devices and topics through the real registry routes."""

from typing import Any

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


def test_same_token_registers_the_same_device_with_a_fresh_key(aws: LocalAws):
    app = aws.new_app()
    first = aws.http("POST", "/v1/devices", app["public"], {"platform": "apns", "token": "AB" * 32})
    again = aws.http("POST", "/v1/devices", app["public"], {"platform": "apns", "token": "ab" * 32})
    assert (first.status, again.status) == (201, 200)
    assert first.body["device"]["id"] == again.body["device"]["id"]
    device_id = first.body["device"]["id"]
    assert aws.http("GET", f"/v1/devices/{device_id}", first.body["device_key"]).status == 401
    assert aws.http("GET", f"/v1/devices/{device_id}", again.body["device_key"]).status == 200


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
