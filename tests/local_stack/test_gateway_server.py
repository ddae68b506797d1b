"""serve(): the gateway over real sockets."""

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from dev.local_stack.gateway import MAX_REQUEST_BYTES, Gateway, RunningServer, serve
from dev.local_stack.launcher import port_is_free
from dev.local_stack.runtime import LocalFunction
from dev.local_stack.template import FunctionSpec, HttpRoute

SLOW = """
import time

def handler(event, context):
    time.sleep(1.0)
    return {"slow": True}
"""
FAST = """
def handler(event, context):
    return {"fast": True}
"""


@pytest.fixture
def server(make_spec: Callable[..., FunctionSpec], process_state: None) -> Iterator[RunningServer]:
    functions = {
        "Slow": LocalFunction(make_spec("Slow", SLOW)),
        "Fast": LocalFunction(make_spec("Fast", FAST)),
    }
    routes = [HttpRoute("GET", "/slow", "Slow"), HttpRoute("ANY", "/fast", "Fast")]
    running = serve(Gateway(routes, functions), "127.0.0.1", 0)
    yield running
    running.shutdown()


def test_port_zero_picks_a_free_port_and_the_url_names_it(server: RunningServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert requests.get(f"{server.url}/fast", timeout=5).json() == {"fast": True}


def test_a_slow_request_does_not_hold_up_others(server: RunningServer) -> None:
    slow_result: list[int] = []
    slow = threading.Thread(
        target=lambda: slow_result.append(requests.get(f"{server.url}/slow", timeout=10).status_code)
    )
    slow.start()
    time.sleep(0.2)  # the slow request is in its handler now

    started = time.monotonic()
    fast = requests.get(f"{server.url}/fast", timeout=5)
    fast_seconds = time.monotonic() - started
    slow.join()

    assert fast.status_code == 200
    assert fast_seconds < 0.5
    assert slow_result == [200]


def test_an_oversized_upload_gets_413_over_a_real_connection(server: RunningServer) -> None:
    response = requests.post(
        f"{server.url}/fast",
        data=b"x" * (MAX_REQUEST_BYTES + 1),
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )

    assert response.status_code == 413


def test_shutdown_releases_the_port(make_spec: Callable[..., FunctionSpec], process_state: None) -> None:
    running = serve(Gateway([], {}), "127.0.0.1", 0)
    port = running.port
    assert not port_is_free("127.0.0.1", port)

    running.shutdown()

    assert port_is_free("127.0.0.1", port)


def test_serving_on_a_port_in_use_fails_at_once_with_os_error(server: RunningServer) -> None:
    with pytest.raises(OSError, match="in use"):
        serve(Gateway([], {}), "127.0.0.1", server.port)
