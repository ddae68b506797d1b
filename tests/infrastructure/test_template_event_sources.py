"""SQS event sources on the real template: partial batch failures, dead-letter queues, visibility."""

from typing import Any

import pytest

from dev.local_stack.template import SamApp, SqsSource
from tests.infrastructure.conftest import real_app, real_template, resources_of

SOURCES = real_app().sqs_sources
SQS_EVENTS = [
    (function, name, event["Properties"])
    for function, properties in resources_of(real_template(), "AWS::Serverless::Function").items()
    for name, event in (properties.get("Events") or {}).items()
    if event["Type"] == "SQS"
]
SQS_DEFAULT_VISIBILITY_TIMEOUT_S = 30


def _queue(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return resources_of(template, "AWS::SQS::Queue")[logical_id]


def test_the_template_has_sqs_event_sources_to_check() -> None:
    assert SOURCES
    assert len(SQS_EVENTS) == len(SOURCES)


@pytest.mark.parametrize(("function", "event", "properties"), SQS_EVENTS, ids=lambda v: v if isinstance(v, str) else "")
def test_every_sqs_event_reports_batch_item_failures(function: str, event: str, properties: dict[str, Any]) -> None:
    assert "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []), f"{function}.{event}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.queue)
def test_every_event_source_queue_redrives_to_a_dead_letter_queue_after_at_least_5_receives(
    source: SqsSource, sam_template: dict[str, Any]
) -> None:
    policy = _queue(sam_template, source.queue).get("RedrivePolicy")

    assert policy is not None, f"{source.queue} has no RedrivePolicy"
    target = policy["deadLetterTargetArn"]
    assert isinstance(target, dict), "deadLetterTargetArn must be !GetAtt <queue in this template>.Arn"
    dead_letter, attribute = target["Fn::GetAtt"]
    assert attribute == "Arn"
    assert dead_letter in resources_of(sam_template, "AWS::SQS::Queue")
    assert dead_letter != source.queue
    assert int(policy["maxReceiveCount"]) >= 5


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.queue)
def test_every_event_source_queue_hides_messages_for_at_least_6_times_the_consumers_timeout(
    source: SqsSource, sam_app: SamApp, sam_template: dict[str, Any]
) -> None:
    visibility = int(_queue(sam_template, source.queue).get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY_TIMEOUT_S))
    timeout = sam_app.functions[source.function].timeout_s  # Globals applied

    assert visibility >= 6 * timeout, f"{source.queue}: {visibility} s < 6 x {source.function}'s {timeout} s"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.queue)
def test_batches_over_ten_messages_come_with_a_batching_window_as_lambda_requires(source: SqsSource) -> None:
    assert source.batch_size <= 10 or source.maximum_batching_window_s >= 1


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.queue)
def test_dead_letter_queues_keep_messages_longer_than_their_source_queue(
    source: SqsSource, sam_template: dict[str, Any]
) -> None:
    # A message keeps its original enqueue time when it moves to the DLQ: shorter retention there loses it.
    queue = _queue(sam_template, source.queue)
    dead_letter = _queue(sam_template, queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0])
    default_retention = 345600

    assert int(dead_letter.get("MessageRetentionPeriod", default_retention)) > int(
        queue.get("MessageRetentionPeriod", default_retention)
    )


def test_every_dead_letter_queue_has_an_alarm_on_visible_messages() -> None:
    resources = real_template()["Resources"]
    dead_letter_queues = {
        properties["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for properties in resources.values()
        if properties["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in properties.get("Properties", {})
    }
    alarmed = {
        dimension["Value"]["Fn::GetAtt"][0]
        for properties in resources.values()
        if properties["Type"] == "AWS::CloudWatch::Alarm"
        and properties["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and properties["Properties"].get("AlarmActions")
        for dimension in properties["Properties"]["Dimensions"]
    }
    assert dead_letter_queues
    assert dead_letter_queues <= alarmed
