"""What a Lambda SQS event source mapping does, for a function in-process or in execution environments.

Receive a batch, invoke the function with an ``aws:sqs`` event, delete what
succeeded. Nothing is retried here: a message that is not deleted becomes
visible again after the queue's visibility timeout, and the queue's redrive
policy moves it to the dead-letter queue after maxReceiveCount receives (moto
enforces both), exactly as on AWS. Each failed message gets a console line,
and a louder one when it has used its last receive and is bound for the DLQ.

A background poller runs ``concurrency`` batches side by side, as the event
source mapping invokes the function concurrently (up to its limit).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from dev.local_stack.environments import InvocationError
from dev.local_stack.runtime import FunctionTimeoutError, Invocable
from dev.local_stack.template import SamApp, SqsSource

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeFilterType
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef

    from dev.local_stack.stack import DeployedStack

logger = logging.getLogger(__name__)

_MAX_RECEIVE = 10  # SQS's ReceiveMessage limit
_MAX_WAIT_S = 20  # SQS's long-poll limit
# The system attributes Lambda copies into a record's "attributes".
_RECORD_ATTRIBUTES = frozenset(
    {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
        "SequenceNumber",
        "MessageGroupId",
        "MessageDeduplicationId",
        "AWSTraceHeader",
        "DeadLetterQueueSourceArn",
    }
)
_IN_FLIGHT_COUNTS: tuple[QueueAttributeFilterType, ...] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def _lambda_message_attribute(value: MessageAttributeValueOutputTypeDef) -> dict[str, Any]:
    """SQS's MessageAttributeValue in the camel-case shape Lambda events use (binary as base64)."""
    attribute: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return attribute


def sqs_record(message: MessageTypeDef, queue_arn: str) -> dict[str, Any]:
    """One record of a Lambda SQS event, built from a ReceiveMessage result."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            name: value for name, value in message.get("Attributes", {}).items() if name in _RECORD_ATTRIBUTES
        },
        "messageAttributes": {
            name: _lambda_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(response: Any, message_ids: Sequence[str]) -> set[str]:
    """The messages a ReportBatchItemFailures response says failed; all of them if it is invalid.

    Lambda's rules: no response, an empty one or an empty list means success;
    an item without a known message id, or a response of the wrong shape, fails
    the whole batch.
    """
    everything = set(message_ids)
    if response is None:
        return set()
    if not isinstance(response, dict):
        return everything
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return everything
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in everything:
            return everything
        failed.add(identifier)
    return failed


class SqsEventSourcePoller:
    """Feeds one queue to one function, on demand (``poll_once``) or from a background thread."""

    def __init__(
        self,
        source: SqsSource,
        queue_url: str,
        queue_arn: str,
        function: Invocable,
        sqs_client: SQSClient | None = None,
        *,
        wait_seconds: int = 1,
        concurrency: int = 1,
    ) -> None:
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function = function
        # Built here rather than per call: clients are thread-safe, the default session is not.
        self.sqs: SQSClient = sqs_client or boto3.client("sqs")
        self.wait_seconds = wait_seconds
        self.concurrency = concurrency
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # moto's SQS is not thread-safe within a queue (a receive iterates the in-flight set that another
        # receive or delete changes: "Set changed size during iteration"), so this poller's threads take
        # turns at the queue; only their invocations overlap.
        self._queue_turn = threading.Lock()
        self._redrive: tuple[int, str] | None = None
        self._redrive_read = False

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive one batch, invoke the function, delete what succeeded. Returns how many were received."""
        messages = self._receive_batch(wait_seconds)
        if not messages:
            return 0
        ids = [message["MessageId"] for message in messages]
        try:
            response = self.function.invoke({"Records": [sqs_record(message, self.queue_arn) for message in messages]})
        except (InvocationError, FunctionTimeoutError) as error:  # an environment logs its own traceback
            logger.error(
                "%s failed a batch of %d from %s: %s", self.source.function, len(ids), self.source.queue, error
            )
            self._report_failures(messages)
            return len(messages)
        except Exception:  # Lambda counts any failed invocation as a failed batch; the traceback is the log
            logger.exception("%s failed a batch of %d from %s", self.source.function, len(ids), self.source.queue)
            self._report_failures(messages)
            return len(messages)
        failed = failed_message_ids(response, ids) if self.source.report_batch_item_failures else set()
        if failed:
            logger.info("%s failed %d of %d messages", self.source.function, len(failed), len(ids))
            self._report_failures([message for message in messages if message["MessageId"] in failed])
        self._delete([message for message in messages if message["MessageId"] not in failed])
        return len(messages)

    def _redrive_policy(self) -> tuple[int, str] | None:
        """(maxReceiveCount, dead-letter queue name) of this queue, None without a redrive policy."""
        if not self._redrive_read:
            attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"])
            policy = attributes.get("Attributes", {}).get("RedrivePolicy")
            if policy:
                parsed = json.loads(policy)
                self._redrive = int(parsed["maxReceiveCount"]), str(parsed["deadLetterTargetArn"]).rpartition(":")[2]
            self._redrive_read = True
        return self._redrive

    def _report_failures(self, messages: Sequence[MessageTypeDef]) -> None:
        """One console line per failed job: retried after the visibility timeout, or bound for the DLQ."""
        redrive = self._redrive_policy()
        for message in messages:
            receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            if redrive is not None and receives >= redrive[0]:
                logger.error(
                    "JOB FAILED for good: %s message %s from %s failed its last receive (%d of %d); "
                    "SQS moves it to the dead-letter queue %s",
                    self.source.function,
                    message["MessageId"],
                    self.source.queue,
                    receives,
                    redrive[0],
                    redrive[1],
                )
            else:
                limit = f" of {redrive[0]}" if redrive else ""
                logger.warning(
                    "job failed: %s message %s from %s (receive %d%s); retried after the visibility timeout",
                    self.source.function,
                    message["MessageId"],
                    self.source.queue,
                    receives,
                    limit,
                )

    def _receive(self, count: int, wait_seconds: int) -> list[MessageTypeDef]:
        with self._queue_turn:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=count,
                WaitTimeSeconds=wait_seconds,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        return list(response.get("Messages", []))

    def _receive_batch(self, wait_seconds: int) -> list[MessageTypeDef]:
        """Up to batch_size messages, waiting at most the batching window for a fuller batch."""
        batch = self._receive(min(self.source.batch_size, _MAX_RECEIVE), min(wait_seconds, _MAX_WAIT_S))
        deadline = time.monotonic() + self.source.maximum_batching_window_s
        while batch and len(batch) < self.source.batch_size:
            window_left = deadline - time.monotonic()
            more = self._receive(
                min(self.source.batch_size - len(batch), _MAX_RECEIVE),
                min(math.ceil(window_left), _MAX_WAIT_S) if window_left > 0 else 0,
            )
            if not more and window_left <= 0:
                break
            batch.extend(more)
        return batch

    def _delete(self, messages: Sequence[MessageTypeDef]) -> None:
        for start in range(0, len(messages), _MAX_RECEIVE):
            chunk = messages[start : start + _MAX_RECEIVE]
            with self._queue_turn:
                result = self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(chunk)],
                )
            for failure in result.get("Failed", []):
                logger.warning("could not delete a message from %s: %s", self.source.queue, failure)

    def in_flight(self) -> int:
        """Messages in the queue that are visible, being processed, or delayed."""
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=list(_IN_FLIGHT_COUNTS))
        counts = {str(name): value for name, value in attributes["Attributes"].items()}
        return sum(int(counts.get(name, "0")) for name in _IN_FLIGHT_COUNTS)

    def start(self) -> None:
        """Poll in ``concurrency`` background threads until ``stop``."""
        if self._threads:
            return
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run, name=f"poller-{self.source.queue}-{number}", daemon=True)
            for number in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def running(self) -> bool:
        """Whether a background thread is polling."""
        return any(thread.is_alive() for thread in self._threads)

    def request_stop(self) -> None:
        """Ask the background threads to stop after their current poll, without waiting."""
        self._stop.set()

    def stop(self) -> None:
        """Stop the background threads and wait for them (at most one long-poll plus one invocation)."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads = []

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(self.wait_seconds)
            except (BotoCoreError, ClientError):  # the event source mapping keeps polling through SQS errors
                logger.exception("polling %s failed; retrying in 1 s", self.source.queue)
                self._stop.wait(1.0)


def stop_all(pollers: Sequence[SqsEventSourcePoller]) -> None:
    """Stop several background pollers at once (their long-polls end together)."""
    for poller in pollers:
        poller.request_stop()
    for poller in pollers:
        poller.stop()


def drain(pollers: Sequence[SqsEventSourcePoller], timeout_s: float = 30.0, settle_s: float = 0.1) -> None:
    """Poll until every poller's queue is empty, counting messages in flight and delayed.

    Empty must hold on two looks ``settle_s`` apart, so work a handler queued
    on its way out is not missed. Messages a handler failed keep the queue busy
    until they reappear (after the visibility timeout) and succeed or move to
    the dead-letter queue. Raises TimeoutError naming the queues still busy.
    """
    deadline = time.monotonic() + timeout_s
    empty_since: float | None = None
    while True:
        received = sum(poller.poll_once(0) for poller in pollers)
        busy = {poller.source.queue: count for poller in pollers if (count := poller.in_flight())}
        now = time.monotonic()
        if busy or received:
            empty_since = None
        elif empty_since is None:
            empty_since = now
        elif now - empty_since >= settle_s:
            return
        if now > deadline:
            described = ", ".join(f"{queue} ({count} in flight)" for queue, count in busy.items())
            raise TimeoutError(
                f"queues still busy after {timeout_s:g} s: {described or 'none left, but still receiving'}"
            )
        if not received:
            time.sleep(0.05)


def event_source_pollers(
    app: SamApp,
    stack: DeployedStack,
    functions: Mapping[str, Invocable],
    concurrency: Mapping[str, int] = {},
    maximum_concurrency: int | None = None,
) -> list[SqsEventSourcePoller]:
    """One poller per SQS event source of the template, against the deployed queues.

    ``concurrency`` is how many batches a function's poller may run side by side (1 when not given),
    capped by the event's ScalingConfig.MaximumConcurrency, else by ``maximum_concurrency`` when given.
    """
    pollers = []
    for source in app.sqs_sources:
        limit = concurrency.get(source.function, 1)
        cap = source.maximum_concurrency or maximum_concurrency
        pollers.append(
            SqsEventSourcePoller(
                source,
                stack.queue_urls[source.queue],
                stack.queue_arns[source.queue],
                functions[source.function],
                concurrency=min(limit, cap) if cap else limit,
            )
        )
    return pollers
