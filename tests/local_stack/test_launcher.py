"""launcher: the whole local stack against a moto server, in this process."""

import os
import socket
import time
from pathlib import Path

import boto3
import pytest
import requests

from dev.local_stack import launcher
from dev.local_stack.template import load_sam_app

pytestmark = pytest.mark.usefixtures("process_state")


def test_the_fake_environment_removes_every_route_to_a_real_account() -> None:
    environ = {
        "AWS_PROFILE": "prod",
        "AWS_SESSION_TOKEN": "t",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://elsewhere",
        "AWS_ACCESS_KEY_ID": "AKIAREAL",
        "HOME": "/home/me",
        "POWERTOOLS_TRACE_DISABLED": "false",
    }

    launcher.use_fake_aws_environment(environ)

    assert environ == {
        "HOME": "/home/me",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }


def test_a_port_someone_listens_on_is_not_free_and_port_zero_always_is() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        assert not launcher.port_is_free("127.0.0.1", port)
    assert launcher.port_is_free("127.0.0.1", 0)


def test_the_started_stack_serves_http_runs_queued_work_in_the_background_and_stops(
    tiny_app_dir: Path,
) -> None:
    # Given the tiny app started against a moto server
    launcher.use_fake_aws_environment()
    app = load_sam_app(tiny_app_dir / "template.yaml")
    stack = launcher.start(app, {}, host="127.0.0.1", port=0, moto_port=0, stack_name="tiny")
    try:
        # When an item is created over HTTP
        created = requests.post(f"{stack.url}/items", json={"id": "i1"}, timeout=10)

        # Then the background poller has the worker finish it, in moto's server
        table = boto3.resource("dynamodb", endpoint_url=stack.moto_url).Table(stack.stack.physical_ids["Table"])
        deadline = time.monotonic() + 10
        while table.get_item(Key={"pk": "i1"})["Item"]["state"] != "done" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert created.status_code == 201
        assert table.get_item(Key={"pk": "i1"})["Item"]["state"] == "done"
        assert os.environ["AWS_ENDPOINT_URL"] == stack.moto_url
        assert stack.moto_url.startswith("http://127.0.0.1:")
    finally:
        stack.stop()

    # And once stopped, nothing listens any more
    for url in (stack.url, stack.moto_url):
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)
    assert not any(poller.running for poller in stack.pollers)
