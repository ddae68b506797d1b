"""deploy(): pushlane's real template.yaml, created in moto as CloudFormation would create it."""

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dev.local_stack.stack import DeployedStack, deploy
from dev.local_stack.template import REPO_ROOT, SamApp, load_sam_app
from tests.local_stack.conftest import use_fake_aws

ADMIN_KEY_SHA256 = "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[SamApp, DeployedStack]]:
    """The real template deployed once for this module (about a second and a half)."""
    with pytest.MonkeyPatch.context() as patch:
        use_fake_aws(patch)
        with mock_aws():
            app = load_sam_app(REPO_ROOT / "template.yaml", {"AdminKeySha256": ADMIN_KEY_SHA256})
            yield app, deploy(app, {"AdminKeySha256": ADMIN_KEY_SHA256})


def resources_of(app: SamApp, kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in app.template["Resources"].items()
        if resource["Type"] == kind
    }


def test_every_table_is_created_with_the_time_to_live_the_template_asks_for(
    deployed: tuple[SamApp, DeployedStack],
) -> None:
    app, stack = deployed
    dynamodb = boto3.client("dynamodb")
    tables = resources_of(app, "AWS::DynamoDB::Table")

    assert set(tables) == {"Table", "IdempotencyTable"}
    for logical_id, properties in tables.items():
        ttl = dynamodb.describe_time_to_live(TableName=stack.physical_ids[logical_id])["TimeToLiveDescription"]
        assert ttl == {
            "TimeToLiveStatus": "ENABLED",
            "AttributeName": properties["TimeToLiveSpecification"]["AttributeName"],
        }


def test_every_queue_is_created_with_its_redrive_policy_to_its_dead_letter_queue(
    deployed: tuple[SamApp, DeployedStack],
) -> None:
    app, stack = deployed
    sqs = boto3.client("sqs")
    queues = resources_of(app, "AWS::SQS::Queue")

    assert set(stack.queue_urls) == set(queues)
    for logical_id, properties in queues.items():
        attributes = sqs.get_queue_attributes(QueueUrl=stack.queue_urls[logical_id], AttributeNames=["All"])
        expected = properties.get("RedrivePolicy")
        if expected is None:
            assert "RedrivePolicy" not in attributes["Attributes"]
            continue
        policy = json.loads(attributes["Attributes"]["RedrivePolicy"])
        dead_letter = expected["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert policy == {
            "deadLetterTargetArn": stack.queue_arns[dead_letter],
            "maxReceiveCount": expected["maxReceiveCount"],
        }


def test_queue_visibility_timeouts_are_the_templates(deployed: tuple[SamApp, DeployedStack]) -> None:
    app, stack = deployed

    for logical_id, properties in resources_of(app, "AWS::SQS::Queue").items():
        assert stack.queue_visibility_timeouts[logical_id] == properties.get("VisibilityTimeout", 30)


def test_function_environments_resolve_to_the_created_resources_as_strings(
    deployed: tuple[SamApp, DeployedStack],
) -> None:
    app, stack = deployed

    assert set(stack.function_environments) == set(app.functions)
    for environment in stack.function_environments.values():
        assert environment["TABLE_NAME"] == stack.physical_ids["Table"]
        assert environment["IDEMPOTENCY_TABLE_NAME"] == stack.physical_ids["IdempotencyTable"]
        assert environment["FANOUT_QUEUE_URL"] == stack.queue_urls["FanoutQueue"]
        assert environment["FEEDBACK_QUEUE_URL"] == stack.queue_urls["FeedbackQueue"]
        assert environment["ADMIN_KEY_SHA256"] == ADMIN_KEY_SHA256
        assert environment["TOPIC_SHARDS"] == "4"
        assert all(isinstance(value, str) for value in environment.values())


def test_outputs_name_the_created_resources(deployed: tuple[SamApp, DeployedStack]) -> None:
    _, stack = deployed

    assert stack.outputs["TableName"] == stack.physical_ids["Table"]
    assert stack.outputs["FanoutQueueUrl"] == stack.queue_urls["FanoutQueue"]


def test_every_function_is_created_and_no_event_source_mapping_is(
    deployed: tuple[SamApp, DeployedStack],
) -> None:
    app, stack = deployed
    lambda_client = boto3.client("lambda")

    for logical_id in app.functions:
        assert stack.function_arns[logical_id].endswith(f":function:{stack.function_names[logical_id]}")
    # moto would run mapped functions in Docker and swallow the messages: the pollers do that job.
    assert lambda_client.list_event_source_mappings()["EventSourceMappings"] == []
