"""SqsEventSourcePoller and drain: Lambda's SQS event source mapping, against moto's SQS."""

import base64
import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from dev.local_stack.poller import SqsEventSourcePoller, drain, event_source_pollers, failed_message_ids
from dev.local_stack.runtime import LocalFunction
from dev.local_stack.stack import DeployedStack
from dev.local_stack.template import FunctionSpec, SqsSource, load_sam_app

pytestmark = pytest.mark.usefixtures("aws")

Behaviour = Callable[[dict[str, Any]], Any]


class ScriptedFunction(LocalFunction):
    """A function whose invocation is a Python callable; records every event it gets."""

    def __init__(self, behaviour: Behaviour) -> None:
        super().__init__(FunctionSpec("Worker", Path("/nowhere"), "app.handler", 3, 128, ()))
        self.behaviour = behaviour
        self.events: list[dict[str, Any]] = []

    def invoke(self, event):
        self.events.append(event)
        return self.behaviour(event)


@dataclass
class Queue:
    name: str
    url: str
    arn: str


def make_queue(name: str, visibility_timeout: int = 1, dead_letter: Queue | None = None) -> Queue:
    sqs = boto3.client("sqs")
    attributes: dict[Any, str] = {"VisibilityTimeout": str(visibility_timeout)}
    if dead_letter:
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dead_letter.arn, "maxReceiveCount": 2})
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(name, url, arn)


def poller_for(
    queue: Queue, behaviour: Behaviour, *, batch_size: int = 10, report_failures: bool = True
) -> SqsEventSourcePoller:
    source = SqsSource("Worker", queue.name, batch_size, report_failures, 0)
    return SqsEventSourcePoller(source, queue.url, queue.arn, ScriptedFunction(behaviour))


def send(queue: Queue, *bodies: str) -> None:
    for body in bodies:
        boto3.client("sqs").send_message(QueueUrl=queue.url, MessageBody=body)


def counts(queue: Queue) -> tuple[int, int]:
    """(visible, in flight) messages."""
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def fail_bodies(*bodies: str) -> Behaviour:
    def behaviour(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]} for record in event["Records"] if record["body"] in bodies
            ]
        }

    return behaviour


def records(poller: SqsEventSourcePoller) -> list[dict[str, Any]]:
    function = poller.function
    assert isinstance(function, ScriptedFunction)
    return [record for event in function.events for record in event["Records"]]


@pytest.fixture
def dead_letter() -> Queue:
    return make_queue("jobs-dlq")


@pytest.fixture
def jobs(dead_letter: Queue) -> Queue:
    return make_queue("jobs", visibility_timeout=1, dead_letter=dead_letter)


def test_a_batch_arrives_as_a_lambda_sqs_event(jobs: Queue) -> None:
    boto3.client("sqs").send_message(
        QueueUrl=jobs.url,
        MessageBody='{"job": 1}',
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "expand"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    poller = poller_for(jobs, lambda event: None)

    assert poller.poll_once() == 1

    (record,) = records(poller)
    assert record["body"] == '{"job": 1}'
    assert record["md5OfBody"] == hashlib.md5(b'{"job": 1}').hexdigest()  # noqa: S324 (SQS's own checksum)
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == jobs.arn
    assert record["awsRegion"] == "us-east-1"
    assert record["receiptHandle"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "expand",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert base64.b64decode(record["messageAttributes"]["blob"]["binaryValue"]) == b"\x00\x01"
    assert "md5OfMessageAttributes" in record


def test_a_successful_batch_is_deleted(jobs: Queue) -> None:
    send(jobs, "a", "b")

    poller_for(jobs, lambda event: {"batchItemFailures": []}).poll_once()

    assert counts(jobs) == (0, 0)


def test_a_partial_batch_failure_deletes_only_successes_and_failures_reappear_after_visibility_timeout(
    jobs: Queue,
) -> None:
    send(jobs, "a", "b", "c")
    poller = poller_for(jobs, fail_bodies("b"))

    poller.poll_once()

    assert counts(jobs) == (0, 1)
    assert poller.poll_once() == 0  # still invisible
    time.sleep(1.2)
    assert poller.poll_once() == 1
    retried = records(poller)[-1]
    assert (retried["body"], retried["attributes"]["ApproximateReceiveCount"]) == ("b", "2")


def test_a_message_that_keeps_failing_moves_to_the_dead_letter_queue_after_max_receive_count(
    jobs: Queue, dead_letter: Queue
) -> None:
    send(jobs, "poison", "fine")
    poller = poller_for(jobs, fail_bodies("poison"))

    drain([poller], timeout_s=10)

    assert counts(jobs) == (0, 0)
    assert counts(dead_letter) == (1, 0)
    poison_receives = [r["attributes"]["ApproximateReceiveCount"] for r in records(poller) if r["body"] == "poison"]
    assert poison_receives == ["1", "2"]


def test_each_failed_job_gets_a_console_line_and_the_one_bound_for_the_dead_letter_queue_says_so(
    jobs: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dev.local_stack.poller")
    send(jobs, "poison")
    poller = poller_for(jobs, fail_bodies("poison"))

    drain([poller], timeout_s=10)

    lines = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(lines) == 2
    assert lines[0].startswith("job failed: Worker message ")
    assert lines[0].endswith("from jobs (receive 1 of 2); retried after the visibility timeout")
    assert lines[1].startswith("JOB FAILED for good: Worker message ")
    assert lines[1].endswith(
        "from jobs failed its last receive (2 of 2); SQS moves it to the dead-letter queue jobs-dlq"
    )


def test_several_batches_run_side_by_side_up_to_the_pollers_concurrency(jobs: Queue) -> None:
    inside = {"now": 0, "most": 0}
    lock = threading.Lock()

    def slow(event: dict[str, Any]) -> None:
        with lock:
            inside["now"] += 1
            inside["most"] = max(inside["most"], inside["now"])
        time.sleep(0.3)
        with lock:
            inside["now"] -= 1

    source = SqsSource("Worker", jobs.name, 1, True, 0)
    poller = SqsEventSourcePoller(source, jobs.url, jobs.arn, ScriptedFunction(slow), concurrency=3)
    send(jobs, *[f"job-{number}" for number in range(9)])
    poller.start()
    try:
        deadline = time.monotonic() + 10
        while len(records(poller)) < 9 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()

    assert len(records(poller)) == 9
    assert inside["most"] == 3


def test_a_handler_that_raises_fails_the_whole_batch_and_every_message_is_retried(
    jobs: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    send(jobs, "a", "b")
    calls = []

    def behaviour(event: dict[str, Any]) -> None:
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("database down")

    poller = poller_for(jobs, behaviour)

    poller.poll_once()
    assert counts(jobs) == (0, 2)
    assert "database down" in caplog.text
    time.sleep(1.2)
    poller.poll_once()

    assert calls == [2, 2]
    assert counts(jobs) == (0, 0)


def test_an_invalid_batch_response_fails_the_whole_batch(jobs: Queue) -> None:
    send(jobs, "a", "b")

    poller_for(jobs, lambda event: {"batchItemFailures": [{"itemIdentifier": "no-such-message"}]}).poll_once()

    assert counts(jobs) == (0, 2)


def test_without_report_batch_item_failures_a_returned_failure_list_is_ignored(jobs: Queue) -> None:
    send(jobs, "a", "b")

    poller_for(jobs, fail_bodies("a", "b"), report_failures=False).poll_once()

    assert counts(jobs) == (0, 0)


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"unrelated": 1}],
)
def test_responses_lambda_reads_as_complete_success(response: Any) -> None:
    assert failed_message_ids(response, ["m1", "m2"]) == set()


@pytest.mark.parametrize(
    "response",
    [
        "not a dict",
        {"batchItemFailures": "m1"},
        {"batchItemFailures": [{"itemIdentifier": "unknown"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemId": "m1"}]},
        {"batchItemFailures": ["m1"]},
    ],
)
def test_responses_lambda_reads_as_complete_failure(response: Any) -> None:
    assert failed_message_ids(response, ["m1", "m2"]) == {"m1", "m2"}


def test_the_listed_failures_are_the_failed_messages() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "m2"}]}

    assert failed_message_ids(response, ["m1", "m2", "m3"]) == {"m2"}


def test_a_batch_holds_at_most_batch_size_messages(jobs: Queue) -> None:
    send(jobs, *[str(n) for n in range(7)])
    poller = poller_for(jobs, lambda event: None, batch_size=5)

    assert poller.poll_once() == 5
    assert poller.poll_once() == 2
    function = poller.function
    assert isinstance(function, ScriptedFunction)
    assert [len(event["Records"]) for event in function.events] == [5, 2]


def test_a_batch_size_over_ten_is_gathered_from_several_receives_into_one_invocation(jobs: Queue) -> None:
    send(jobs, *[str(n) for n in range(15)])
    poller = poller_for(jobs, lambda event: None, batch_size=12)

    assert poller.poll_once() == 12

    function = poller.function
    assert isinstance(function, ScriptedFunction)
    assert len(function.events) == 1
    assert len({r["messageId"] for r in records(poller)}) == 12


def test_drain_runs_chained_work_across_queues_until_all_are_empty(jobs: Queue) -> None:
    results = make_queue("results")
    seen: list[str] = []

    def expand(event: dict[str, Any]) -> None:
        for record in event["Records"]:
            if record["body"].count(".") < 2:  # each job spawns two children, two levels deep
                send(jobs, record["body"] + ".0", record["body"] + ".1")
            send(results, record["body"])

    def collect(event: dict[str, Any]) -> None:
        seen.extend(record["body"] for record in event["Records"])

    send(jobs, "j")

    drain([poller_for(jobs, expand), poller_for(results, collect)], timeout_s=10)

    assert sorted(seen) == sorted(["j", "j.0", "j.1", "j.0.0", "j.0.1", "j.1.0", "j.1.1"])
    assert counts(jobs) == counts(results) == (0, 0)


def test_drain_gives_up_after_its_timeout_and_names_the_busy_queue(dead_letter: Queue) -> None:
    stuck = make_queue("stuck", visibility_timeout=30)
    send(stuck, "poison")

    with pytest.raises(TimeoutError, match=r"stuck \(1 in flight\)"):
        drain([poller_for(stuck, fail_bodies("poison"))], timeout_s=0.5)


def test_a_started_poller_works_in_the_background_and_stops_promptly(jobs: Queue) -> None:
    poller = poller_for(jobs, lambda event: None)
    poller.start()
    try:
        send(jobs, "background")
        deadline = time.monotonic() + 5
        while not records(poller) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        started = time.monotonic()
        poller.stop()
        stop_seconds = time.monotonic() - started

    assert [r["body"] for r in records(poller)] == ["background"]
    assert stop_seconds < 2.5
    assert counts(jobs) == (0, 0)


@pytest.mark.parametrize(
    ("scaling", "limit", "default", "expected"),
    [
        (None, 4, 2, 2),  # the local default caps a function that may run more environments
        (None, 1, 2, 1),  # never more than the function's own limit
        (3, 4, 2, 3),  # the event's ScalingConfig.MaximumConcurrency wins over the default
        (8, 4, 2, 4),  # ...and the function's limit over both
        (None, 4, None, 4),  # no cap given: the function's limit
    ],
)
def test_a_pollers_batches_in_flight_are_capped_by_scaling_config_else_the_local_default(
    tiny_app_dir: Path, scaling: int | None, limit: int, default: int | None, expected: int
) -> None:
    app = load_sam_app(tiny_app_dir / "template.yaml")
    (source,) = app.sqs_sources
    app = dataclasses.replace(app, sqs_sources=[dataclasses.replace(source, maximum_concurrency=scaling)])
    stack = DeployedStack(
        stack_name="tiny",
        outputs={},
        physical_ids={},
        function_environments={},
        queue_urls={source.queue: "http://127.0.0.1:1/123456789012/jobs"},
        queue_visibility_timeouts={},
        queue_arns={source.queue: "arn:aws:sqs:us-east-1:123456789012:jobs"},
        function_names={},
        function_arns={},
        region="us-east-1",
    )

    (poller,) = event_source_pollers(
        app, stack, {source.function: ScriptedFunction(lambda event: {})}, {source.function: limit}, default
    )

    assert poller.concurrency == expected
