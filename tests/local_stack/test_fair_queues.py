"""The local stack's fair queues: pushlane's jobs carry their app as MessageGroupId, and a noisy app's
backlog does not stand between a quiet app and the consumer (as on an SQS fair queue)."""

from collections.abc import Iterator

import boto3
import pytest

from dev.local_stack import fair_queues
from push_core.pipeline import jobs
from push_core.pipeline.jobs import PurgeAppJob, send_jobs


@pytest.fixture
def queue(aws: None) -> Iterator[str]:
    fair_queues.install()
    jobs.sqs_client.cache_clear()
    yield boto3.client("sqs").create_queue(QueueName="jobs")["QueueUrl"]
    jobs.sqs_client.cache_clear()


def _receive(url: str, count: int = 1) -> list[str]:
    reply = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=count)
    return [message["Body"] for message in reply.get("Messages", [])]


def test_each_job_is_sent_in_its_apps_message_group(queue: str):
    send_jobs(queue, [PurgeAppJob(app_id="APP-A", shard=0), PurgeAppJob(app_id="APP-B", shard=0)])

    reply = boto3.client("sqs").receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, MessageSystemAttributeNames=["MessageGroupId"]
    )

    assert sorted(m["Attributes"]["MessageGroupId"] for m in reply["Messages"]) == ["APP-A", "APP-B"]


def test_a_quiet_apps_job_is_received_before_a_noisy_apps_backlog(queue: str):
    send_jobs(queue, [PurgeAppJob(app_id="NOISY", shard=n) for n in range(50)])
    send_jobs(queue, [PurgeAppJob(app_id="QUIET", shard=0)])

    [first] = _receive(queue)

    assert '"app_id":"QUIET"' in first


def test_apps_take_turns_and_each_apps_jobs_stay_oldest_first(queue: str):
    send_jobs(queue, [PurgeAppJob(app_id="A", shard=n) for n in range(3)])
    send_jobs(queue, [PurgeAppJob(app_id="B", shard=n) for n in range(2)])

    received = [PurgeAppJob.model_validate_json(body) for body in _receive(queue, 5)]

    assert [(job.app_id, job.shard) for job in received] == [("B", 0), ("A", 0), ("B", 1), ("A", 1), ("A", 2)]
