"""moto_memory: moto's SQS forgets old deletions instead of remembering every one for good."""

import boto3
import pytest
from moto.sqs.models import Message, sqs_backends

from dev.local_stack import moto_memory


@pytest.mark.usefixtures("aws")
def test_a_queue_remembers_only_the_most_recent_deletions(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the bound installed (as the launcher does), at 5 handles, and a queue
    monkeypatch.setattr(moto_memory, "RECENT_DELETIONS", 5)
    moto_memory.install()
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="bounded")["QueueUrl"]

    # When 12 messages are sent, received and deleted
    handles = []
    for n in range(12):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
        (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        handles.append(message["ReceiptHandle"])

    # Then the queue keeps the last 5 handles only; deleting the latest again is still no error, as on AWS
    queue = sqs_backends["123456789012"]["us-east-1"].queues["bounded"]
    assert len(queue.deleted_messages) == 5
    assert handles[-1] in queue.deleted_messages
    assert handles[0] not in queue.deleted_messages
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handles[-1])


@pytest.mark.usefixtures("aws")
def test_messages_sent_received_and_deleted_are_not_kept_alive_by_moto() -> None:
    # Given the patch installed, and a queue
    moto_memory.install()
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="untracked")["QueueUrl"]
    tracked_before = len(Message.instances_tracked)  # type: ignore[attr-defined]

    # When 20 messages go through it
    for n in range(20):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
        (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    # Then moto's instance tracking holds none of them (unpatched, it holds every message and every copy)
    assert len(Message.instances_tracked) == tracked_before  # type: ignore[attr-defined]
