import json

import pytest
from cryptography.hazmat.primitives import serialization

from dev.emulators import ApnsEmulator
from push_core.models import Platform
from push_core.providers.apns.auth import InMemoryTokenStore
from push_core.providers.apns.credentials import ApnsCredentials
from push_core.providers.apns.provider import ApnsProvider
from push_core.providers.contract import Delivered, InvalidTarget, Rejected, Transient
from tests.providers.conftest import KEY_ID, TEAM, TOPIC, message, run, target
from tests.providers.conftest import send_and_close as _send


def _provider(apns: ApnsEmulator, topic: str = TOPIC, **credentials: str) -> ApnsProvider:
    key = apns.create_signing_key(TEAM, KEY_ID, [TOPIC])
    fields: dict[str, str] = credentials or {
        "team_id": TEAM,
        "key_id": KEY_ID,
        "private_key": key.private_key_pem or "",
    }
    creds = ApnsCredentials(topic=topic, **fields)
    return ApnsProvider(
        creds, production_url=apns.url, sandbox_url=apns.url, ca_bundle=apns.ca_path, token_store=InMemoryTokenStore()
    )


def test_delivered_notification_carries_every_header_the_payload_and_a_valid_jwt(apns: ApnsEmulator):
    provider = _provider(apns)
    msg = message(importance=5, data={"order": 7}, collapse_key="orders", ttl=3600)
    from push_core.models import InboxMessage
    from push_core.pipeline.send import push_message

    push = push_message(InboxMessage(publication_id=msg.publication_id, content=msg.content, created_at=0))
    [outcome] = _send(provider, [target(Platform.APNS, "a1" * 32)], push)

    assert isinstance(outcome, Delivered)
    assert outcome.provider_id
    [entry] = apns.ledger.delivered()
    data = entry.data
    assert data["token"] == "a1" * 32
    assert data["headers"]["apns-topic"] == TOPIC
    assert data["headers"]["apns-push-type"] == "alert"
    assert data["headers"]["apns-priority"] == "10"
    assert data["headers"]["apns-collapse-id"] == "orders"
    assert int(data["headers"]["apns-expiration"]) > 0
    assert data["payload"]["aps"]["alert"] == {"title": "Hello", "body": "World"}
    assert data["payload"]["order"] == 7
    assert (data["auth"]["method"], data["auth"]["key_id"], data["auth"]["team_id"]) == ("token", KEY_ID, TEAM)


def test_documented_reasons_become_the_right_outcomes(apns: ApnsEmulator):
    provider = _provider(apns)
    apns.mark_dead(["de" * 32], timestamp_ms=1_795_000_000_000)
    apns.register_device_token("0f" * 32, "com.other.app")
    outcomes = _send(
        provider,
        [
            target(Platform.APNS, "de" * 32),
            target(Platform.APNS, "not-hex"),
            target(Platform.APNS, "0f" * 32),
            target(Platform.APNS, "ab" * 32),
        ],
    )
    assert outcomes[0] == InvalidTarget("Unregistered", 1_795_000_000_000)
    assert outcomes[1] == InvalidTarget("BadDeviceToken")
    assert outcomes[2] == InvalidTarget("DeviceTokenNotForTopic")
    assert isinstance(outcomes[3], Delivered)


def test_a_topic_the_team_may_not_use_is_rejected(apns: ApnsEmulator):
    [outcome] = _send(_provider(apns, topic="com.not.mine"), [target(Platform.APNS, "ab" * 32)])
    assert outcome == Rejected("TopicDisallowed")


def test_a_wrong_signing_key_is_rejected_as_invalid_provider_token(apns: ApnsEmulator):
    apns.create_signing_key(TEAM, KEY_ID, [TOPIC])
    other = ApnsEmulator().create_signing_key(TEAM, KEY_ID, [TOPIC])  # same ids, another key
    creds = ApnsCredentials(topic=TOPIC, team_id=TEAM, key_id=KEY_ID, private_key=other.private_key_pem)
    provider = ApnsProvider(creds, production_url=apns.url, sandbox_url=apns.url, ca_bundle=apns.ca_path)
    [outcome] = _send(provider, [target(Platform.APNS, "ab" * 32)])
    assert outcome == Rejected("InvalidProviderToken")


def test_throttling_and_server_errors_are_transient_with_the_retry_after(apns: ApnsEmulator):
    provider = _provider(apns)
    apns.faults.update(throttle_rate=1.0, retry_after_s=42)
    [throttled] = _send(provider, [target(Platform.APNS, "ab" * 32)])
    assert throttled == Transient("TooManyRequests", 42)
    apns.faults.update(throttle_rate=0.0, unavailable_rate=1.0)
    [unavailable] = _send(_provider(apns), [target(Platform.APNS, "ab" * 32)])
    assert isinstance(unavailable, Transient)
    assert unavailable.reason == "ServiceUnavailable"


def test_a_reset_connection_is_transient_never_dead(apns: ApnsEmulator):
    apns.faults.update(reset_rate=1.0)
    [outcome] = _send(_provider(apns), [target(Platform.APNS, "ab" * 32)])
    assert isinstance(outcome, Transient)


def test_oversized_payload_is_rejected_without_sending(apns: ApnsEmulator):
    provider = _provider(apns)
    provider.trim_payloads = False
    [outcome] = _send(provider, [target(Platform.APNS, "ab" * 32)], message(body="x" * 5000))
    assert outcome == Rejected("PayloadTooLarge")
    assert apns.ledger.counts() == {}


def test_five_thousand_sends_to_dead_tokens_all_complete(apns: ApnsEmulator):
    # aioapns 4.0 stalls after ~2,500 of these: it never returns flow-control credit for error bodies.
    tokens = [f"{i:064x}" for i in range(5000)]
    apns.mark_dead(tokens, timestamp_ms=1)
    outcomes = _send(_provider(apns), [target(Platform.APNS, t) for t in tokens])
    assert len(outcomes) == 5000
    assert all(o == InvalidTarget("Unregistered", 1) for o in outcomes)


def test_sandbox_devices_go_to_the_sandbox_host(apns: ApnsEmulator):
    with ApnsEmulator(authority=apns.authority) as sandbox:
        key = apns.create_signing_key(TEAM, KEY_ID, [TOPIC])
        public = serialization.load_pem_private_key((key.private_key_pem or "").encode(), None).public_key()
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        sandbox.register_public_key(TEAM, KEY_ID, pem.decode(), [TOPIC])
        creds = ApnsCredentials(topic=TOPIC, team_id=TEAM, key_id=KEY_ID, private_key=key.private_key_pem)
        provider = ApnsProvider(creds, production_url=apns.url, sandbox_url=sandbox.url, ca_bundle=apns.ca_path)
        outcomes = _send(
            provider,
            [
                target(Platform.APNS, "ab" * 32, environment="production"),
                target(Platform.APNS, "cd" * 32, environment="sandbox"),
            ],
        )
        assert all(isinstance(o, Delivered) for o in outcomes)
        assert [e.data["token"] for e in apns.ledger.delivered()] == ["ab" * 32]
        assert [e.data["token"] for e in sandbox.ledger.delivered()] == ["cd" * 32]


def test_certificate_auth_sends_without_a_jwt(apns: ApnsEmulator):
    certificate = apns.issue_client_certificate(TOPIC)
    creds = ApnsCredentials(topic=TOPIC, certificate=certificate.cert_pem, certificate_key=certificate.key_pem)
    provider = ApnsProvider(creds, production_url=apns.url, sandbox_url=apns.url, ca_bundle=apns.ca_path)
    [outcome] = _send(provider, [target(Platform.APNS, "ab" * 32)])
    assert isinstance(outcome, Delivered)
    [entry] = apns.ledger.delivered()
    assert entry.data["auth"] == {"method": "certificate", "topic": TOPIC}


def test_provider_token_is_reused_across_sends(apns: ApnsEmulator):
    provider = _provider(apns)

    async def twice():
        await provider.send([target(Platform.APNS, "ab" * 32)], message())
        await provider.send([target(Platform.APNS, "cd" * 32)], message())
        await provider.close()

    run(twice())
    issued = {json.dumps(e.data["auth"], sort_keys=True) for e in apns.ledger.delivered()}
    assert len(apns.ledger.delivered()) == 2
    assert len(issued) == 1  # one token (same iat) for both sends


@pytest.mark.parametrize("missing", ["team_id", "private_key"])
def test_credentials_need_a_complete_auth_method(missing: str):
    fields = {"topic": TOPIC, "team_id": TEAM, "key_id": KEY_ID, "private_key": "pem"}
    del fields[missing]
    with pytest.raises(ValueError, match="either"):
        ApnsCredentials(**fields)
