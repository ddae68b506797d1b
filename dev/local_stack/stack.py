"""Create a transformed SAM app as a CloudFormation stack in moto and read back what it made.

``deploy`` builds its boto3 clients when called, from a fresh session (so from
the environment), which makes the same code talk to moto's in-process
``mock_aws()`` and to a moto server (``AWS_ENDPOINT_URL``). A client built
before the mock started would go to real AWS.

With a DynamoDB Local endpoint, the template's tables are also created there,
under the names moto's CloudFormation gave them, so the functions' environments
(``TABLE_NAME``, ...) name the tables the handlers reach through
``AWS_ENDPOINT_URL_DYNAMODB``. moto's own copies stay, empty and unused.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import time
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from dev.local_stack.template import CODE_BUCKET, SamApp

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient

# Resource types the local stack provides itself instead of moto:
# - event source mappings: moto would run the function in Docker and eat the messages; poller.py does it.
# Kept although moto skips them (the gateway reads routes from the template): AWS::ApiGatewayV2::*,
# because outputs and permissions refer to the API and dropping it leaves dangling references.
_REPLACED_LOCALLY = frozenset({"AWS::Lambda::EventSourceMapping"})

_STACK_TIMEOUT_S = 60.0


class StackDeploymentError(RuntimeError):
    """The stack did not reach CREATE_COMPLETE."""


@dataclass
class DeployedStack:
    """What the stack created, by template logical id."""

    stack_name: str
    outputs: dict[str, str]
    physical_ids: dict[str, str]
    function_environments: dict[str, dict[str, str]]
    queue_urls: dict[str, str]
    queue_visibility_timeouts: dict[str, int]
    queue_arns: dict[str, str]
    function_names: dict[str, str]
    function_arns: dict[str, str]
    region: str
    dynamodb_endpoint: str | None = None  # DynamoDB Local's URL when it holds the tables, None for moto
    reserved_concurrency: dict[str, int] = field(default_factory=dict)  # functions that set one


def deploy(
    app: SamApp,
    parameters: Mapping[str, str],
    stack_name: str = "pushlane",
    *,
    dynamodb_endpoint: str | None = None,
) -> DeployedStack:
    """Create ``app`` as a stack with these parameter values and wait for CREATE_COMPLETE.

    Also does what moto's CloudFormation leaves out: the code objects the
    functions point at, and DynamoDB TimeToLiveSpecification. With
    ``dynamodb_endpoint`` (DynamoDB Local), the tables are created there too.
    """
    session = boto3.session.Session()
    template = copy.deepcopy(app.cloudformation)
    template["Resources"] = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") not in _REPLACED_LOCALLY
    }
    with _quiet_moto_cloudformation():
        _upload_placeholder_code(session, app)
        cloudformation = session.client("cloudformation")
        stack = _create_stack(cloudformation, stack_name, template, parameters)
        physical_ids = _physical_ids(cloudformation, stack_name)
    dynamodb = session.client("dynamodb", endpoint_url=dynamodb_endpoint)
    if dynamodb_endpoint:
        create_tables(dynamodb, template, physical_ids)
    apply_time_to_live(dynamodb, template, physical_ids)
    queue_urls, queue_arns, visibility = _queues(session, template, physical_ids)
    environments, names, arns, reserved = _functions(session, template, physical_ids)
    return DeployedStack(
        stack_name=stack_name,
        outputs={output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])},
        physical_ids=physical_ids,
        function_environments=environments,
        queue_urls=queue_urls,
        queue_visibility_timeouts=visibility,
        queue_arns=queue_arns,
        function_names=names,
        function_arns=arns,
        region=session.region_name or "us-east-1",
        dynamodb_endpoint=dynamodb_endpoint,
        reserved_concurrency=reserved,
    )


def _create_stack(
    cloudformation: CloudFormationClient,
    stack_name: str,
    template: dict[str, Any],
    parameters: Mapping[str, str],
) -> dict[str, Any]:
    try:
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
    except (ClientError, BotoCoreError) as error:
        raise StackDeploymentError(f"stack {stack_name} was not created: {error}") from error
    except Exception as error:  # in-process moto raises its own errors for resources it cannot build
        raise StackDeploymentError(
            f"stack {stack_name} was not created: moto failed with {type(error).__name__}: {error}"
        ) from error
    return _wait_for_stack(cloudformation, stack_name)


# Types moto's CloudFormation skips that have no local meaning: the gateway serves the HTTP API, and
# CloudWatch alarms watch AWS itself.
_SKIPPED_TYPES = ("AWS::ApiGatewayV2", "AWS::CloudWatch::Alarm")


class _SkippedHttpApiFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(kind in message for kind in _SKIPPED_TYPES)


@contextmanager
def _quiet_moto_cloudformation() -> Iterator[None]:
    """Silence moto's complaint, once per reference, that it skips the HTTP API and the alarms."""
    moto_logger = logging.getLogger("moto")
    log_filter = _SkippedHttpApiFilter()
    moto_logger.addFilter(log_filter)
    try:
        with warnings.catch_warnings():
            for kind in _SKIPPED_TYPES:
                warnings.filterwarnings("ignore", message=f"Tried to parse {kind}", category=UserWarning)
            yield
    finally:
        moto_logger.removeFilter(log_filter)


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "local_stack runs this code from its local folder, not from here.\n")
    return buffer.getvalue()


def _upload_placeholder_code(session: boto3.session.Session, app: SamApp) -> None:
    """Put an object at every placeholder code location: moto's Lambda reads it when creating functions."""
    s3 = session.client("s3")
    try:
        if s3.meta.region_name == "us-east-1":
            s3.create_bucket(Bucket=CODE_BUCKET)
        else:
            s3.create_bucket(
                Bucket=CODE_BUCKET,
                CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name},  # type: ignore[typeddict-item]
            )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    body = _placeholder_zip()
    for key in app.code_dirs:
        s3.put_object(Bucket=CODE_BUCKET, Key=key, Body=body)


def _wait_for_stack(cloudformation: CloudFormationClient, stack_name: str) -> dict[str, Any]:
    deadline = time.monotonic() + _STACK_TIMEOUT_S
    while True:
        stack: dict[str, Any] = dict(cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0])
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            return stack
        if not status.endswith("_IN_PROGRESS"):
            raise StackDeploymentError(
                f"stack {stack_name} is {status}: {_failure_reasons(cloudformation, stack_name)}"
            )
        if time.monotonic() > deadline:
            raise StackDeploymentError(f"stack {stack_name} still {status} after {_STACK_TIMEOUT_S:.0f} s")
        time.sleep(0.1)


def _failure_reasons(cloudformation: CloudFormationClient, stack_name: str) -> str:
    events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
    reasons = [
        f"{event['LogicalResourceId']} ({event.get('ResourceType', '?')}): "
        f"{event.get('ResourceStatusReason', 'no reason given')}"
        for event in events
        if event.get("ResourceStatus", "").endswith("_FAILED")
    ]
    return "; ".join(reasons) or "no failed resource reported"


def _physical_ids(cloudformation: CloudFormationClient, stack_name: str) -> dict[str, str]:
    physical_ids: dict[str, str] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for summary in page["StackResourceSummaries"]:
            physical_ids[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
    return physical_ids


def resources_of(template: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == kind:
            yield logical_id, resource.get("Properties", {})


# What CreateTable takes from a table's properties; SSE and point-in-time recovery have no local meaning.
_TABLE_PROPERTIES = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "ProvisionedThroughput",
)


def create_tables(dynamodb: DynamoDBClient, template: dict[str, Any], physical_ids: Mapping[str, str]) -> None:
    """Create each template table as CloudFormation would, under the physical name moto's CloudFormation gave it."""
    for logical_id, properties in resources_of(template, "AWS::DynamoDB::Table"):
        arguments = {name: properties[name] for name in _TABLE_PROPERTIES if name in properties}
        try:
            dynamodb.create_table(TableName=physical_ids[logical_id], **arguments)
        except ClientError as error:
            raise StackDeploymentError(f"table {logical_id} was not created: {error}") from error
        dynamodb.get_waiter("table_exists").wait(
            TableName=physical_ids[logical_id], WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )


def apply_time_to_live(dynamodb: DynamoDBClient, template: dict[str, Any], physical_ids: Mapping[str, str]) -> None:
    """Enable TTL as the template asks: moto's CloudFormation ignores TimeToLiveSpecification."""
    for logical_id, properties in resources_of(template, "AWS::DynamoDB::Table"):
        spec = properties.get("TimeToLiveSpecification")
        if spec and spec.get("Enabled") in (True, "true", "True"):
            dynamodb.update_time_to_live(
                TableName=physical_ids[logical_id],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec["AttributeName"]},
            )


def _queues(
    session: boto3.session.Session, template: dict[str, Any], physical_ids: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str], dict[str, int]]:
    sqs = session.client("sqs")
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    visibility: dict[str, int] = {}
    for logical_id, _ in resources_of(template, "AWS::SQS::Queue"):
        url = physical_ids[logical_id]  # a queue's physical id is its URL
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "VisibilityTimeout"])
        urls[logical_id] = url
        arns[logical_id] = attributes["Attributes"]["QueueArn"]
        visibility[logical_id] = int(attributes["Attributes"]["VisibilityTimeout"])
    return urls, arns, visibility


def _functions(
    session: boto3.session.Session, template: dict[str, Any], physical_ids: Mapping[str, str]
) -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, str], dict[str, int]]:
    lambda_client = session.client("lambda")
    environments: dict[str, dict[str, str]] = {}
    names: dict[str, str] = {}
    arns: dict[str, str] = {}
    reserved: dict[str, int] = {}
    for logical_id, _ in resources_of(template, "AWS::Lambda::Function"):
        configuration = lambda_client.get_function_configuration(FunctionName=physical_ids[logical_id])
        variables = configuration.get("Environment", {}).get("Variables", {})
        # Lambda hands every variable over as a string; moto keeps resolved numbers as numbers.
        environments[logical_id] = {key: str(value) for key, value in variables.items()}
        names[logical_id] = configuration["FunctionName"]
        arns[logical_id] = configuration["FunctionArn"]
        concurrency = lambda_client.get_function_concurrency(FunctionName=names[logical_id])
        if concurrency.get("ReservedConcurrentExecutions") is not None:
            reserved[logical_id] = int(concurrency["ReservedConcurrentExecutions"])
    return environments, names, arns, reserved
