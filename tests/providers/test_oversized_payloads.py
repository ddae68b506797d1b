"""A message too big for a platform is a payload problem, never a dead target: every provider trims the body
and delivers, and when the data alone is too big it rejects the message without sending; it never answers
InvalidTarget (which would prune a healthy device)."""

import json

from dev.emulators import ApnsEmulator, FcmEmulator, WebPushEmulator
from push_core.models import Platform, Target
from push_core.providers.apns.auth import InMemoryTokenStore
from push_core.providers.apns.credentials import ApnsCredentials
from push_core.providers.apns.provider import ApnsProvider
from push_core.providers.contract import Delivered, Rejected
from push_core.providers.fcm.credentials import FcmCredentials
from push_core.providers.fcm.oauth import ServiceAccount
from push_core.providers.fcm.provider import FcmProvider
from push_core.providers.webpush.credentials import WebPushCredentials
from push_core.providers.webpush.encryption import MAX_PLAINTEXT_BYTES
from push_core.providers.webpush.provider import WebPushProvider
from push_core.providers.webpush.vapid import generate_vapid_key
from tests.providers.conftest import KEY_ID, TEAM, TOPIC, message, target
from tests.providers.conftest import send_and_close as _send

LONG_BODY = "ü" * 2500  # 5,000 bytes of UTF-8
TOO_MUCH_DATA = {"blob": "x" * 4050}  # over every platform's limit with no title or body at all


def _apns(apns: ApnsEmulator) -> ApnsProvider:
    key = apns.create_signing_key(TEAM, KEY_ID, [TOPIC])
    creds = ApnsCredentials(topic=TOPIC, team_id=TEAM, key_id=KEY_ID, private_key=key.private_key_pem or "")
    return ApnsProvider(
        creds, production_url=apns.url, sandbox_url=apns.url, ca_bundle=apns.ca_path, token_store=InMemoryTokenStore()
    )


def _fcm(fcm: FcmEmulator) -> FcmProvider:
    account = ServiceAccount.model_validate(fcm.create_service_account("demo-project"))
    return FcmProvider(
        FcmCredentials(service_account=account), base_url=fcm.url, ca_bundle=fcm.ca_path, allow_loopback=True
    )


def _webpush(webpush: WebPushEmulator) -> tuple[WebPushProvider, Target]:
    private, public = generate_vapid_key()
    creds = WebPushCredentials(subject="mailto:ops@example.com", vapid_private_key=private, vapid_public_key=public)
    provider = WebPushProvider(creds, allowed_hosts=(), allow_loopback=True, ca_bundle=webpush.ca_path)
    subscription = webpush.create_subscription(public)
    keys = subscription["keys"]
    return provider, target(Platform.WEBPUSH, subscription["endpoint"], p256dh=keys["p256dh"], auth=keys["auth"])


def _assert_trimmed(body: str) -> None:
    assert body.endswith("…")
    assert LONG_BODY.startswith(body[:-1])
    assert len(body) < len(LONG_BODY)


def test_a_web_push_body_too_big_for_one_record_is_delivered_trimmed(webpush: WebPushEmulator):
    provider, subscriber = _webpush(webpush)
    [outcome] = _send(provider, [subscriber], message(body=LONG_BODY, data={"order": 42}))

    assert isinstance(outcome, Delivered)
    [entry] = webpush.ledger.delivered()
    assert len(entry.data["plaintext"].encode()) <= MAX_PLAINTEXT_BYTES
    received = json.loads(entry.data["plaintext"])
    assert (received["title"], received["data"]) == ("Hello", {"order": 42})
    _assert_trimmed(received["body"])


def test_web_push_data_too_big_for_one_record_is_rejected_not_a_dead_subscription(webpush: WebPushEmulator):
    provider, subscriber = _webpush(webpush)
    [outcome] = _send(provider, [subscriber], message(data=TOO_MUCH_DATA))
    assert outcome == Rejected("PayloadTooLarge")
    assert webpush.ledger.counts() == {}


def test_an_fcm_body_too_big_for_the_payload_limit_is_delivered_trimmed(fcm: FcmEmulator):
    [outcome] = _send(_fcm(fcm), [target(Platform.FCM, "tok:long")], message(body=LONG_BODY, data={"order": 42}))

    assert isinstance(outcome, Delivered)
    [entry] = fcm.ledger.delivered()
    sent = entry.data["message"]
    assert (sent["notification"]["title"], sent["data"]["order"]) == ("Hello", "42")
    _assert_trimmed(sent["notification"]["body"])


def test_fcm_data_too_big_is_rejected_without_sending(fcm: FcmEmulator):
    [outcome] = _send(_fcm(fcm), [target(Platform.FCM, "tok:big")], message(data=TOO_MUCH_DATA))
    assert outcome == Rejected("PayloadTooLarge")
    assert fcm.ledger.counts() == {}


def test_an_apns_body_and_title_are_trimmed_around_data_that_nearly_fills_the_payload(apns: ApnsEmulator):
    almost_full = {"blob": "x" * 3900}  # leaves room for part of the title and none of the body
    msg = message(title="T" * 250, body=LONG_BODY, data=almost_full)
    [outcome] = _send(_apns(apns), [target(Platform.APNS, "ab" * 32)], msg)

    assert isinstance(outcome, Delivered)
    [entry] = apns.ledger.delivered()
    assert entry.data["payload"]["blob"] == almost_full["blob"]
    alert = entry.data["payload"]["aps"]["alert"]
    assert alert["body"] == ""
    assert alert["title"].endswith("…")
    assert set(alert["title"][:-1]) == {"T"}
