"""The pieces together in one process: a tiny SAM app deployed in mock_aws, served, its queue drained."""

import json
from pathlib import Path

import boto3
import pytest
from werkzeug.test import Client

from dev.local_stack.gateway import Gateway
from dev.local_stack.poller import drain, event_source_pollers
from dev.local_stack.runtime import load_functions
from dev.local_stack.stack import StackDeploymentError, deploy
from dev.local_stack.template import load_sam_app
from tests.local_stack.conftest import TINY_TEMPLATE, write

pytestmark = pytest.mark.usefixtures("aws", "process_state")


def test_a_request_fans_out_through_the_queue_to_the_worker_and_a_poison_job_ends_in_the_dead_letter_queue(
    tiny_app_dir: Path,
) -> None:
    # Given the tiny app deployed, its handlers loaded, its gateway and its poller
    app = load_sam_app(tiny_app_dir / "template.yaml")
    stack = deploy(app, {}, stack_name="tiny")
    functions = load_functions(app, stack)
    client = Client(Gateway(app.routes, functions))
    pollers = event_source_pollers(app, stack, functions)

    # When two items are created over HTTP and the queue is drained
    created = [client.post("/items", json={"id": item_id}) for item_id in ("i1", "poison")]
    drain(pollers, timeout_s=15)

    # Then the worker finished the good one, and the poison job went to the DLQ untouched
    assert [response.status_code for response in created] == [201, 201]
    table = boto3.resource("dynamodb").Table(stack.physical_ids["Table"])
    assert table.get_item(Key={"pk": "i1"})["Item"]["state"] == "done"
    assert table.get_item(Key={"pk": "poison"})["Item"]["state"] == "new"
    dead = boto3.client("sqs").receive_message(QueueUrl=stack.queue_urls["JobsDeadLetterQueue"])["Messages"]
    assert [message["Body"] for message in dead] == ["poison"]


def test_handlers_see_the_deployed_environment_their_layer_and_their_deployed_name(
    tiny_app_dir: Path,
) -> None:
    app = load_sam_app(tiny_app_dir / "template.yaml", {"Greeting": "hi there"})
    stack = deploy(app, {"Greeting": "hi there"}, stack_name="tiny")
    client = Client(Gateway(app.routes, load_functions(app, stack)))

    response = client.get("/items/i%201")

    assert response.json == {"greeting": "HI THERE", "item": "i 1", "fn": stack.function_names["ApiFunction"]}


def test_unrouted_paths_reach_the_catch_all_function_and_its_own_404(tiny_app_dir: Path) -> None:
    app = load_sam_app(tiny_app_dir / "template.yaml")
    stack = deploy(app, {}, stack_name="tiny")
    client = Client(Gateway(app.routes, load_functions(app, stack)))

    response = client.patch("/anything/else")

    assert response.status_code == 404
    assert json.loads(response.get_data()) == {"error": "handler says no"}


def test_a_stack_moto_cannot_create_fails_with_the_reason(tiny_app_dir: Path) -> None:
    broken = TINY_TEMPLATE.replace(
        "deadLetterTargetArn: !GetAtt JobsDeadLetterQueue.Arn", "deadLetterTargetArn: !GetAtt Nowhere.Arn"
    )
    write(tiny_app_dir / "template.yaml", broken)
    app = load_sam_app(tiny_app_dir / "template.yaml")

    with pytest.raises(StackDeploymentError, match=r"stack tiny was not created: .*undefined resource Nowhere"):
        deploy(app, {}, stack_name="tiny")
