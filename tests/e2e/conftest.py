"""The end-to-end suite starts the real local stack (`python -m dev.local_stack`, what `make run` runs)
as a separate process on free loopback ports and drives it over HTTP."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from dev.local_stack.running_stack import RunningStack, StackStartError, stop_stack
from dev.local_stack.running_stack import start_stack as _start_stack

__all__ = ["Api", "RunningStack", "start_stack", "stop_stack"]


def start_stack(*parameters: str, options: tuple[str, ...] = ()) -> RunningStack:
    """The stack as a child process (dev.local_stack.running_stack); a start that fails fails the test."""
    try:
        return _start_stack(*parameters, options=options)
    except StackStartError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    running = start_stack()
    yield running
    stop_stack(running)


@pytest.fixture
def http(stack: RunningStack) -> Iterator["Api"]:
    with requests.Session() as session:
        session.trust_env = False  # loopback only, whatever proxy the machine has configured
        yield Api(stack.url, session, stack.admin_key)


@dataclass
class Api:
    url: str
    session: requests.Session
    admin_key: str

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return self.session.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def new_app(self) -> dict[str, str]:
        body = self.call("POST", "/v1/apps", self.admin_key, json={"name": "e2e"}).json()
        return {
            "id": body["app"]["id"],
            "secret": body["secret_key"]["key"],
            "public": body["public_key"]["key"],
        }
