"""Webhook emulator: HMAC-SHA256 signatures with a timestamp, checked and recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import requests

from dev.emulators import WebhookEmulator

BODY = json.dumps({"id": "m-1", "title": "Hello", "data": {"k": "v"}}).encode()


def _signature(secret: str, body: bytes, timestamp: int) -> str:
    """Computed here from the spec, independently of the emulator's own helper."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@pytest.fixture
def hook(webhook: WebhookEmulator) -> dict[str, str]:
    return webhook.create_hook()


def _post(
    session: requests.Session, webhook: WebhookEmulator, url: str, body: bytes, signature: str | None
) -> requests.Response:
    headers = {"content-type": "application/json", "user-agent": "pushlane-webhook/1"}
    if signature is not None:
        headers["pushlane-signature"] = signature
    return session.post(url, data=body, headers=headers, verify=webhook.ca_path, timeout=5)


def test_a_correctly_signed_webhook_is_accepted_and_recorded(webhook, hook, session):
    answer = _post(session, webhook, hook["url"], BODY, _signature(hook["secret"], BODY, int(time.time())))
    assert answer.status_code == 200
    (entry,) = webhook.ledger.entries()
    assert entry.data["hook_id"] == hook["id"]
    assert entry.data["body"] == json.loads(BODY)
    assert entry.data["headers"]["user-agent"] == "pushlane-webhook/1"
    assert entry.data["signature"]["verified"] is True


def test_one_matching_signature_among_several_is_enough(webhook, hook, session):
    now = int(time.time())
    rotated = _signature("old-secret", BODY, now) + "," + _signature(hook["secret"], BODY, now).split(",")[1]
    assert _post(session, webhook, hook["url"], BODY, rotated).status_code == 200


def test_a_hook_created_with_a_given_secret_verifies_with_it(webhook, session):
    created = session.post(
        webhook.url + "/_emulator/hooks", json={"secret": "app-secret"}, verify=webhook.ca_path, timeout=5
    ).json()
    assert created["secret"] == "app-secret"
    assert (
        _post(session, webhook, created["url"], BODY, _signature("app-secret", BODY, int(time.time()))).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("make_signature", "reason"),
    [
        (lambda secret, now: None, "MissingSignature"),
        (lambda secret, now: "sha256=abc", "BadSignatureHeader"),
        (lambda secret, now: f"t={now}", "BadSignatureHeader"),
        (lambda secret, now: _signature("wrong-secret", BODY, now), "BadSignature"),
        (lambda secret, now: _signature(secret, BODY + b" ", now), "BadSignature"),
        (lambda secret, now: _signature(secret, BODY, now - 301), "StaleTimestamp"),
        (lambda secret, now: _signature(secret, BODY, now + 301), "StaleTimestamp"),
    ],
    ids=["missing", "other-scheme", "no-v1", "wrong-secret", "other-body", "stale", "future"],
)
def test_a_badly_signed_webhook_is_401(webhook, hook, session, make_signature, reason):
    answer = _post(session, webhook, hook["url"], BODY, make_signature(hook["secret"], int(time.time())))
    assert (answer.status_code, answer.json()["error"]) == (401, reason)
    assert len(webhook.ledger) == 0


def test_a_timestamp_within_five_minutes_is_accepted(webhook, hook, session):
    answer = _post(session, webhook, hook["url"], BODY, _signature(hook["secret"], BODY, int(time.time()) - 290))
    assert answer.status_code == 200


def test_a_signed_body_that_is_not_json_is_400(webhook, hook, session):
    answer = _post(
        session, webhook, hook["url"], b"not json", _signature(hook["secret"], b"not json", int(time.time()))
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "BadJson")


def test_an_unknown_hook_is_404_and_a_dead_one_410(webhook, hook, session):
    signature = _signature(hook["secret"], BODY, int(time.time()))
    assert _post(session, webhook, webhook.url + "/hooks/nobody", BODY, signature).status_code == 404
    webhook.mark_dead([hook["url"]])
    answer: Any = _post(session, webhook, hook["url"], BODY, signature)
    assert (answer.status_code, answer.json()["error"]) == (410, "Gone")
