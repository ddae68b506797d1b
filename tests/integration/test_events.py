"""Every file in events/ fed to its handler exactly as `sam local invoke <Function> -e <file>` would.

The sample app, device and publication the events name are seeded through pushlane's own storage first;
the test runs the files in the order a user would try them and checks what each one did.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from push_core.storage import devices as device_store
from push_core.storage import subscriptions as subscription_store
from tests.fixtures import sample_data
from tests.integration.harness import LocalAws

EVENTS = Path(__file__).resolve().parents[2] / "events"
FUNCTION_OF_FOLDER = {
    "registry": "RegistryFunction",
    "publish": "PublishFunction",
    "poll": "PollFunction",
    "confirm": "ConfirmFunction",
    "fanout": "FanoutFunction",
    "deliver": "DeliverFunction",
    "feedback": "FeedbackFunction",
}
# (file, expected HTTP status or, for SQS events, the indexes of records reported as failed)
SEQUENCE: list[tuple[str, int | list[int]]] = [
    ("registry/create_app.json", 201),
    ("registry/get_app.json", 200),
    ("registry/register_device.json", 201),
    ("registry/register_apns_device.json", 201),
    ("registry/subscribe.json", 201),
    ("registry/get_topic.json", 200),
    ("registry/openapi.json", 200),
    ("registry/unknown_route.json", 404),
    ("publish/publish.json", 202),
    ("publish/malformed_json.json", 400),
    ("publish/not_utf8.json", 400),
    ("publish/wrong_key.json", 403),
    # The batch the direct expand job below packs, arriving first (as SQS may order it): the expand job
    # then finds it delivered and counts the page's target without sending again.
    ("deliver/delivery_batch.json", []),
    ("fanout/expand_jobs.json", []),
    ("fanout/poison_job.json", [0]),
    ("publish/get_publication.json", 200),
    ("poll/poll.json", 200),
    ("confirm/confirm.json", 200),
    ("feedback/dead_target.json", []),
]


def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


@pytest.fixture(scope="module")
def seeded(aws: LocalAws) -> LocalAws:
    shards = int(aws.stack.function_environments["RegistryFunction"]["TOPIC_SHARDS"])
    sample_data.seed(shards)
    sample_data.seed_publication(expand_jobs=2)
    return aws


def test_every_event_file_is_exercised():
    on_disk = {str(p.relative_to(EVENTS)) for p in EVENTS.rglob("*.json")}
    assert on_disk == {name for name, _ in SEQUENCE}


def test_event_files_drive_their_handlers_in_order(seeded: LocalAws):
    results: dict[str, Any] = {}
    for name, expected in SEQUENCE:
        event = _load(name)
        result = seeded.invoke(FUNCTION_OF_FOLDER[name.split("/")[0]], event)
        if isinstance(expected, int):
            assert result["statusCode"] == expected, (name, result.get("body"))
            body = result.get("body") or "null"
            results[name] = (
                json.loads(body) if result["headers"].get("Content-Type", "").startswith("application/json") else body
            )
            if expected >= 400:
                assert set(results[name]["error"]) == {"code", "message"}, name
        else:
            failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
            assert failed == {event["Records"][i]["messageId"] for i in expected}, name

    assert results["registry/get_topic.json"] == {"topic": sample_data.TOPIC, "subscribers": 1}
    assert "/v1/messages" in results["registry/openapi.json"]["paths"]
    publication = results["publish/get_publication.json"]
    # The topic job skips the device also named directly; the direct job delivers to it: one target.
    assert (publication["total"], publication["passed"], publication["status"]) == (1, 1, "completed")
    assert [m["id"] for m in results["poll/poll.json"]["messages"]] == [sample_data.PUBLICATION_ID]
    assert results["confirm/confirm.json"] == {"confirmed": 1}

    # The feedback event (APNs 410, newer than the registration) disabled the sample iPhone and its topics.
    phone = device_store.get_device(sample_data.APP_ID, sample_data.APNS_DEVICE_ID)
    assert phone is not None
    assert not phone.enabled
    assert subscription_store.device_topics(sample_data.APP_ID, sample_data.APNS_DEVICE_ID) == []


def test_redelivered_fanout_event_changes_nothing(seeded: LocalAws):
    seeded.invoke("FanoutFunction", _load("fanout/expand_jobs.json"))  # applied at least once, whatever ran before
    before = seeded.invoke("PublishFunction", _load("publish/get_publication.json"))
    result = seeded.invoke("FanoutFunction", _load("fanout/expand_jobs.json"))
    after = seeded.invoke("PublishFunction", _load("publish/get_publication.json"))
    assert result == {"batchItemFailures": []}
    assert json.loads(after["body"]) == json.loads(before["body"])
