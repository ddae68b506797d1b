from typing import Any

import pytest

from push_core import queueing
from push_core.errors import ServiceUnavailable
from push_core.models import MessageContent
from push_core.queueing import ExpandJob, PurgeAppJob, fanout_job_adapter, send_jobs


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


def test_send_jobs_resends_only_the_entries_sqs_failed(monkeypatch: pytest.MonkeyPatch):
    flaky = FlakySqs([2, 0])
    monkeypatch.setattr(queueing, "sqs_client", lambda: flaky)
    send_jobs("q", [_job(shard=i) for i in range(3)])
    assert flaky.calls == [["0", "1", "2"], ["0", "1"]]


def test_send_jobs_batches_by_ten(monkeypatch: pytest.MonkeyPatch):
    flaky = FlakySqs([])
    monkeypatch.setattr(queueing, "sqs_client", lambda: flaky)
    send_jobs("q", [_job(shard=i) for i in range(23)])
    assert [len(c) for c in flaky.calls] == [10, 10, 3]


def test_send_jobs_gives_up_with_a_retryable_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(queueing, "sqs_client", lambda: FlakySqs([1, 1, 1, 1]))
    with pytest.raises(ServiceUnavailable):
        send_jobs("q", [_job()])


def test_retry_jobs_have_distinct_keys_per_parent_attempt_and_chunk():
    parent = _job()
    children = {_job(topic=None, retry_of=parent.job_key, attempt=1, chunk=c).job_key for c in range(3)}
    grandchild = _job(topic=None, retry_of=_job(topic=None, retry_of=parent.job_key, attempt=1).job_key, attempt=2)
    assert len(children | {grandchild.job_key, parent.job_key}) == 5


def test_a_full_page_of_web_push_retries_fits_in_sqs_messages():
    from push_core.fanout import RETRY_TARGETS_PER_JOB
    from push_core.models import Platform, Target

    target = Target(
        device_id="01JD0000000000000000000000",
        platform=Platform.WEBPUSH,
        token="https://updates.push.services.mozilla.com/wpush/v2/" + "x" * 200,
        push={"p256dh": "B" * 87, "auth": "A" * 22},
    )
    job = _job(topic=None, targets=[target] * RETRY_TARGETS_PER_JOB, retry_of="k", attempt=1)
    assert len(job.model_dump_json().encode()) < 256 * 1024 / 2
