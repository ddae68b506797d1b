"""Feedback through the real FeedbackFunction: which reasons prune, the APNs 410 timestamp rule,
the record apps can list, and the signed notification."""

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dev.emulators import WebhookEmulator
from push_core.models import FeedbackEvent, Platform
from push_core.storage import devices as device_store
from tests.fixtures.redirecting_server import redirecting_server
from tests.integration.harness import LocalAws, local_aws


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(emulated_providers=True) as deployed:
        yield deployed


def _feed(aws: LocalAws, *events: FeedbackEvent) -> dict[str, Any]:
    """Deliver events to the feedback function as its SQS event source would."""
    records = [
        {
            "messageId": f"m-{i}",
            "receiptHandle": "r",
            "body": event.model_dump_json(),
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:FeedbackQueue",
            "awsRegion": "us-east-1",
        }
        for i, event in enumerate(events)
    ]
    result: dict[str, Any] = aws.invoke("FeedbackFunction", {"Records": records})
    return result


def _event(app: dict[str, str], device: dict[str, str], platform: Platform, reason: str, ts: int | None = None):
    return FeedbackEvent(
        app_id=app["id"],
        device_id=device["id"],
        platform=platform,
        reason=reason,
        provider_timestamp_ms=ts,
        observed_at=int(time.time()),
    )


def _enabled(app: dict[str, str], device: dict[str, str]) -> bool:
    stored = device_store.get_device(app["id"], device["id"])
    assert stored is not None
    return stored.enabled


DEAD = [
    (Platform.APNS, "Unregistered"),
    (Platform.APNS, "ExpiredToken"),
    (Platform.APNS, "BadDeviceToken"),
    (Platform.APNS, "DeviceTokenNotForTopic"),
    (Platform.FCM, "UNREGISTERED"),
    (Platform.FCM, "SENDER_ID_MISMATCH"),
    (Platform.FCM, "INVALID_ARGUMENT:token"),
    (Platform.WEBPUSH, "404"),
    (Platform.WEBPUSH, "410"),
]


def _registration(aws: LocalAws, platform: Platform) -> dict[str, Any]:
    assert aws.providers is not None
    if platform is Platform.APNS:
        return {"platform": "apns", "token": secrets.token_hex(32)}
    if platform is Platform.FCM:
        return {"platform": "fcm", "token": f"tok:{secrets.token_urlsafe(16)}"}
    subscription = aws.providers.suite.webpush.create_subscription()
    return {"platform": "webpush", "subscription": {"endpoint": subscription["endpoint"], "keys": subscription["keys"]}}


@pytest.mark.parametrize(("platform", "reason"), DEAD)
def test_dead_target_reasons_prune_the_device(aws: LocalAws, platform: Platform, reason: str):
    app = aws.new_app()
    device = aws.new_device(app, ["t"], **_registration(aws, platform))
    assert _feed(aws, _event(app, device, platform, reason, ts=int(time.time() + 5) * 1000)) == {
        "batchItemFailures": []
    }
    assert not _enabled(app, device)
    assert aws.http("GET", f"/v1/devices/{device['id']}/topics", app["secret"]).body["topics"] == []


@pytest.mark.parametrize("reason", ["ServiceUnavailable", "TooManyRequests", "503", "429", "InternalServerError"])
def test_throttling_and_server_errors_never_prune(aws: LocalAws, reason: str):
    app = aws.new_app()
    device = aws.new_device(app, ["t"], **_registration(aws, Platform.APNS))
    _feed(aws, _event(app, device, Platform.APNS, reason))
    assert _enabled(app, device)


def test_a_410_older_than_the_tokens_registration_keeps_the_device(aws: LocalAws):
    # Given a token the device registered again after APNs reported it gone
    app = aws.new_app()
    token = "ab" * 32
    device = aws.new_device(app, ["t"], platform="apns", token=token)
    stale_410 = (int(time.time()) - 60) * 1000

    # When the stale 410 is processed, and later a fresh one
    _feed(aws, _event(app, device, Platform.APNS, "Unregistered", ts=stale_410))
    survived = _enabled(app, device)
    _feed(aws, _event(app, device, Platform.APNS, "Unregistered", ts=(int(time.time()) + 2) * 1000))

    # Then the device survived the stale one and not the fresh one
    assert survived
    assert not _enabled(app, device)
    listed = aws.http("GET", "/v1/feedback", app["secret"]).body["feedback"]
    assert [(f["reason"], f["action"]) for f in listed] == [
        ("Unregistered", "registered_after_provider_timestamp"),
        ("Unregistered", "pruned"),
    ]
    assert listed[1]["token"] == token
    assert listed[1]["provider_timestamp_ms"] > stale_410


def test_a_503_at_send_time_does_not_prune_and_the_retry_delivers(aws: LocalAws):
    assert aws.providers is not None
    apns = aws.providers.suite.apns
    app = aws.new_app()
    body = json.loads((aws.providers.directory / "apns.json").read_text())
    assert aws.http("PUT", f"/v1/apps/{app['id']}/credentials", app["secret"], body).status == 200
    device = aws.new_device(app, ["t"], platform="apns", token="cd" * 32)
    apns.faults.update(unavailable_rate=1.0, retry_after_s=1)
    message_id = aws.publish(app, topics=["t"])
    for poller in aws.pollers:
        poller.poll_once()
    apns.faults.update(unavailable_rate=0.0)
    aws.drain()
    assert _enabled(app, device)
    assert aws.publication(app, message_id)["passed"] == 1
    assert aws.http("GET", "/v1/feedback", app["secret"]).body["feedback"] == []


def test_an_inbox_devices_dead_ping_token_does_not_prune_its_inbox(aws: LocalAws):
    app = aws.new_app()
    device = aws.new_device(app, ["t"], ping={"platform": "apns", "token": "ee" * 32})
    _feed(aws, _event(app, device, Platform.APNS, "BadDeviceToken"))
    assert _enabled(app, device)


def test_feedback_is_listed_per_app_since_a_time(aws: LocalAws):
    app, other = aws.new_app(), aws.new_app()
    device = aws.new_device(app, **_registration(aws, Platform.FCM))
    _feed(aws, _event(app, device, Platform.FCM, "UNREGISTERED"))
    assert len(aws.http("GET", "/v1/feedback", app["secret"]).body["feedback"]) == 1
    assert aws.http("GET", "/v1/feedback", other["secret"]).body["feedback"] == []
    later = int(time.time()) + 3600
    assert aws.http("GET", f"/v1/feedback?since={later}", app["secret"]).body["feedback"] == []
    assert aws.http("GET", "/v1/feedback", app["public"]).status == 403


def _app_signing_with_a_new_hook(aws: LocalAws) -> tuple[WebhookEmulator, dict[str, str], dict[str, str]]:
    """The webhook receiver (reset), a hook on it, and an app whose webhook secret is that hook's."""
    assert aws.providers is not None
    receiver: WebhookEmulator = aws.providers.suite.webhook
    receiver.reset()
    hook = receiver.create_hook()
    app = aws.new_app()
    credentials = {"platform": "webhook", "secret": hook["secret"]}
    assert aws.http("PUT", f"/v1/apps/{app['id']}/credentials", app["secret"], credentials).status == 200
    return receiver, hook, app


def test_the_app_is_notified_through_its_signed_feedback_webhook(aws: LocalAws):
    receiver, hook, app = _app_signing_with_a_new_hook(aws)
    updated = aws.http("PATCH", f"/v1/apps/{app['id']}", app["secret"], {"feedback_url": hook["url"]})
    assert updated.body["feedback_url"] == hook["url"]
    device = aws.new_device(app, platform="fcm", token="dead:token")

    _feed(aws, _event(app, device, Platform.FCM, "UNREGISTERED"))

    [entry] = receiver.ledger.delivered()
    assert entry.data["signature"]["verified"] is True
    assert entry.data["body"]["type"] == "device.pruned"
    assert (entry.data["body"]["device_id"], entry.data["body"]["token"]) == (device["id"], "dead:token")


def test_a_feedback_webhook_that_redirects_is_not_followed(aws: LocalAws):
    receiver, hook, app = _app_signing_with_a_new_hook(aws)
    with redirecting_server(receiver.authority.server_context(("http/1.1",)), location=hook["url"]) as redirector:
        feedback_url = redirector.url + "/feedback"
        assert aws.http("PATCH", f"/v1/apps/{app['id']}", app["secret"], {"feedback_url": feedback_url}).status == 200
        device = aws.new_device(app, platform="fcm", token="dead:redirected")

        _feed(aws, _event(app, device, Platform.FCM, "UNREGISTERED"))

    assert redirector.requests == ["/feedback"]
    assert receiver.ledger.delivered() == []
    assert not _enabled(app, device)  # the prune stands whatever the notification's fate
