from typing import TYPE_CHECKING, Any, cast

import pytest

from push_core.errors import ServiceUnavailable
from push_core.models import MessageContent, Platform, Target
from push_core.pipeline.jobs import DeliveryJob, ExpandJob, PurgeAppJob, fanout_job_adapter, pack_targets, send_jobs

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


def _job(**changes: Any) -> ExpandJob:
    base: dict[str, Any] = {
        "app_id": "A",
        "publication_id": "P",
        "created_at": 1,
        "content": MessageContent(body="b"),
        "topic": "news",
        "shard": 0,
    }
    return ExpandJob(**{**base, **changes})


def test_job_key_is_stable_per_page_and_distinct_across_pages():
    assert _job().job_key == _job().job_key
    keys = {_job().job_key, _job(shard=1).job_key, _job(cursor="DEV#x").job_key, _job(topic="other").job_key}
    assert len(keys) == 4


def test_jobs_round_trip_through_their_json_body():
    job = _job(cursor="DEV#abc", earlier_topics=["a"])
    assert fanout_job_adapter.validate_json(job.model_dump_json()) == job
    purge = PurgeAppJob(app_id="A", shard=3)
    assert fanout_job_adapter.validate_json(purge.model_dump_json()) == purge


class FlakySqs:
    """Stands in for SQS where moto cannot: it reports some entries of a SendMessageBatch as failed."""

    def __init__(self, failures_per_call: list[int]) -> None:
        self.failures_per_call = failures_per_call
        self.calls: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append([e["Id"] for e in Entries])
        fail = self.failures_per_call.pop(0) if self.failures_per_call else 0
        failed = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in Entries[:fail]]
        return {"Successful": [{"Id": e["Id"]} for e in Entries[fail:]], "Failed": failed}

    @property
    def client(self) -> "SQSClient":
        """This stand-in where send_jobs takes an SQS client (it calls send_message_batch only)."""
        return cast("SQSClient", self)


def test_send_jobs_resends_only_the_entries_sqs_failed():
    flaky = FlakySqs([2, 0])
    send_jobs("q", [_job(shard=i) for i in range(3)], client=flaky.client)
    assert flaky.calls == [["0", "1", "2"], ["0", "1"]]


def test_send_jobs_batches_by_ten():
    flaky = FlakySqs([])
    send_jobs("q", [_job(shard=i) for i in range(23)], client=flaky.client)
    assert [len(c) for c in flaky.calls] == [10, 10, 3]


def test_send_jobs_gives_up_with_a_retryable_error():
    flaky = FlakySqs([1, 1, 1, 1])
    with pytest.raises(ServiceUnavailable):
        send_jobs("q", [_job()], client=flaky.client)


def _batch(**changes: Any) -> DeliveryJob:
    base: dict[str, Any] = {
        "app_id": "A",
        "publication_id": "P",
        "created_at": 1,
        "content": MessageContent(body="b"),
        "targets": [],
        "origin": "o",
        "index": 0,
    }
    return DeliveryJob(**{**base, **changes})


def test_delivery_batch_keys_are_distinct_per_origin_and_index_down_a_chain():
    first = _batch(origin=_job().job_key, index=0)
    siblings = {_batch(origin=_job().job_key, index=i).job_key for i in range(3)}
    retry = _batch(origin=first.job_key, index=0, attempt=1)
    retry_of_retry = _batch(origin=retry.job_key, index=0, attempt=2)
    assert len(siblings | {retry.job_key, retry_of_retry.job_key, _job().job_key}) == 6
    assert _batch(origin="x", index=2, attempt=5).job_key == _batch(origin="x", index=2, attempt=5).job_key


def _web_push_target(n: int) -> Target:
    return Target(
        device_id=f"01JD{n:022d}",
        platform=Platform.WEBPUSH,
        token="https://updates.push.services.mozilla.com/wpush/v2/" + "x" * 200,
        push={"p256dh": "B" * 87, "auth": "A" * 22},
    )


def _apns_target(n: int) -> Target:
    return Target(device_id=f"01JD{n:022d}", platform=Platform.APNS, token=f"{n:064x}")


@pytest.mark.parametrize("make", [_web_push_target, _apns_target])
@pytest.mark.parametrize("limit", [256 * 1024, 1024 * 1024])
def test_packed_batches_fill_the_message_limit_without_crossing_it(make: Any, limit: int):
    targets = [make(n) for n in range(5000)]
    envelope = _batch(content=MessageContent(body="x" * 3000))
    batches = pack_targets(targets, envelope, limit)
    assert [t for batch in batches for t in batch] == targets  # all of them, in order, once
    sizes = [len(envelope.model_copy(update={"targets": b}).model_dump_json(exclude_none=True)) for b in batches]
    assert max(sizes) <= limit
    # Every batch but the last is packed to within one target (plus slack) of the limit.
    assert all(size > limit - 1024 for size in sizes[:-1])


def test_packing_refuses_content_that_leaves_no_room():
    with pytest.raises(ValueError, match="no room"):
        pack_targets([_apns_target(1)], _batch(content=MessageContent(body="x" * 20_000)), 16_384)


def test_send_jobs_keeps_each_call_under_the_size_limit():
    flaky = FlakySqs([])
    targets = [_apns_target(n) for n in range(20_000)]
    envelope = _batch()
    batches = [envelope.model_copy(update={"targets": b}) for b in pack_targets(targets, envelope, 64 * 1024)]
    send_jobs("q", batches, limit_bytes=64 * 1024, client=flaky.client)
    assert len(batches) > 10
    assert len(flaky.calls) == len(batches)  # each job is near the limit, so one per call
    with pytest.raises(ValueError, match="exceeds"):
        send_jobs("q", [envelope.model_copy(update={"targets": targets})], limit_bytes=64 * 1024, client=flaky.client)
