"""`python -m dev.local_stack` as a child process: what the end-to-end suite and the local-stack bench drive.

Starts the stack on free loopback ports, waits for its ready line and quickstart, keeps its output, and
stops it with Ctrl-C as a user would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from dev.local_stack.template import REPO_ROOT

READY = re.compile(r"^pushlane is listening on (http://\S+)$")
START_TIMEOUT_S = 60


class StackStartError(RuntimeError):
    """The stack exited or did not print its ready line in time; the message holds its output."""


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
        if not match:
            raise StackStartError("no admin key in the stack's output:\n" + self.output)
        return match.group(1)

    @property
    def emulator_files(self) -> Path:
        """The folder of ready-made credential and device bodies for the provider emulators."""
        match = re.search(r"-d @(\S+)/\$platform\.json", self.output)
        if not match:
            raise StackStartError("the stack started without its provider emulators:\n" + self.output)
        return Path(match.group(1))


def _pump(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


def start_stack(*parameters: str, options: tuple[str, ...] = (), keep_output: bool = True) -> RunningStack:
    """`python -m dev.local_stack` on free loopback ports with these template parameters (NAME=VALUE), once ready.

    options are further command-line options (``--dynamodb moto``); keep_output=False drops the console
    lines after the quickstart (a long bench would otherwise hold every one of them).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    overrides = [arg for parameter in parameters for arg in ("--parameter", parameter)]
    command = [sys.executable, "-m", "dev.local_stack", "--host", "127.0.0.1", "--port", "0", "--moto-port", "0"]
    process = subprocess.Popen(  # noqa: S603 - our own module
        [*command, *options, *overrides],
        cwd=REPO_ROOT,
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
            raise StackStartError("local stack did not start:\n" + running.output + "\n".join(running.stderr))
        for line in list(running.lines):
            if match := READY.match(line):
                running.url = match.group(1)
        time.sleep(0.05)
    # The quickstart follows the ready line; wait until it is all there.
    while not any(line.startswith("# DynamoDB:") for line in running.lines):
        if time.monotonic() > deadline:
            raise StackStartError("the quickstart did not follow the ready line:\n" + running.output)
        time.sleep(0.05)
    if not keep_output:
        threading.Thread(target=_drop_output, args=(running,), daemon=True).start()
    return running


def _drop_output(running: RunningStack) -> None:
    kept = len(running.lines)
    while running.process.poll() is None:
        time.sleep(1)
        del running.lines[kept:]
        del running.stderr[:-200]


def stop_stack(running: RunningStack, timeout_s: float = 20) -> None:
    """Ctrl-C, as a user stops it."""
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGINT)
        running.process.wait(timeout=timeout_s)
