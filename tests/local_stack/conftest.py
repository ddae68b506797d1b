"""Fixtures for the local stack's own tests: fake AWS, moto, process-state hygiene, a tiny SAM app."""

import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from dev.local_stack import dynamodb_local
from dev.local_stack.environments import EnvironmentConfig, FunctionEnvironments, environment_variables
from dev.local_stack.template import FunctionSpec

needs_dynamodb_local = pytest.mark.skipif(
    dynamodb_local.find_java() is None or dynamodb_local.find_jar() is None,
    reason="DynamoDB Local needs java and the jar (make installs it with npm)",
)

TINY_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Greeting:
    Type: String
    Default: hello
  WorkerTimeout:
    Type: Number
    Default: 4
Globals:
  Function:
    Runtime: python3.13
    Handler: app.handler
    Timeout: 5
    MemorySize: 256
    Layers:
      - !Ref SharedLayer
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        JOBS_QUEUE_URL: !Ref JobsQueue
        GREETING: !Ref Greeting
Resources:
  SharedLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/shared/
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
  JobsDeadLetterQueue:
    Type: AWS::SQS::Queue
  JobsQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt JobsDeadLetterQueue.Arn
        maxReceiveCount: 2
  ApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/api/
      Events:
        GetItem: {Type: HttpApi, Properties: {Path: "/items/{item_id}", Method: get}}
        CreateItem: {Type: HttpApi, Properties: {Path: /items, Method: POST}}
        Anything: {Type: HttpApi, Properties: {Path: "/{proxy+}", Method: ANY}}
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker/
      Timeout: !Ref WorkerTimeout
      MemorySize: 1024
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt JobsQueue.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 3
Outputs:
  TableName:
    Value: !Ref Table
"""

SHARED_LAYER = """
def shout(text):
    return text.upper()
"""

# Stores POSTed items and queues a job per item; echoes GETs; anything else is the handler's own 404.
API_HANDLER = """
import json
import os

import boto3
import shared_lib


def handler(event, context):
    if event["routeKey"] == "POST /items":
        item = json.loads(event["body"])
        boto3.client("dynamodb").put_item(
            TableName=os.environ["TABLE_NAME"], Item={"pk": {"S": item["id"]}, "state": {"S": "new"}}
        )
        boto3.client("sqs").send_message(QueueUrl=os.environ["JOBS_QUEUE_URL"], MessageBody=item["id"])
        return {"statusCode": 201, "body": json.dumps({"id": item["id"]})}
    if event["routeKey"] == "GET /items/{item_id}":
        greeting = shared_lib.shout(os.environ["GREETING"])
        return {"greeting": greeting, "item": event["pathParameters"]["item_id"], "fn": context.function_name}
    return {"statusCode": 404, "body": json.dumps({"error": "handler says no"})}
"""

# Marks each job's item done; a job whose body is "poison" fails, alone.
WORKER_HANDLER = """
import os

import boto3


def handler(event, context):
    failures = []
    for record in event["Records"]:
        if record["body"] == "poison":
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        boto3.client("dynamodb").update_item(
            TableName=os.environ["TABLE_NAME"],
            Key={"pk": {"S": record["body"]}},
            UpdateExpression="SET #s = :done",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":done": {"S": "done"}},
        )
    return {"batchItemFailures": failures}
"""


def use_fake_aws(patch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, no endpoint, profile or config file of the developer's."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(name)
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    patch.setenv("AWS_REGION", "us-east-1")
    patch.setenv("AWS_CONFIG_FILE", os.devnull)
    patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may reach a real AWS account or a developer's profile."""
    use_fake_aws(monkeypatch)


@pytest.fixture
def aws() -> Iterator[None]:
    """moto, in-process, for the duration of one test."""
    with mock_aws():
        yield


@pytest.fixture
def process_state(tmp_path: Path) -> Iterator[None]:
    """Put back os.environ, sys.path and sys.modules, which loading handlers changes process-wide."""
    environ = dict(os.environ)
    path = list(sys.path)
    modules = set(sys.modules)
    yield
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if str(getattr(sys.modules[name], "__file__", "")).startswith(str(tmp_path)):
            del sys.modules[name]


def write(path: Path, text: str) -> Path:
    """Write dedented text, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.fixture
def tiny_app_dir(tmp_path: Path) -> Path:
    """A SAM app of pushlane's shape: layer, table, queue with DLQ, an HTTP function, an SQS worker."""
    write(tmp_path / "template.yaml", TINY_TEMPLATE)
    write(tmp_path / "layers" / "shared" / "shared_lib.py", SHARED_LAYER)
    write(tmp_path / "functions" / "api" / "app.py", API_HANDLER)
    write(tmp_path / "functions" / "worker" / "app.py", WORKER_HANDLER)
    return tmp_path


@pytest.fixture
def make_spec(tmp_path: Path) -> Callable[..., FunctionSpec]:
    """A FunctionSpec for a handler written from source into its own folder under tmp_path."""

    def make(
        logical_id: str,
        source: str,
        *,
        timeout_s: int = 3,
        memory_mb: int = 128,
        layer_dirs: tuple[Path, ...] = (),
    ) -> FunctionSpec:
        code_dir = tmp_path / "functions" / logical_id
        write(code_dir / "app.py", source)
        return FunctionSpec(
            logical_id=logical_id,
            code_dir=code_dir,
            handler="app.handler",
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            layer_dirs=layer_dirs,
        )

    return make


def config_for(spec: FunctionSpec, variables: dict[str, str] | None = None) -> EnvironmentConfig:
    """A function's environment settings as a stack named "stack" would give them, with these variables."""
    return EnvironmentConfig(
        spec=spec,
        function_name=f"stack-{spec.logical_id}",
        function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:stack-{spec.logical_id}",
        log_group_name=f"/aws/lambda/stack-{spec.logical_id}",
        variables=environment_variables(variables or {}, {}),
    )


def forked(pool: FunctionEnvironments) -> list[bool]:
    """Whether each live environment of the pool was forked by the zygote."""
    return [environment["forked"] for environment in pool.describe()["environments"]]
