"""`python -m dev.emulators`: one JSON line with URLs, CA and credentials; clean exit on SIGINT and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.emulators.conftest import provider_token
from tests.emulators.h2_client import H2Client
from tests.fixtures.processes import ended, wait_until_ended

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "dev.emulators", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, process.stderr.read() if process.stderr else ""
    return process, json.loads(line)


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    process, line = _start("--seed", "3")
    yield process, line
    if process.poll() is None:
        process.kill()
        process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_json_line_names_every_emulator_the_ca_and_the_credentials(running):
    _, line = running
    assert Path(line["ca_path"]).is_file()
    assert line["seed"] == 3
    for name in ("apns", "fcm", "webpush", "webhook"):
        url = urlsplit(line[name]["url"])
        assert (url.scheme, url.hostname) == ("https", "127.0.0.1")
    assert set(line["apns"]["key"]) == {"team_id", "key_id", "topics", "private_key_pem"}
    assert line["fcm"]["service_account"]["token_uri"] == line["fcm"]["token_uri"] == line["fcm"]["url"] + "/token"
    assert line["webpush"]["subscription"]["endpoint"].startswith(line["webpush"]["url"] + "/push/")
    assert line["webhook"]["hook"]["url"].startswith(line["webhook"]["url"] + "/hooks/")


def test_each_emulator_answers_its_health_check_with_the_printed_ca(running):
    _, line = running
    with requests.Session() as session:
        session.trust_env = False
        for name in ("apns", "fcm", "webpush", "webhook"):
            answer = session.get(line[name]["url"] + "/_emulator/health", verify=line["ca_path"], timeout=5)
            assert answer.json()["emulator"] == name


def test_the_printed_apns_key_signs_tokens_the_emulator_accepts(running):
    _, line = running
    key = line["apns"]["key"]
    url = urlsplit(line["apns"]["url"])
    context = ssl.create_default_context(cafile=line["ca_path"])
    context.set_alpn_protocols(["h2"])
    bearer = provider_token(key["private_key_pem"], team_id=key["team_id"], key_id=key["key_id"])
    with H2Client("127.0.0.1", url.port or 443, context) as client:
        answer = client.request(
            "POST",
            "/3/device/" + "d4" * 32,
            [("authorization", f"bearer {bearer}"), ("apns-topic", key["topics"][0])],
            b'{"aps":{"alert":"from the cli"}}',
        )
    assert answer.status == 200


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_it_cleanly_with_exit_0_and_no_traceback(signum):
    port = _free_port()
    process, line = _start("--webhook-port", str(port))
    assert line["webhook"]["url"] == f"https://127.0.0.1:{port}"
    started = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert time.monotonic() - started < 5
    assert not os.path.exists(line["ca_path"])


def test_a_busy_port_is_reported_and_exits_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        process = subprocess.run(
            [sys.executable, "-m", "dev.emulators", "--fcm-port", str(busy.getsockname()[1])],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert process.returncode == 2
    assert process.stdout == ""
    assert "cannot listen" in process.stderr
    assert "Traceback" not in process.stderr


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads Linux's process table")
def test_with_exit_with_parent_it_ends_when_the_process_that_started_it_is_killed():
    # A stand-in for the local stack: starts the emulators, says their pid once they are up, then waits.
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-m', 'dev.emulators', '--exit-with-parent',"
            " '--ledger-keep', '5'],"
            " stdout=subprocess.PIPE, text=True)\n"
            "child.stdout.readline()\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(120)\n",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    emulators = int(starter.stdout.readline())
    assert not ended(emulators)

    starter.kill()  # SIGKILL: no chance to stop its child
    starter.wait()

    wait_until_ended(emulators, 10, "the emulators, outliving the process that started them,")
