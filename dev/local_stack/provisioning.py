"""The running stack's AWS resources, made from CloudFormation's reading of the template in a process of its own.

moto's CloudFormation imports every service it can build (EC2, RDS, ... ~110 MB resident) the first time it
is used, and a process keeps what it imported. The local stack only needs SQS and DynamoDB from that
deployment, so the template is deployed by ``stack.deploy`` in a child process, on an in-process moto that
ends with it; that child reports what CloudFormation made (physical names, resolved variables, each queue's
attributes). The stack's long-lived moto server (and DynamoDB Local) then get the same queues and tables,
under the same names: queue ARNs agree (same account, region and name), queue URLs are the server's own,
and every value that named a child's queue URL (function variables, outputs) names the server's instead.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from dev.local_stack.stack import (
    DeployedStack,
    StackDeploymentError,
    apply_time_to_live,
    create_tables,
    deploy,
    resources_of,
)
from dev.local_stack.template import REPO_ROOT, SamApp

DEPLOY_TIMEOUT_S = 120.0
# What get_queue_attributes reports that create_queue does not take: counts, stamps, the ARN.
_READ_ONLY_QUEUE_ATTRIBUTES = frozenset(
    {
        "QueueArn",
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
        "CreatedTimestamp",
        "LastModifiedTimestamp",
    }
)


@dataclasses.dataclass
class Deployment:
    """What the child's CloudFormation made: the stack, and each queue's attributes by logical id."""

    stack: DeployedStack
    queue_attributes: dict[str, dict[str, str]]


def provision(
    app: SamApp, parameters: Mapping[str, str], stack_name: str, *, dynamodb_endpoint: str | None = None
) -> DeployedStack:
    """Deploy ``app`` in a child process, then make its queues and tables here (AWS_ENDPOINT_URL's moto).

    With ``dynamodb_endpoint`` (DynamoDB Local) the tables go there, else to moto. Raises
    StackDeploymentError when the template does not deploy or a resource cannot be made.
    """
    if not os.environ.get("AWS_ENDPOINT_URL"):  # boto3 would otherwise make them in whatever account it finds
        raise StackDeploymentError("no local AWS endpoint (AWS_ENDPOINT_URL) to make the stack's resources in")
    deployment = deploy_in_child(app, parameters, stack_name)
    session = boto3.session.Session()
    urls = _create_queues(session.client("sqs"), deployment)
    template = app.cloudformation
    dynamodb = session.client("dynamodb", endpoint_url=dynamodb_endpoint)
    try:
        create_tables(dynamodb, template, deployment.stack.physical_ids)
        apply_time_to_live(dynamodb, template, deployment.stack.physical_ids)
    except (ClientError, BotoCoreError) as error:
        raise StackDeploymentError(f"the tables of {stack_name} were not made: {error}") from error
    return _with_queue_urls(deployment.stack, urls, dynamodb_endpoint)


def deploy_in_child(app: SamApp, parameters: Mapping[str, str], stack_name: str) -> Deployment:
    """``stack.deploy`` on a throwaway in-process moto in ``python -m dev.local_stack.provisioning``."""
    # The child is our own interpreter running our own module; pickle is its native tongue and trusted here.
    request = pickle.dumps((app, dict(parameters), stack_name))
    # The child's moto intercepts AWS's own endpoints only: an endpoint URL would send it to the real server.
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_ENDPOINT_URL")}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dev.local_stack.provisioning"],
            input=request,
            capture_output=True,
            env=environment,
            cwd=REPO_ROOT,
            timeout=DEPLOY_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise StackDeploymentError(f"deploying {stack_name} took over {DEPLOY_TIMEOUT_S:.0f} s") from error
    if done.returncode != 0:
        raise StackDeploymentError(done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}")
    deployment = pickle.loads(done.stdout)  # noqa: S301 - our own child's answer
    if not isinstance(deployment, Deployment):
        raise StackDeploymentError(f"the deploying process answered {type(deployment).__name__}")
    return deployment


def _create_queues(sqs: Any, deployment: Deployment) -> dict[str, str]:
    """Each queue under its name with its attributes, dead-letter queues first; the child's URL -> this URL."""
    stack = deployment.stack
    urls: dict[str, str] = {}
    # A RedrivePolicy names its dead-letter queue by ARN, which must exist first.
    ordered = sorted(deployment.queue_attributes.items(), key=lambda item: "RedrivePolicy" in item[1])
    for logical_id, attributes in ordered:
        child_url = stack.queue_urls[logical_id]
        settable = {name: value for name, value in attributes.items() if name not in _READ_ONLY_QUEUE_ATTRIBUTES}
        try:
            created = sqs.create_queue(QueueName=child_url.rsplit("/", 1)[1], Attributes=settable)
        except (ClientError, BotoCoreError) as error:
            raise StackDeploymentError(f"queue {logical_id} was not made: {error}") from error
        urls[child_url] = created["QueueUrl"]
    return urls


def _with_queue_urls(stack: DeployedStack, urls: Mapping[str, str], dynamodb_endpoint: str | None) -> DeployedStack:
    def here(value: str) -> str:
        return urls.get(value, value)

    return dataclasses.replace(
        stack,
        outputs={key: here(value) for key, value in stack.outputs.items()},
        physical_ids={key: here(value) for key, value in stack.physical_ids.items()},
        function_environments={
            logical_id: {name: here(value) for name, value in variables.items()}
            for logical_id, variables in stack.function_environments.items()
        },
        queue_urls={key: here(value) for key, value in stack.queue_urls.items()},
        dynamodb_endpoint=dynamodb_endpoint,
    )


def _deploy_here(app: SamApp, parameters: Mapping[str, str], stack_name: str) -> Deployment:
    from moto import mock_aws

    with mock_aws():
        stack = deploy(app, parameters, stack_name)
        sqs = boto3.client("sqs")
        attributes: dict[str, dict[str, str]] = {
            logical_id: {
                str(name): value
                for name, value in sqs.get_queue_attributes(
                    QueueUrl=stack.queue_urls[logical_id], AttributeNames=["All"]
                )["Attributes"].items()
            }
            for logical_id, _ in resources_of(app.cloudformation, "AWS::SQS::Queue")
        }
    return Deployment(stack, attributes)


def main() -> int:
    app, parameters, stack_name = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - from our own parent
    try:
        deployment = _deploy_here(app, parameters, stack_name)
    except StackDeploymentError as error:
        print(error, file=sys.stderr)
        return 1
    sys.stdout.buffer.write(pickle.dumps(deployment))
    return 0


if __name__ == "__main__":
    from dev.local_stack import provisioning  # under its own name, so the Deployment it pickles is importable

    sys.exit(provisioning.main())
