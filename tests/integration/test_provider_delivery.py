"""Publish → fan-out → providers → emulators, through the real handlers and queues (moto), as deployed code runs."""

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from push_core import assembly
from push_core.pipeline import deliver
from push_core.pipeline.jobs import DeliveryJob, JobQueues, delivery_job_adapter
from push_core.pipeline.ledger import BatchKey, SliceRecord
from push_core.storage import devices as device_store
from push_core.storage.batch_progress import DynamoBatchLedger
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
    fanout = next(p for p in aws.pollers if p.source.function == "FanoutFunction")
    while fanout.poll_once():  # every shard's page (one job per invocation); the device's is delivered inline
        pass
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


LONG_BODY = "ü" * 2500  # 5,000 bytes of UTF-8: more than any platform's payload holds


def _assert_trimmed(received: str) -> None:
    assert received.endswith("…")
    assert LONG_BODY.startswith(received[:-1])
    assert 3000 < len(received[:-1].encode()) < len(LONG_BODY.encode())


def test_a_body_too_long_for_any_payload_reaches_every_platform_trimmed(aws: LocalAws, app: dict[str, str]):
    assert aws.providers is not None
    for platform in ("apns", "fcm", "webpush"):
        aws.new_device(app, ["long"], **_device_body(aws, platform))

    message_id = aws.publish(app, topics=["long"], title="Big", body=LONG_BODY, data={"order": 42})
    aws.drain()

    report = aws.publication(app, message_id)
    assert (report["total"], report["passed"], report["failed"]) == (3, 3, 0)
    suite = aws.providers.suite
    [apns] = suite.apns.ledger.delivered()
    [fcm] = suite.fcm.ledger.delivered()
    [webpush] = suite.webpush.ledger.delivered()
    assert (apns.data["payload"]["aps"]["alert"]["title"], apns.data["payload"]["order"]) == ("Big", 42)
    _assert_trimmed(apns.data["payload"]["aps"]["alert"]["body"])
    assert (fcm.data["message"]["notification"]["title"], fcm.data["message"]["data"]["order"]) == ("Big", "42")
    _assert_trimmed(fcm.data["message"]["notification"]["body"])
    received = json.loads(webpush.data["plaintext"])  # the emulator decrypted it
    assert (received["title"], received["data"]) == ("Big", {"order": 42})
    _assert_trimmed(received["body"])


def test_an_oversized_web_push_message_is_delivered_and_prunes_nothing(aws: LocalAws, app: dict[str, str]):
    # Given a Web Push subscriber of an app that is told about every pruned device
    assert aws.providers is not None
    hook_url = _device_body(aws, "webhook")["url"]  # the emulator's hook, signed with the app's webhook secret
    assert aws.http("PATCH", f"/v1/apps/{app['id']}", app["secret"], {"feedback_url": hook_url}).status == 200
    subscription = aws.providers.suite.webpush.create_subscription()
    registration = {"endpoint": subscription["endpoint"], "keys": subscription["keys"]}
    device = aws.new_device(app, ["news"], platform="webpush", subscription=registration)

    # When a message too big for one record is published to it
    message_id = aws.publish(app, topics=["news"], body=LONG_BODY)
    aws.drain()

    # Then it arrives trimmed, and the subscription stays enabled and subscribed, with no device.pruned sent
    [entry] = aws.providers.suite.webpush.ledger.delivered()
    _assert_trimmed(json.loads(entry.data["plaintext"])["body"])
    assert aws.publication(app, message_id)["passed"] == 1
    stored = device_store.get_device(app["id"], device["id"])
    assert stored is not None
    assert stored.enabled
    assert aws.http("GET", f"/v1/devices/{device['id']}/topics", app["secret"]).body["topics"] == ["news"]
    assert aws.http("GET", "/v1/feedback", app["secret"]).body["feedback"] == []
    assert aws.providers.suite.webhook.ledger.delivered() == []


def test_data_a_platform_cannot_carry_is_refused_before_anything_is_queued(aws: LocalAws, app: dict[str, str]):
    assert aws.providers is not None
    aws.new_device(app, ["big"], **_device_body(aws, "webpush"))
    hook = aws.new_device(app, [], **_device_body(aws, "webhook"))
    data = {"blob": "x" * 4050}  # within the API's data limit, but over every push platform's with no text at all
    queued = aws.queue_depth("FanoutQueue")

    refused = aws.http("POST", "/v1/messages", app["secret"], {"topics": ["big"], "body": "b", "data": data})

    assert refused.status == 422
    assert refused.body["error"]["code"] == "payload_too_large_for_platform"
    message = refused.body["error"]["message"]
    assert all(f"{platform} by " in message for platform in ("apns", "fcm", "webpush"))
    assert aws.queue_depth("FanoutQueue") == queued
    # A webhook carries any size: sent only to one, the same data is accepted and delivered.
    accepted = aws.publish(app, devices=[hook["id"]], data=data)
    aws.drain()
    assert aws.publication(app, accepted)["passed"] == 1
    assert [e.data["body"]["data"] for e in aws.providers.suite.webhook.ledger.delivered()] == [data]


def _queued_batch(aws: LocalAws, app: dict[str, str], tokens: list[str]) -> tuple[str, DeliveryJob]:
    """Publish to APNs devices by id and expand it: the delivery batch it made, received from its queue."""
    devices = [aws.new_device(app, [], platform="apns", token=token) for token in tokens]
    message_id = aws.publish(app, devices=[d["id"] for d in devices])
    next(p for p in aws.pollers if p.source.function == "FanoutFunction").poll_once()
    delivery = next(p for p in aws.pollers if p.source.function == "DeliverFunction")
    [received] = delivery.sqs.receive_message(QueueUrl=delivery.queue_url, VisibilityTimeout=0)["Messages"]
    return message_id, delivery_job_adapter.validate_json(received["Body"])


def test_a_batch_held_by_a_live_invocation_is_left_to_it(aws: LocalAws, app: dict[str, str]):
    assert aws.providers is not None
    message_id, job = _queued_batch(aws, app, [f"{n:064x}" for n in range(3)])
    now = time.time()
    ledger, batch = DynamoBatchLedger(), BatchKey(job.app_id, job.publication_id, job.job_key)
    ledger.claim(batch, "another", now=now, lease_until=now + 60)

    assembly.batch_delivery().deliver(job)  # a duplicate of the message, while "another" works on it

    assert aws.providers.suite.apns.ledger.delivered() == []
    assert aws.publication(app, message_id)["passed"] == 0
    ledger.release(batch, "another")  # it hands back cleanly
    aws.drain()
    assert len(aws.providers.suite.apns.ledger.delivered()) == 3
    report = aws.publication(app, message_id)
    assert (report["passed"], report["possible_duplicates"], report["status"]) == (3, 0, "completed")


class Killed(BaseException):
    """The invocation's environment vanishing: no handler code catches it."""


class DiesRecordingSlice(DynamoBatchLedger):
    """The deployment's ledger, in an environment that vanishes as it is about to record one slice."""

    def __init__(self, index: int) -> None:
        self.index = index

    def record_slice(self, batch: BatchKey, owner: str, record: SliceRecord) -> None:
        if record.index == self.index:
            raise Killed
        super().record_slice(batch, owner, record)


class DiesSendingRetries(JobQueues):
    """The deployment's queues, in an environment that vanishes as it is about to queue a retry."""

    def requeue(self, job: DeliveryJob, delay_s: int = 0) -> None:
        raise Killed


def test_an_interrupted_slice_is_resent_counted_and_logged(
    aws: LocalAws, app: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    # Given batches of one-target slices, and an invocation that dies after sending the second slice
    assert aws.providers is not None
    tokens = [f"{n:064x}" for n in range(10, 13)]
    message_id, job = _queued_batch(aws, app, tokens)
    with assembly.replaced(slice_size=1, ledger=DiesRecordingSlice(1)), pytest.raises(Killed):
        assembly.batch_delivery().deliver(job)

    # When the message comes back after its visibility timeout (the dead holder's lease has run out)
    later = time.time() + 6 * 60
    with assembly.replaced(slice_size=1, clock=lambda: later):
        assembly.batch_delivery().deliver(job)

    # Then only the interrupted slice went out twice, it was counted and logged, and the counters are exact
    sent = Counter(e.data["token"] for e in aws.providers.suite.apns.ledger.delivered())
    second = next(t for t in job.targets if t.token == tokens[1])
    assert sent == {tokens[0]: 1, tokens[1]: 2, tokens[2]: 1}
    report = aws.publication(app, message_id)
    assert (report["total"], report["passed"], report["possible_duplicates"]) == (3, 3, 1)
    [window] = [r for r in caplog.records if r.getMessage() == deliver.POSSIBLE_DUPLICATES_LOG]
    assert window.__dict__["device_ids"] == [second.device_id]
    aws.drain()  # the original message: the batch is done, nothing more is sent
    assert sum(1 for _ in aws.providers.suite.apns.ledger.delivered()) == 4


def test_a_retry_lost_with_its_invocation_is_sent_by_the_next_copy_of_the_batch(
    aws: LocalAws, app: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    # Given a batch whose only target fails for now, delivered by an invocation that dies right after
    # finishing the batch, before it sent the retry
    assert aws.providers is not None
    fcm = aws.providers.suite.fcm
    fcm.faults.update(unavailable_rate=1.0, retry_after_s=1)
    devices = [aws.new_device(app, [], platform="fcm", token=f"fcm-lost-retry-{n}") for n in range(3)]
    message_id = aws.publish(app, devices=[d["id"] for d in devices])
    next(p for p in aws.pollers if p.source.function == "FanoutFunction").poll_once()
    delivery = next(p for p in aws.pollers if p.source.function == "DeliverFunction")
    [received] = delivery.sqs.receive_message(QueueUrl=delivery.queue_url, VisibilityTimeout=0)["Messages"]
    job = delivery_job_adapter.validate_json(received["Body"])
    with assembly.replaced(queues=DiesSendingRetries(**asdict(assembly.job_queues()))), pytest.raises(Killed):
        assembly.batch_delivery().deliver(job)
    assert aws.publication(app, message_id)["pending"] == 3  # finished, counted nothing, retry registered

    # When the batch's message comes back, the batch is done: its recorded retry is sent instead
    fcm.faults.update(unavailable_rate=0.0)
    aws.drain()

    # Then the retry delivered every target once and the publication completed
    report = aws.publication(app, message_id)
    assert (report["passed"], report["pending"], report["status"]) == (3, 0, "completed")
    assert sorted(e.data["target"]["token"] for e in fcm.ledger.delivered()) == [
        f"fcm-lost-retry-{n}" for n in range(3)
    ]


def test_a_p8_key_with_escaped_newlines_is_accepted_and_signs(aws: LocalAws):
    # Given the .p8 pasted through an environment variable or a JSON file: "\n" as two characters
    assert aws.providers is not None
    aws.providers.suite.apns.reset()
    app = aws.new_app()
    body = json.loads((aws.providers.directory / "apns.json").read_text())
    escaped = {**body, "private_key": body["private_key"].strip().replace("\n", "\\n")}

    # When the app stores it and publishes to an iPhone
    stored = aws.http("PUT", f"/v1/apps/{app['id']}/credentials", app["secret"], escaped)
    aws.new_device(app, ["t"], **_device_body(aws, "apns"))
    message_id = aws.publish(app, topics=["t"], body="signed")
    aws.drain()

    # Then the credentials API and the signer agree: accepted, and APNs took the token it signed
    assert stored.status == 200, stored.body
    assert aws.publication(app, message_id)["passed"] == 1
    assert [e.data["payload"]["aps"]["alert"]["body"] for e in aws.providers.suite.apns.ledger.delivered()] == [
        "signed"
    ]


def test_certificate_and_key_that_do_not_match_are_refused(aws: LocalAws):
    assert aws.providers is not None
    app = aws.new_app()
    issued = aws.providers.suite.apns.issue_client_certificate("com.example.app")
    other = aws.providers.suite.apns.issue_client_certificate("com.example.app")
    path = f"/v1/apps/{app['id']}/credentials"
    body = {"platform": "apns", "topic": "com.example.app", "certificate": issued.cert_pem}

    mismatched = aws.http("PUT", path, app["secret"], {**body, "certificate_key": other.key_pem})
    matched = aws.http("PUT", path, app["secret"], {**body, "certificate_key": issued.key_pem})

    assert (mismatched.status, mismatched.body["error"]["code"]) == (422, "invalid_credentials")
    assert matched.status == 200, matched.body
