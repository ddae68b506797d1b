"""The end-to-end suite starts the real local stack (`python -m local_stack`, what `make run` runs)
as a separate process on free loopback ports and drives it over HTTP."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r"^pushlane is listening on (http://\S+)$")
START_TIMEOUT_S = 60


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def quickstart(self) -> str:
        """The quickstart block exactly as printed, from its first line to its last."""
        start = next(i for i, line in enumerate(self.lines) if line.startswith("# pushlane quickstart"))
        end = next(i for i, line in enumerate(self.lines) if line.startswith("# The whole API"))
        return "\n".join(self.lines[start : end + 1]) + "\n"

    @property
    def admin_key(self) -> str:
        match = re.search(r"^export ADMIN_KEY=(\S+)$", self.output, re.MULTILINE)
        assert match, self.output
        return match.group(1)


def _pump(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


def start_stack(*parameters: str) -> RunningStack:
    """`python -m local_stack` on free loopback ports with these template parameters (NAME=VALUE), once ready."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    overrides = [arg for parameter in parameters for arg in ("--parameter", parameter)]
    process = subprocess.Popen(
        [sys.executable, "-m", "local_stack", "--host", "127.0.0.1", "--port", "0", "--moto-port", "0", *overrides],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = RunningStack(process)
    assert process.stdout is not None
    assert process.stderr is not None
    threading.Thread(target=_pump, args=(process.stdout, running.lines), daemon=True).start()
    threading.Thread(target=_pump, args=(process.stderr, running.stderr), daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not running.url:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("local stack did not start:\n" + running.output + "\n".join(running.stderr))
        for line in list(running.lines):
            if match := READY.match(line):
                running.url = match.group(1)
        time.sleep(0.05)
    # The quickstart follows the ready line; wait until it is all there.
    while not any(line.startswith("# The whole API") for line in running.lines):
        assert time.monotonic() < deadline, running.output
        time.sleep(0.05)
    return running


def stop_stack(running: RunningStack, timeout_s: float = 20) -> None:
    """Ctrl-C, as a user stops it."""
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGINT)
        running.process.wait(timeout=timeout_s)


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
