"""python -m dev.local_stack: start, print the ready line, serve, stop cleanly on a signal."""

import io
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dev.local_stack.__main__ import main
from dev.local_stack.template import REPO_ROOT

READY = re.compile(r"^pushlane is listening on (http://127\.0\.0\.1:\d+)$", re.MULTILINE)


class WatchedOutput(io.StringIO):
    """stdout that says when the ready line has been printed."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if READY.search(self.getvalue()):
            self.ready.set()
        return written


@pytest.fixture
def logging_levels() -> Iterator[None]:
    """main() configures logging for a terminal; put the levels back for the other tests."""
    loggers = [logging.getLogger(name) for name in ("dev.local_stack", "werkzeug")]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.mark.usefixtures("process_state", "logging_levels")
def test_main_prints_the_ready_line_serves_and_exits_zero_on_sigterm(
    tiny_app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = WatchedOutput()
    monkeypatch.setattr(sys, "stdout", output)
    previous_handler = signal.getsignal(signal.SIGTERM)
    seen: dict[str, object] = {}

    def client() -> None:
        if output.ready.wait(30):
            base_url = READY.search(output.getvalue()).group(1)  # type: ignore[union-attr]
            seen["item"] = requests.get(f"{base_url}/items/i1", timeout=10).json()
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=client)
    thread.start()
    code = main(["--port", "0", "--moto-port", "0", "--template", str(tiny_app_dir / "template.yaml")])
    thread.join()

    printed = output.getvalue()
    assert code == 0
    assert printed.startswith("pushlane is listening on http://127.0.0.1:")
    base_url = READY.search(printed).group(1)  # type: ignore[union-attr]
    # The real quickstart, with the real admin key made by the layer's own code.
    assert f"export PUSHLANE={base_url}" in printed
    assert re.search(r"^export ADMIN_KEY=pl_admin_[0-9a-f]{40}$", printed, re.MULTILINE)
    assert "# 8. Phones, browsers and webhooks" not in printed  # the tiny template has no provider parameters
    assert re.search(r"^# moto \(the local AWS\) is listening on http://127\.0\.0\.1:\d+$", printed, re.MULTILINE)
    item = seen["item"]
    assert isinstance(item, dict)
    assert (item["greeting"], item["item"]) == ("HELLO", "i1")
    assert item["fn"].startswith("pushlane-ApiFunction-")
    assert signal.getsignal(signal.SIGTERM) is previous_handler


@pytest.mark.usefixtures("process_state", "logging_levels")
def test_a_burst_of_stop_signals_stops_the_stack_instead_of_hanging_it(
    tiny_app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C pressed twice, or a SIGINT that a wrapper (timeout, a shell) forwards as well: the signals can
    # interrupt each other's handler, which once deadlocked the stack on its own stop Event's lock.
    output = WatchedOutput()
    monkeypatch.setattr(sys, "stdout", output)

    sent: list[float] = []

    def burst() -> None:
        if output.ready.wait(30):
            sent.append(time.monotonic())
            for number in range(50):
                os.kill(os.getpid(), signal.SIGINT if number % 2 else signal.SIGTERM)

    thread = threading.Thread(target=burst)
    thread.start()
    code = main(["--port", "0", "--moto-port", "0", "--template", str(tiny_app_dir / "template.yaml")])
    stopped = time.monotonic()
    thread.join()

    assert code == 0
    assert stopped - sent[0] < 15  # stopped, not stuck until something else gave way (~50 s before the fix)
    assert output.getvalue().startswith("pushlane is listening on http://127.0.0.1:")


@pytest.mark.usefixtures("process_state", "logging_levels")
def test_main_refuses_a_port_in_use_with_one_clear_line_and_exit_code_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code = main(["--port", str(port)])

    err = capsys.readouterr().err
    assert code == 1
    expected = f"pushlane: 127.0.0.1:{port} is already in use, so the gateway cannot listen there"
    assert err == f"{expected} (choose another port)\n"


def _read_lines(stream: io.TextIOBase, lines: "queue.Queue[str]") -> None:
    for line in stream:
        lines.put(line)


@pytest.mark.skipif(
    not (REPO_ROOT / "layers" / "push_core" / "push_core" / "auth.py").exists()
    or not (REPO_ROOT / "dev" / "local_stack" / "quickstart.py").exists(),
    reason="python -m dev.local_stack needs push_core.auth and dev/local_stack/quickstart.py",
)
def test_python_m_local_stack_starts_the_real_template_and_stops_cleanly_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "dev.local_stack", "--port", "0", "--moto-port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        first = lines.get(timeout=60)
        match = READY.match(first.rstrip("\n"))
        assert match, first
        not_routed = requests.get(f"{match.group(1)}/", timeout=10)
        time.sleep(0.2)
        printed = "".join(lines.get_nowait() for _ in range(lines.qsize()))
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    stderr = process.stderr.read()

    # pushlane routes even "/" to its JSON 404 (API Gateway's own would be {"message":"Not Found"}).
    assert not_routed.status_code == 404
    assert not_routed.json()["error"]["code"] == "route_not_found"
    assert "ADMIN_KEY=pl_admin_" in printed
    assert "# moto (the local AWS) is listening on http://127.0.0.1:" in printed
    assert code == 0
    assert "Traceback" not in stderr
