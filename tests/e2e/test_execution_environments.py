"""`python -m dev.local_stack` runs every function in execution environments of its own, and shows their metrics."""

import threading
import time
from typing import Any

import requests

from tests.e2e.conftest import Api, RunningStack


def _inbox_device(http: Api, app: dict[str, str]) -> tuple[str, str]:
    body = http.call("POST", "/v1/devices", app["public"], json={"platform": "inbox"}).json()
    return body["device"]["id"], body["device_key"]


def _long_polls(url: str, devices: list[tuple[str, str]], wait: int) -> list[requests.Response]:
    """Every device long-polls at once, each on its own connection."""
    answers: list[Any] = [None] * len(devices)

    def poll(index: int, device_id: str, key: str) -> None:
        with requests.Session() as session:
            session.trust_env = False
            answers[index] = session.get(
                f"{url}/v1/devices/{device_id}/messages?wait={wait}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )

    threads = [threading.Thread(target=poll, args=(i, *device)) for i, device in enumerate(devices)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_two_devices_long_polls_overlap_instead_of_queueing(http: Api):
    # Given two devices and two warm environments of the poll function
    app = http.new_app()
    devices = [_inbox_device(http, app), _inbox_device(http, app)]
    _long_polls(http.url, devices, wait=1)

    # When both long-poll 3 s at once
    started = time.monotonic()
    answers = _long_polls(http.url, devices, wait=3)
    took = time.monotonic() - started

    # Then both answer after about one wait, not two
    assert [answer.status_code for answer in answers] == [200, 200]
    assert [answer.json()["messages"] for answer in answers] == [[], []]
    assert took < 4.5


def test_a_publications_delivery_metrics_are_served_and_summed_up_on_the_console(http: Api, stack: RunningStack):
    # Given an inbox device subscribed to a topic
    app = http.new_app()
    device_id, device_key = _inbox_device(http, app)
    assert http.call("PUT", f"/v1/devices/{device_id}/topics/news", device_key).status_code == 201

    # When a message is published to it and completes
    message_id = http.call("POST", "/v1/messages", app["secret"], json={"topics": ["news"], "body": "m"}).json()["id"]
    deadline = time.monotonic() + 20
    while http.call("GET", f"/v1/messages/{message_id}", app["secret"]).json()["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.2)

    # Then Powertools' Deliveries metric is totalled at /_local/metrics and was summed up on the console
    deadline = time.monotonic() + 5
    while True:
        metrics = http.call("GET", "/_local/metrics").json()["metrics"]
        deliveries = [m for m in metrics if m["name"] == "Deliveries"]
        if deliveries or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert deliveries
    assert deliveries[0]["namespace"] == "Pushlane"
    assert deliveries[0]["dimensions"] == {"service": "pushlane"}
    assert deliveries[0]["total"] >= 1
    assert any(" metrics: Deliveries=" in line for line in stack.stderr)


def test_the_environments_are_listed_with_their_memory(http: Api):
    http.call("GET", "/v1/openapi.json")

    functions = http.call("GET", "/_local/environments").json()["functions"]

    assert set(functions) >= {"RegistryFunction", "PollFunction", "DeliverFunction"}
    assert all(pool["limit"] == 4 and pool["reserved"] is False for pool in functions.values())
    registry = functions["RegistryFunction"]["environments"]
    assert registry
    assert all(environment["rss_kb"] > 10_000 for environment in registry)
