"""Fixtures for the emulator tests: one CA and one running emulator of each kind per session, reset per test.

Clients are independent of the emulators' code: the h2-based H2Client (tests/emulators/h2_client.py) for
HTTP/2 and `requests` for HTTP/1.1, both trusting only the session's CA explicitly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests

from dev.emulators import ApnsEmulator, CertificateAuthority, FcmEmulator, WebhookEmulator, WebPushEmulator
from dev.emulators.emulator import Emulator
from tests.emulators.h2_client import H2Client

TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
TOPIC = "com.example.app"
PROJECT_ID = "pushlane-test"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@pytest.fixture(scope="session")
def authority() -> Iterator[CertificateAuthority]:
    ca = CertificateAuthority()
    yield ca
    ca.cleanup()


def _running(emulator: Emulator) -> Iterator[Any]:
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def _apns(authority: CertificateAuthority) -> Iterator[ApnsEmulator]:
    yield from _running(ApnsEmulator(authority=authority, seed=7))


@pytest.fixture(scope="session")
def _fcm(authority: CertificateAuthority) -> Iterator[FcmEmulator]:
    yield from _running(FcmEmulator(authority=authority, seed=7))


@pytest.fixture(scope="session")
def _webpush(authority: CertificateAuthority) -> Iterator[WebPushEmulator]:
    yield from _running(WebPushEmulator(authority=authority, seed=7))


@pytest.fixture(scope="session")
def _webhook(authority: CertificateAuthority) -> Iterator[WebhookEmulator]:
    yield from _running(WebhookEmulator(authority=authority, seed=7))


@pytest.fixture
def apns(_apns: ApnsEmulator) -> ApnsEmulator:
    _apns.reset()
    _apns.token_update_min_interval_s = None
    return _apns


@pytest.fixture
def fcm(_fcm: FcmEmulator) -> FcmEmulator:
    _fcm.reset()
    return _fcm


@pytest.fixture
def webpush(_webpush: WebPushEmulator) -> WebPushEmulator:
    _webpush.reset()
    return _webpush


@pytest.fixture
def webhook(_webhook: WebhookEmulator) -> WebhookEmulator:
    _webhook.reset()
    return _webhook


def h2_client(emulator: Emulator, **options: Any) -> H2Client:
    """An HTTP/2 connection to `emulator` trusting only its CA."""
    return H2Client("127.0.0.1", emulator.port, emulator.authority.client_context(("h2",)), **options)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A requests session that ignores REQUESTS_CA_BUNDLE and friends (each call passes verify=)."""
    with requests.Session() as s:
        s.trust_env = False
        yield s


@pytest.fixture(scope="session")
def apns_key(_apns: ApnsEmulator) -> Any:
    return _apns.create_signing_key(TEAM_ID, KEY_ID, [TOPIC])


def provider_token(private_key_pem: str, *, team_id: str = TEAM_ID, key_id: str = KEY_ID, age_s: int = 0) -> str:
    """An APNs provider JWT as Apple specifies it."""
    return jwt.encode(
        {"iss": team_id, "iat": int(time.time()) - age_s}, private_key_pem, algorithm="ES256", headers={"kid": key_id}
    )


def oauth_assertion(account: dict[str, Any], **overrides: Any) -> str:
    """The RS256 assertion google-auth builds from a service account (claims overridable)."""
    now = int(time.time())
    claims = {
        "iss": account["client_email"],
        "aud": account["token_uri"],
        "scope": FCM_SCOPE,
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return jwt.encode(claims, account["private_key"], algorithm="RS256", headers={"kid": account["private_key_id"]})
