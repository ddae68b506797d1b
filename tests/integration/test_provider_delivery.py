"""Publish → fan-out → providers → emulators, through the real handlers and queues (moto), as deployed code runs."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from push_core.storage import devices as device_store
from tests.integration.harness import LocalAws, local_aws


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(emulated_providers=True) as deployed:
        yield deployed


@pytest.fixture
def app(aws: LocalAws) -> dict[str, str]:
    assert aws.providers is not None
    for emulator in aws.providers.suite.emulators:
        emulator.reset()
    created = aws.new_app()
    for platform in ("apns", "fcm", "webpush", "webhook"):
        body = json.loads((aws.providers.directory / f"{platform}.json").read_text())
        reply = aws.http("PUT", f"/v1/apps/{created['id']}/credentials", created["secret"], body)
        assert reply.status == 200, reply.body
    return created


def _device_body(aws: LocalAws, platform: str) -> dict[str, object]:
    assert aws.providers is not None
    return dict(json.loads(Path(aws.providers.directory / f"{platform}-device.json").read_text()))


def test_one_publication_reaches_every_platform_and_counts_them(aws: LocalAws, app: dict[str, str]):
    assert aws.providers is not None
    for platform in ("apns", "fcm", "webpush", "webhook"):
        aws.new_device(app, ["all"], **_device_body(aws, platform))
    inbox = aws.new_device(app, ["all"])

    message_id = aws.publish(app, topics=["all"], title="Hi", body="Everywhere")
    aws.drain()

    report = aws.publication(app, message_id)
    assert (report["total"], report["passed"], report["failed"], report["status"]) == (5, 5, 0, "completed")
    suite = aws.providers.suite
    assert [e.data["payload"]["aps"]["alert"]["body"] for e in suite.apns.ledger.delivered()] == ["Everywhere"]
    assert [e.data["message"]["notification"]["body"] for e in suite.fcm.ledger.delivered()] == ["Everywhere"]
    assert [json.loads(e.data["plaintext"])["body"] for e in suite.webpush.ledger.delivered()] == ["Everywhere"]
    assert [e.data["body"]["body"] for e in suite.webhook.ledger.delivered()] == ["Everywhere"]
    assert [m["body"] for m in aws.poll(inbox)["messages"]] == ["Everywhere"]


def test_inbox_device_with_a_push_token_gets_a_silent_ping(aws: LocalAws, app: dict[str, str]):
    assert aws.providers is not None
    token = "5e" * 32
    device = aws.new_device(app, ["news"], ping={"platform": "apns", "token": token})

    message_id = aws.publish(app, topics=["news"], body="sync me")
    aws.drain()

    [ping] = aws.providers.suite.apns.ledger.delivered()
    assert ping.data["token"] == token
    assert ping.data["payload"]["aps"] == {"content-available": 1}
    assert (ping.data["push_type"], ping.data["priority"]) == ("background", 5)
    assert [m["id"] for m in aws.poll(device)["messages"]] == [message_id]
    assert aws.publication(app, message_id)["passed"] == 1


def test_dead_tokens_are_failed_and_pruned_through_feedback(aws: LocalAws, app: dict[str, str]):
    assert aws.providers is not None
    body = _device_body(aws, "apns")
    device = aws.new_device(app, ["promo"], **body)
    # APNs reports it gone after it was registered (an older 410 would not prune: see test_feedback).
    aws.providers.suite.apns.mark_dead([str(body["token"])], timestamp_ms=(int(time.time()) + 5) * 1000)

    message_id = aws.publish(app, topics=["promo"])
    aws.drain()

    report = aws.publication(app, message_id)
    assert (report["total"], report["passed"], report["failed"]) == (1, 0, 1)
    stored = device_store.get_device(app["id"], device["id"])
    assert stored is not None
    assert not stored.enabled
    assert aws.http("GET", "/v1/topics/promo", app["secret"]).body["subscribers"] == 0


def test_transient_failures_are_retried_later_and_then_counted(aws: LocalAws, app: dict[str, str]):
    assert aws.providers is not None
    fcm = aws.providers.suite.fcm
    aws.new_device(app, ["flaky"], **_device_body(aws, "fcm"))
    fcm.faults.update(unavailable_rate=1.0, retry_after_s=1)

    message_id = aws.publish(app, topics=["flaky"])
    for poller in aws.pollers:  # the first attempt only
        poller.poll_once()
    first = aws.publication(app, message_id)
    assert (first["total"], first["passed"], first["pending"]) == (1, 0, 1)

    fcm.faults.update(unavailable_rate=0.0)
    aws.drain()  # the retry job was delayed by the provider's Retry-After
    report = aws.publication(app, message_id)
    assert (report["passed"], report["pending"], report["status"]) == (1, 0, "completed")
    assert len(fcm.ledger.delivered()) == 1


def test_an_app_without_credentials_fails_those_targets_with_a_reason(aws: LocalAws):
    bare = aws.new_app()
    aws.new_device(bare, ["t"], **_device_body(aws, "fcm"))
    message_id = aws.publish(bare, topics=["t"])
    aws.drain()
    assert aws.publication(bare, message_id)["failed"] == 1


def test_credentials_are_validated_listed_and_removed(aws: LocalAws, app: dict[str, str]):
    listed = aws.http("GET", f"/v1/apps/{app['id']}/credentials", app["secret"]).body["credentials"]
    assert sorted(c["platform"] for c in listed) == ["apns", "fcm", "webhook", "webpush"]
    assert "private_key" not in json.dumps(listed)
    bad = aws.http(
        "PUT",
        f"/v1/apps/{app['id']}/credentials",
        app["secret"],
        {"platform": "apns", "topic": "t", "team_id": "ABCDE12345", "key_id": "ABCDE12345", "private_key": "nope"},
    )
    assert (bad.status, bad.body["error"]["code"]) == (422, "invalid_credentials")
    generated = aws.http("PUT", f"/v1/apps/{app['id']}/credentials", app["secret"], {"platform": "webhook"}).body
    assert generated["shown_once"]["secret"].startswith("whsec_")
    assert aws.http("DELETE", f"/v1/apps/{app['id']}/credentials/fcm", app["secret"]).status == 204
    assert aws.http("DELETE", f"/v1/apps/{app['id']}/credentials/fcm", app["secret"]).status == 404


def test_receipts_record_each_targets_outcome_when_asked(aws: LocalAws, app: dict[str, str]):
    assert aws.providers is not None
    body = _device_body(aws, "apns")
    phone = aws.new_device(app, ["launch"], **body)
    inbox = aws.new_device(app, ["launch"])
    dead_body = {"platform": "fcm", "token": "gone:token"}
    dead = aws.new_device(app, ["launch"], **dead_body)
    aws.providers.suite.fcm.mark_dead(["gone:token"], reason="UNREGISTERED")

    message_id = aws.publish(app, topics=["launch"], receipts=True)
    silent_id = aws.publish(app, topics=["launch"])
    aws.drain()

    receipts = aws.http("GET", f"/v1/messages/{message_id}/receipts", app["secret"]).body["receipts"]
    by_device = {r["device_id"]: r for r in receipts}
    assert by_device[phone["id"]]["outcome"] == "delivered"
    assert by_device[phone["id"]]["provider_id"]  # the apns-id APNs answered with
    assert by_device[inbox["id"]]["outcome"] == "delivered"
    assert (by_device[dead["id"]]["outcome"], by_device[dead["id"]]["reason"]) == ("failed", "UNREGISTERED")
    refused = aws.http("GET", f"/v1/messages/{silent_id}/receipts", app["secret"])
    assert (refused.status, refused.body["error"]["code"]) == (409, "receipts_not_kept")


def test_platform_overrides_reach_apns_and_fcm(aws: LocalAws, app: dict[str, str]):
    assert aws.providers is not None
    aws.new_device(app, ["badge"], **_device_body(aws, "apns"))
    aws.new_device(app, ["badge"], **_device_body(aws, "fcm"))
    overrides = {
        "apns": {"headers": {"apns-push-type": "alert"}, "payload": {"aps": {"badge": 3}}},
        "fcm": {"android": {"restricted_package_name": "com.example.app"}},
    }
    message_id = aws.publish(app, topics=["badge"], overrides=overrides)
    aws.drain()
    assert aws.publication(app, message_id)["passed"] == 2
    [apns] = aws.providers.suite.apns.ledger.delivered()
    [fcm] = aws.providers.suite.fcm.ledger.delivered()
    assert apns.data["payload"]["aps"]["badge"] == 3
    assert fcm.data["message"]["android"]["restricted_package_name"] == "com.example.app"
    bad = aws.http("POST", "/v1/messages", app["secret"], {"topics": ["x"], "body": "b", "overrides": {"sms": {}}})
    assert bad.status == 422
