"""All four emulators together, sharing one CA, with a ready set of credentials: what the CLI and the local stack run.

Each emulator keeps its own thread and event loop (the same code path a test gets when it starts one alone):
one slow or CPU-heavy provider check (RSA for FCM's token endpoint, ECE decryption for Web Push) then never
delays another provider's loop, and each can be stopped on its own. The GIL means a shared loop would not be
faster for the benchmark, which drives one provider at a time.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from dev.emulators.apns import ApnsEmulator, ApnsSigningKey
from dev.emulators.emulator import Emulator
from dev.emulators.fcm import FcmEmulator
from dev.emulators.tls import CertificateAuthority
from dev.emulators.webhook import WebhookEmulator
from dev.emulators.webpush import WebPushEmulator

DEFAULT_TEAM_ID = "PUSHLANE01"
DEFAULT_KEY_ID = "EMULATOR01"
DEFAULT_TOPICS = ("com.example.pushlane",)
DEFAULT_PROJECT_ID = "pushlane-local"


class EmulatorSuite:
    """APNs, FCM, Web Push and webhook emulators on one CA; start() also creates one credential of each kind."""

    def __init__(
        self,
        *,
        apns_port: int = 0,
        fcm_port: int = 0,
        webpush_port: int = 0,
        webhook_port: int = 0,
        seed: int = 0,
        team_id: str = DEFAULT_TEAM_ID,
        key_id: str = DEFAULT_KEY_ID,
        topics: tuple[str, ...] = DEFAULT_TOPICS,
        project_id: str = DEFAULT_PROJECT_ID,
        ledger_keep: int | None = None,
    ) -> None:
        self.authority = CertificateAuthority()
        self.seed = seed
        authority, keep = self.authority, ledger_keep
        self.apns = ApnsEmulator(port=apns_port, authority=authority, seed=seed, ledger_keep=keep)
        self.fcm = FcmEmulator(port=fcm_port, authority=authority, seed=seed, ledger_keep=keep)
        self.webpush = WebPushEmulator(port=webpush_port, authority=authority, seed=seed, ledger_keep=keep)
        self.webhook = WebhookEmulator(port=webhook_port, authority=authority, seed=seed, ledger_keep=keep)
        self._team_id, self._key_id, self._topics, self._project_id = team_id, key_id, topics, project_id
        self.apns_key: ApnsSigningKey | None = None
        self.service_account: dict[str, Any] = {}
        self.subscription: dict[str, Any] = {}
        self.hook: dict[str, str] = {}

    @property
    def emulators(self) -> tuple[Emulator, ...]:
        """The four, in a fixed order."""
        return (self.apns, self.fcm, self.webpush, self.webhook)

    def start(self) -> Self:
        """Start all four (stopping those already started if one fails), then create the credentials."""
        started: list[Emulator] = []
        try:
            for emulator in self.emulators:
                emulator.start()
                started.append(emulator)
        except BaseException:
            for emulator in started:
                emulator.stop()
            raise
        self.apns_key = self.apns.create_signing_key(self._team_id, self._key_id, self._topics)
        self.service_account = self.fcm.create_service_account(self._project_id)
        self.subscription = self.webpush.create_subscription()
        self.hook = self.webhook.create_hook()
        return self

    def stop(self) -> None:
        """Stop all four and remove the CA's temporary files."""
        for emulator in self.emulators:
            emulator.stop()
        self.authority.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        """The CLI's JSON line: base URLs, the CA path and the ready-made credentials."""
        assert self.apns_key is not None, "start() first"
        return {
            "ca_path": self.authority.ca_path,
            "seed": self.seed,
            "apns": {**self.apns.describe(), "key": self.apns_key.to_json()},
            "fcm": {**self.fcm.describe(), "project_id": self._project_id, "service_account": self.service_account},
            "webpush": {**self.webpush.describe(), "subscription": self.subscription},
            "webhook": {**self.webhook.describe(), "hook": self.hook},
        }
