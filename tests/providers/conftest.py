"""Providers against the loopback emulators, over real sockets: TLS, HTTP/2, the providers' real wire formats."""

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from dev.emulators import ApnsEmulator, FcmEmulator, WebhookEmulator, WebPushEmulator
from push_core.models import MessageContent, Platform, Target
from push_core.providers.contract import Outcome, Provider, PushMessage

T = TypeVar("T")
TEAM, KEY_ID, TOPIC = "TEAM123456", "KEY1234567", "com.example.app"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def message(**content: Any) -> PushMessage:
    fields: dict[str, Any] = {"title": "Hello", "body": "World", **content}
    return PushMessage(publication_id="01JD0000000000000000000MSG", content=MessageContent.model_validate(fields))


def target(platform: Platform, token: str, **push: str) -> Target:
    return Target(device_id=f"dev-{abs(hash(token)) % 10**8}", platform=platform, token=token, push=push)


@pytest.fixture(scope="module")
def apns() -> Iterator[ApnsEmulator]:
    with ApnsEmulator(seed=1) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def fcm() -> Iterator[FcmEmulator]:
    with FcmEmulator(seed=1) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def webpush() -> Iterator[WebPushEmulator]:
    with WebPushEmulator(seed=1) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def webhooks() -> Iterator[WebhookEmulator]:
    with WebhookEmulator(seed=1) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean_emulators(request: pytest.FixtureRequest) -> None:
    for name in ("apns", "fcm", "webpush", "webhooks"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


def send_and_close(provider: Provider, targets: list[Target], msg: PushMessage | None = None) -> list[Outcome]:
    """One send through a provider on a fresh loop, closing its connections afterwards."""

    async def go() -> list[Outcome]:
        try:
            return await provider.send(targets, msg or message())
        finally:
            await provider.close()

    return run(go())
