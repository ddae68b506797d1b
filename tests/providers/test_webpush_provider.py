import json

import pytest

from dev.emulators import WebPushEmulator
from push_core.models import Platform, Target
from push_core.providers.contract import Delivered, InvalidTarget, Rejected, Transient
from push_core.providers.webpush.credentials import WebPushCredentials
from push_core.providers.webpush.provider import WebPushProvider
from push_core.providers.webpush.vapid import generate_vapid_key
from tests.providers.conftest import message
from tests.providers.conftest import send_and_close as _send

SUBJECT = "mailto:ops@example.com"


def _provider(webpush: WebPushEmulator, *, allow_loopback: bool = True) -> tuple[WebPushProvider, str]:
    private, public = generate_vapid_key()
    creds = WebPushCredentials(subject=SUBJECT, vapid_private_key=private, vapid_public_key=public)
    provider = WebPushProvider(creds, allowed_hosts=(), allow_loopback=allow_loopback, ca_bundle=webpush.ca_path)
    return provider, public


def _subscriber(webpush: WebPushEmulator, server_key: str | None = None) -> Target:
    subscription = webpush.create_subscription(server_key)
    return Target(
        device_id="browser",
        platform=Platform.WEBPUSH,
        token=subscription["endpoint"],
        push={"p256dh": subscription["keys"]["p256dh"], "auth": subscription["keys"]["auth"]},
    )


def test_the_push_service_decrypts_exactly_what_the_browser_would_show(webpush: WebPushEmulator):
    provider, public = _provider(webpush)
    msg = message(importance=5, data={"room": "42"}, link="https://chat.example/42", collapse_key="room-42")
    msg = type(msg)(publication_id=msg.publication_id, content=msg.content, ttl_s=120, collapse_key="room-42")
    [outcome] = _send(provider, [_subscriber(webpush, public)], msg)

    assert isinstance(outcome, Delivered)
    [entry] = webpush.ledger.delivered()
    assert json.loads(entry.data["plaintext"]) == {
        "pushlane_id": msg.publication_id,
        "title": "Hello",
        "body": "World",
        "link": "https://chat.example/42",
        "importance": 5,
        "data": {"room": "42"},
    }
    assert (entry.data["ttl"], entry.data["urgency"], entry.data["topic"]) == (120, "high", "room-42")
    assert entry.data["content_encoding"] == "aes128gcm"
    vapid = entry.data["vapid"]
    assert vapid["k"] == public
    assert vapid["claims"]["aud"] == webpush.url
    assert vapid["claims"]["sub"] == SUBJECT


def test_gone_subscriptions_are_dead_and_throttling_is_transient(webpush: WebPushEmulator):
    provider, _ = _provider(webpush)
    gone, alive = _subscriber(webpush), _subscriber(webpush)
    webpush.mark_dead([gone.token or ""])
    outcomes = _send(provider, [gone, alive])
    assert outcomes[0] == InvalidTarget("410")
    assert isinstance(outcomes[1], Delivered)
    webpush.faults.update(throttle_rate=1.0, retry_after_s=30)
    provider, _ = _provider(webpush)
    [throttled] = _send(provider, [alive])
    assert throttled == Transient("429", 30)


def test_endpoints_off_the_allow_list_are_never_contacted(webpush: WebPushEmulator):
    provider, _ = _provider(webpush, allow_loopback=False)
    [outcome] = _send(provider, [_subscriber(webpush)])
    assert outcome == Rejected("EndpointNotAllowed")  # counted failed; only the push service's 404/410 prune
    assert webpush.ledger.counts() == {}


@pytest.mark.parametrize("keys", [{"p256dh": "AAAA", "auth": "BTBZMqHH6r4Tts7J_aSIgg"}, {}])
def test_subscriptions_with_unusable_keys_fail_without_being_pruned(webpush: WebPushEmulator, keys):
    provider, _ = _provider(webpush)
    bad = _subscriber(webpush).model_copy(update={"push": keys})
    [outcome] = _send(provider, [bad])
    assert outcome == Rejected("BadSubscriptionKeys")
