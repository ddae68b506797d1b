"""provision(): template.yaml deployed by CloudFormation in a child process, its queues and tables made in the
stack's own moto server, and every value that named the child's queues naming the server's."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from dev.local_stack import launcher
from dev.local_stack.provisioning import provision
from dev.local_stack.stack import DeployedStack, StackDeploymentError, resources_of
from dev.local_stack.template import REPO_ROOT, SamApp, load_sam_app
from tests.local_stack.conftest import use_fake_aws

PARAMETERS = {"AdminKeySha256": "0123456789abcdef" * 4}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ThreadedMotoServer, str]]:
    with pytest.MonkeyPatch.context() as patch:
        use_fake_aws(patch)
        patch.setenv("AWS_ENDPOINT_URL", "restored-after-the-module")  # start_moto sets it for the module
        moto, url = launcher.start_moto()
        try:
            yield moto, url
        finally:
            moto.stop()


@pytest.fixture(scope="module")
def provisioned(server: tuple[ThreadedMotoServer, str]) -> tuple[SamApp, DeployedStack]:
    app = load_sam_app(REPO_ROOT / "template.yaml", PARAMETERS)
    return app, provision(app, PARAMETERS, "provisioned")


def template_resources(app: SamApp, kind: str) -> dict[str, dict[str, Any]]:
    return dict(resources_of(app.template, kind))


def test_the_queues_are_the_servers_with_the_attributes_the_template_gives_them(
    server: tuple[ThreadedMotoServer, str], provisioned: tuple[SamApp, DeployedStack]
) -> None:
    _, url = server
    app, stack = provisioned
    sqs = boto3.client("sqs", endpoint_url=url)
    queues = template_resources(app, "AWS::SQS::Queue")

    assert set(stack.queue_urls) == set(queues)
    for logical_id, properties in queues.items():
        assert stack.queue_urls[logical_id].startswith(url + "/")
        attributes = sqs.get_queue_attributes(QueueUrl=stack.queue_urls[logical_id], AttributeNames=["All"])[
            "Attributes"
        ]
        assert attributes["QueueArn"] == stack.queue_arns[logical_id]
        assert int(attributes["VisibilityTimeout"]) == stack.queue_visibility_timeouts[logical_id]
        if "MessageRetentionPeriod" in properties:
            assert int(attributes["MessageRetentionPeriod"]) == int(properties["MessageRetentionPeriod"])
        redrive = properties.get("RedrivePolicy")
        if redrive:  # the dead-letter queue it names exists here, by the ARN CloudFormation resolved
            dead_letter = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
            assert f'"deadLetterTargetArn": "{stack.queue_arns[dead_letter]}"' in attributes["RedrivePolicy"]
    assert any("RedrivePolicy" in properties for properties in queues.values())


def test_every_value_that_named_a_queue_names_the_servers(
    server: tuple[ThreadedMotoServer, str], provisioned: tuple[SamApp, DeployedStack]
) -> None:
    _, url = server
    _, stack = provisioned
    values = [*stack.outputs.values(), *stack.physical_ids.values()]
    values += [value for variables in stack.function_environments.values() for value in variables.values()]

    child_queues = [value for value in values if "sqs.us-east-1.amazonaws.com" in value]
    assert not child_queues  # nothing names the child's queues any more
    queue_variables = {
        value
        for variables in stack.function_environments.values()
        for name, value in variables.items()
        if name.endswith("_QUEUE_URL")
    }
    assert queue_variables
    assert queue_variables <= set(stack.queue_urls.values())
    assert all(value.startswith(url) for value in queue_variables)


def test_the_tables_are_made_with_their_keys_and_time_to_live(
    server: tuple[ThreadedMotoServer, str], provisioned: tuple[SamApp, DeployedStack]
) -> None:
    _, url = server
    app, stack = provisioned
    dynamodb = boto3.client("dynamodb", endpoint_url=url)

    for logical_id, properties in template_resources(app, "AWS::DynamoDB::Table").items():
        table = dynamodb.describe_table(TableName=stack.physical_ids[logical_id])["Table"]
        assert table["KeySchema"] == properties["KeySchema"]
        ttl = dynamodb.describe_time_to_live(TableName=stack.physical_ids[logical_id])["TimeToLiveDescription"]
        assert ttl.get("AttributeName") == properties["TimeToLiveSpecification"]["AttributeName"]


def test_a_template_cloudformation_refuses_is_reported_with_its_reason(
    server: tuple[ThreadedMotoServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", server[1])
    broken = load_sam_app(REPO_ROOT / "template.yaml", PARAMETERS)
    missing = {"deadLetterTargetArn": {"Fn::GetAtt": ["NoSuchQueue", "Arn"]}, "maxReceiveCount": 1}
    broken.cloudformation["Resources"]["Broken"] = {"Type": "AWS::SQS::Queue", "Properties": {"RedrivePolicy": missing}}

    with pytest.raises(StackDeploymentError) as raised:
        provision(broken, PARAMETERS, "broken")

    assert "NoSuchQueue" in str(raised.value), str(raised.value)


def test_without_a_local_endpoint_nothing_is_made_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    app = load_sam_app(REPO_ROOT / "template.yaml", PARAMETERS)

    with pytest.raises(StackDeploymentError, match="no local AWS endpoint"):
        provision(app, PARAMETERS, "nowhere")
