"""The loopback provider emulators the local stack delivers through, and the files the quickstart uses.

`make run` starts APNs, FCM, Web Push and webhook emulators next to the stack, points the template's
provider parameters at them (with their CA trusted explicitly), and writes ready-made credential and
device registration bodies, so the quickstart can show a message reaching a phone, an Android device,
a browser and a webhook without any real account.

The served stack runs them as ``python -m dev.emulators`` (``EmulatorProcess``); the in-process harness of
the integration tests keeps them in its own process (``EmulatedProviders``), where tests reach into them.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dev.emulators import EmulatorSuite
from dev.local_stack import malloc_settings
from dev.local_stack.template import REPO_ROOT

# What each emulator's ledger shows of its latest requests: make run's memory stays flat however long it runs.
LEDGER_KEEP = 1000


@dataclass
class EmulatedProviders:
    """The running emulators and where their credentials were written."""

    suite: EmulatorSuite
    directory: Path

    PARAMETERS = (
        "ApnsProductionUrl",
        "ApnsSandboxUrl",
        "FcmUrl",
        "WebPushAllowedHosts",
        "ProviderCaBundle",
        "AllowLoopbackTargets",
    )

    def template_parameters(self) -> dict[str, str]:
        """The template parameters that send every provider to its emulator."""
        return provider_parameters(self.suite.describe())

    def ledger_urls(self) -> dict[str, str]:
        """Where each emulator shows what it accepted."""
        return ledger_urls(self.suite.describe())

    @property
    def ca_path(self) -> str:
        return self.suite.authority.ca_path

    def stop(self) -> None:
        """Stop the emulators and remove the files."""
        self.suite.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def provider_parameters(description: Mapping[str, Any]) -> dict[str, str]:
    """The template parameters that send every provider to the emulators described (the JSON line
    `python -m dev.emulators` prints, or EmulatorSuite.describe())."""
    return {
        "ApnsProductionUrl": description["apns"]["url"],
        "ApnsSandboxUrl": description["apns"]["url"],
        "FcmUrl": description["fcm"]["url"],
        "WebPushAllowedHosts": "127.0.0.1,localhost",
        "ProviderCaBundle": description["ca_path"],
        "AllowLoopbackTargets": "true",
    }


def ledger_urls(description: Mapping[str, Any]) -> dict[str, str]:
    """Where each emulator described shows what it accepted."""
    return {name: f"{description[name]['url']}/_emulator/ledger" for name in ("apns", "fcm", "webpush", "webhook")}


def _write(directory: Path, name: str, document: dict[str, Any]) -> None:
    (directory / name).write_text(json.dumps(document, indent=2) + "\n")


def start_emulators() -> EmulatedProviders:
    """Start the four emulators in this process and write the credential and device files the quickstart posts."""
    suite = EmulatorSuite(ledger_keep=LEDGER_KEEP).start()
    return EmulatedProviders(suite=suite, directory=_write_files(suite.describe()))


@dataclass
class EmulatorProcess:
    """The emulators as ``python -m dev.emulators``, a process of their own (what ``make run`` starts).

    In the stack's process they would share its GIL with moto, the gateway and the pollers: at a few
    thousand deliveries a second that one core, not pushlane, set the pace.
    """

    process: subprocess.Popen[str]
    description: dict[str, Any]
    directory: Path

    def template_parameters(self) -> dict[str, str]:
        """The template parameters that send every provider to its emulator."""
        return provider_parameters(self.description)

    def ledger_urls(self) -> dict[str, str]:
        """Where each emulator shows what it accepted."""
        return ledger_urls(self.description)

    @property
    def ca_path(self) -> str:
        return str(self.description["ca_path"])

    def stop(self) -> None:
        """Stop the emulators (SIGTERM, as they expect) and remove the files."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


_EMULATORS_START_TIMEOUT_S = 30


def start_emulator_process() -> EmulatorProcess:
    """``python -m dev.emulators`` beside the stack, once it has printed its description; raises OSError if it fails."""
    process = subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "dev.emulators", "--ledger-keep", str(LEDGER_KEEP), "--exit-with-parent"],
        cwd=REPO_ROOT,
        env={**os.environ, **malloc_settings.VARIABLES},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready = threading.Timer(_EMULATORS_START_TIMEOUT_S, process.kill)
    ready.start()
    try:
        line = process.stdout.readline()
    finally:
        ready.cancel()
    try:
        description: dict[str, Any] = json.loads(line)
    except ValueError:
        process.kill()
        process.wait()
        raise OSError(f"the provider emulators did not start (exit status {process.returncode})") from None
    return EmulatorProcess(process, description, _write_files(description))


def _write_files(description: Mapping[str, Any]) -> Path:
    """The credential and device bodies the quickstart posts, in a new folder."""
    directory = Path(tempfile.mkdtemp(prefix="pushlane-local-"))
    key = description["apns"]["key"]
    _write(directory, "apns.json", {
        "platform": "apns", "topic": key["topics"][0], "team_id": key["team_id"], "key_id": key["key_id"],
        "private_key": key["private_key_pem"],
    })  # fmt: skip
    _write(directory, "fcm.json", {"platform": "fcm", "service_account": description["fcm"]["service_account"]})
    _write(directory, "webpush.json", {"platform": "webpush", "subject": "mailto:dev@localhost"})
    _write(directory, "webhook.json", {"platform": "webhook", "secret": description["webhook"]["hook"]["secret"]})
    subscription = description["webpush"]["subscription"]
    _write(directory, "apns-device.json", {"platform": "apns", "token": secrets.token_hex(32), "name": "iPhone"})
    _write(
        directory,
        "fcm-device.json",
        {"platform": "fcm", "token": f"local:{secrets.token_urlsafe(24)}", "name": "Pixel"},
    )
    _write(directory, "webpush-device.json", {
        "platform": "webpush", "name": "Firefox",
        "subscription": {"endpoint": subscription["endpoint"], "keys": subscription["keys"]},
    })  # fmt: skip
    _write(directory, "webhook-device.json", {"platform": "webhook", "url": description["webhook"]["hook"]["url"]})
    return directory
