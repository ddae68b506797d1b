"""APNs emulator: accepted notifications in the ledger, each documented error reason, token and certificate auth."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dev.emulators import ApnsEmulator
from tests.emulators.conftest import KEY_ID, TEAM_ID, TOPIC, h2_client, provider_token
from tests.emulators.h2_client import H2Client, H2Response

DEVICE = "a1" * 32
ALERT = json.dumps({"aps": {"alert": {"title": "Hi", "body": "there"}}, "custom": 1}).encode()


def _send(
    client: H2Client,
    bearer: str | None,
    *,
    token: str = DEVICE,
    headers: dict[str, str | None] | None = None,
    extra: list[tuple[str, str]] | None = None,
    body: bytes = ALERT,
    method: str = "POST",
    path: str | None = None,
) -> H2Response:
    chosen: dict[str, str | None] = {"apns-topic": TOPIC, "apns-push-type": "alert", "apns-priority": "10"}
    chosen.update(headers or {})
    sent = [(name, value) for name, value in chosen.items() if value is not None]
    if bearer is not None:
        sent.insert(0, ("authorization", f"bearer {bearer}"))
    return client.request(method, path or f"/3/device/{token}", sent + (extra or []), body)


@pytest.fixture
def client(apns: ApnsEmulator) -> Any:
    with h2_client(apns) as connection:
        yield connection


@pytest.fixture
def bearer(apns_key: Any) -> str:
    return provider_token(apns_key.private_key_pem)


def test_a_valid_notification_is_accepted_with_an_apns_id_and_recorded(apns, client, bearer):
    answer = _send(client, bearer, headers={"apns-collapse-id": "group-1", "apns-expiration": "0"})
    assert answer.status == 200
    assert answer.body == b""
    apns_id = answer.headers["apns-id"]
    assert uuid.UUID(apns_id)
    (entry,) = apns.ledger.entries()
    assert entry.data["token"] == DEVICE
    assert entry.data["topic"] == TOPIC
    assert entry.data["apns_id"] == apns_id
    assert entry.data["payload"] == json.loads(ALERT)
    assert entry.data["headers"] == {
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-collapse-id": "group-1",
        "apns-expiration": "0",
    }
    assert entry.data["auth"]["method"] == "token"
    assert (entry.data["auth"]["team_id"], entry.data["auth"]["key_id"]) == (TEAM_ID, KEY_ID)
    assert abs(entry.data["auth"]["iat"] - time.time()) < 60
    assert apns.ledger.counts() == {"200": 1}


def test_a_given_apns_id_is_echoed(client, bearer):
    given = str(uuid.uuid4())
    assert _send(client, bearer, headers={"apns-id": given}).headers["apns-id"] == given


def test_a_voip_payload_may_be_larger_than_an_alert_payload(client, bearer):
    padding = "x" * 4600
    body = json.dumps({"aps": {}, "pad": padding}).encode()
    assert (
        _send(client, bearer, headers={"apns-push-type": "voip", "apns-topic": TOPIC + ".voip"}, body=body).status
        == 200
    )
    assert _send(client, bearer, body=body).status == 413


def test_a_background_notification_at_priority_5_is_accepted(client, bearer):
    body = json.dumps({"aps": {"content-available": 1}}).encode()
    assert (
        _send(client, bearer, headers={"apns-push-type": "background", "apns-priority": "5"}, body=body).status == 200
    )


def _big_alert(size: int) -> bytes:
    skeleton = json.dumps({"aps": {"alert": ""}}).encode()
    return json.dumps({"aps": {"alert": "x" * (size - len(skeleton))}}).encode()


@pytest.mark.parametrize(
    ("reason", "status", "request_options"),
    [
        ("BadDeviceToken", 400, {"token": "zz" * 32}),
        ("BadDeviceToken", 400, {"token": "ab" * 10}),
        ("MissingDeviceToken", 400, {"token": ""}),
        ("MissingTopic", 400, {"headers": {"apns-topic": None}}),
        ("TopicDisallowed", 400, {"headers": {"apns-topic": "com.someone.else"}}),
        ("BadTopic", 400, {"headers": {"apns-topic": "com example app"}}),
        ("InvalidPushType", 400, {"headers": {"apns-push-type": "shout"}}),
        ("BadPriority", 400, {"headers": {"apns-priority": "7"}}),
        ("BadPriority", 400, {"headers": {"apns-push-type": "background", "apns-priority": "10"}}),
        ("BadPriority", 400, {"headers": {"apns-push-type": "background", "apns-priority": None}}),
        ("BadPriority", 400, {"headers": {"apns-push-type": "background", "apns-priority": "1"}}),
        ("BadExpirationDate", 400, {"headers": {"apns-expiration": "tomorrow"}}),
        ("BadMessageId", 400, {"headers": {"apns-id": "not-a-uuid"}}),
        ("BadCollapseId", 400, {"headers": {"apns-collapse-id": "c" * 65}}),
        ("PayloadEmpty", 400, {"body": b""}),
        ("BadPayload", 400, {"body": b"not json"}),
        ("BadPayload", 400, {"body": b'{"alert": "no aps"}'}),
        ("PayloadTooLarge", 413, {"body": _big_alert(4097)}),
        ("DuplicateHeaders", 400, {"extra": [("apns-topic", TOPIC)]}),
        ("BadPath", 404, {"path": "/3/devices/" + DEVICE}),
        ("MethodNotAllowed", 405, {"method": "PUT"}),
    ],
)
def test_each_invalid_request_gets_apples_reason(apns, client, bearer, reason, status, request_options):
    answer = _send(client, bearer, **request_options)
    assert answer.status == status
    assert answer.json() == {"reason": reason}
    assert uuid.UUID(answer.headers["apns-id"])
    assert len(apns.ledger) == 0


def test_a_payload_of_exactly_4096_bytes_is_accepted(client, bearer):
    body = _big_alert(4096)
    assert len(body) == 4096
    assert _send(client, bearer, body=body).status == 200


def test_a_token_bound_to_another_app_gets_device_token_not_for_topic(apns, client, bearer):
    other_device = "b2" * 32
    apns.register_topics(TEAM_ID, ["com.example.watch"])
    apns.register_device_token(other_device, "com.example.watch")
    answer = _send(client, bearer, token=other_device)
    assert (answer.status, answer.json()) == (400, {"reason": "DeviceTokenNotForTopic"})
    assert _send(client, bearer, token=other_device, headers={"apns-topic": "com.example.watch"}).status == 200


def test_a_missing_provider_token_is_403_missing_provider_token(client):
    answer = _send(client, None)
    assert (answer.status, answer.json()) == (403, {"reason": "MissingProviderToken"})


def test_a_token_signed_by_another_key_is_403_invalid_provider_token(client):
    stranger = ec.generate_private_key(ec.SECP256R1())
    pem = stranger.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    answer = _send(client, provider_token(pem))
    assert (answer.status, answer.json()) == (403, {"reason": "InvalidProviderToken"})


@pytest.mark.parametrize(
    "make_token",
    [
        lambda key: provider_token(key.private_key_pem, key_id="UNKNOWNKID"),
        lambda key: provider_token(key.private_key_pem, team_id="OTHERTEAM1"),
        lambda key: jwt.encode(
            {"iss": TEAM_ID, "iat": int(time.time())}, "secret", algorithm="HS256", headers={"kid": KEY_ID}
        ),
        lambda key: "not-a-jwt",
        lambda key: provider_token(key.private_key_pem, age_s=-3600),
    ],
    ids=["unknown-kid", "wrong-team", "hs256", "garbage", "issued-in-the-future"],
)
def test_a_token_apns_cannot_verify_is_403_invalid_provider_token(client, apns_key, make_token):
    answer = _send(client, make_token(apns_key))
    assert (answer.status, answer.json()) == (403, {"reason": "InvalidProviderToken"})


def test_a_token_older_than_an_hour_is_403_expired_provider_token(client, apns_key):
    answer = _send(client, provider_token(apns_key.private_key_pem, age_s=3601))
    assert (answer.status, answer.json()) == (403, {"reason": "ExpiredProviderToken"})
    assert _send(client, provider_token(apns_key.private_key_pem, age_s=3500)).status == 200


def test_a_team_changing_its_token_too_often_gets_429_when_the_knob_is_on(apns, client, apns_key):
    first = provider_token(apns_key.private_key_pem, age_s=10)
    second = provider_token(apns_key.private_key_pem, age_s=5)
    assert _send(client, first).status == 200
    assert _send(client, second).status == 200  # knob off: tests mint tokens often
    apns.token_update_min_interval_s = 1200
    assert _send(client, second).status == 200  # the same token again is no update
    answer = _send(client, first)
    assert (answer.status, answer.json()) == (429, {"reason": "TooManyProviderTokenUpdates"})


def test_a_registered_public_key_validates_tokens_from_its_private_half(apns, client, session):
    private_key = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    registered = session.post(
        apns.url + "/_emulator/keys",
        json={
            "team_id": "TEAMPUBKEY",
            "key_id": "PUBKEY0001",
            "topics": ["com.example.pub"],
            "public_key_pem": public_pem,
        },
        verify=apns.ca_path,
        timeout=5,
    )
    assert registered.status_code == 201
    assert registered.json()["private_key_pem"] is None
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    token = provider_token(pem, team_id="TEAMPUBKEY", key_id="PUBKEY0001")
    assert _send(client, token, headers={"apns-topic": "com.example.pub"}).status == 200


def test_a_key_generated_over_the_admin_api_signs_accepted_tokens(apns, client, session):
    created = session.post(
        apns.url + "/_emulator/keys",
        json={"team_id": "TEAMADMIN1", "key_id": "ADMINKEY01", "topics": ["com.example.admin"]},
        verify=apns.ca_path,
        timeout=5,
    ).json()
    token = provider_token(created["private_key_pem"], team_id="TEAMADMIN1", key_id="ADMINKEY01")
    assert _send(client, token, headers={"apns-topic": "com.example.admin"}).status == 200


def test_certificate_auth_takes_the_topic_from_the_client_certificate(apns):
    certificate = apns.issue_client_certificate("com.example.certapp")
    context = apns.authority.client_context(("h2",), certificate)
    with H2Client("127.0.0.1", apns.port, context) as client:
        assert _send(client, None, headers={"apns-topic": None}).status == 200
        assert (
            _send(client, None, headers={"apns-topic": "com.example.certapp.voip", "apns-push-type": "voip"}).status
            == 200
        )
        refused = _send(client, None, headers={"apns-topic": "com.example.app"})
    assert (refused.status, refused.json()) == (400, {"reason": "TopicDisallowed"})
    first = apns.ledger.entries()[0]
    assert first.data["auth"] == {"method": "certificate", "topic": "com.example.certapp"}
    assert first.data["topic"] == "com.example.certapp"


def test_a_dead_token_gets_410_unregistered_with_its_timestamp(apns, client, bearer):
    apns.mark_dead([DEVICE.upper()], timestamp_ms=1_700_000_000_000)
    answer = _send(client, bearer)
    assert answer.status == 410
    assert answer.json() == {"reason": "Unregistered", "timestamp": 1_700_000_000_000}
    assert apns.ledger.counts() == {"410 Unregistered": 1}


def test_dead_tokens_marked_over_the_admin_api_get_the_chosen_reason(apns, client, bearer, session):
    marked = session.post(
        apns.url + "/_emulator/dead",
        json={"tokens": [DEVICE], "reason": "ExpiredToken"},
        verify=apns.ca_path,
        timeout=5,
    ).json()
    answer = _send(client, bearer)
    assert answer.status == 410
    assert answer.json() == {"reason": "ExpiredToken", "timestamp": marked["timestamp_ms"]}
    assert abs(marked["timestamp_ms"] / 1000 - time.time()) < 60


def test_http11_is_refused_with_a_clear_405(apns, session, bearer):
    answer = session.post(
        f"{apns.url}/3/device/{DEVICE}",
        headers={"authorization": f"bearer {bearer}", "apns-topic": TOPIC},
        data=ALERT,
        verify=apns.ca_path,
        timeout=5,
    )
    assert answer.status_code == 405
    assert answer.json()["reason"] == "MethodNotAllowed"
    assert "HTTP/2" in answer.json()["detail"]
    assert len(apns.ledger) == 0


@pytest.mark.parametrize(
    ("knob", "status", "reason"),
    [
        ("internal_error_rate", 500, "InternalServerError"),
        ("unavailable_rate", 503, "ServiceUnavailable"),
        ("throttle_rate", 429, "TooManyRequests"),
        ("auth_error_rate", 403, "InvalidProviderToken"),
        ("bad_request_rate", 400, "BadDeviceToken"),
    ],
)
def test_injected_faults_get_apples_answers(apns, client, bearer, knob, status, reason):
    apns.faults.update(**{knob: 1.0, "retry_after_s": 17})
    answer = _send(client, bearer)
    assert (answer.status, answer.json()) == (status, {"reason": reason})
    if status in (429, 503):
        assert answer.headers["retry-after"] == "17"
    assert apns.ledger.counts() == {f"{status} {reason}": 1}


@pytest.mark.parametrize("knob", ["throttle_rate", "bad_request_rate"])
def test_an_injected_fault_answers_with_the_requests_apns_id(apns, client, bearer, knob):
    """Clients such as aioapns match answers to requests by apns-id: a fresh id would orphan the request."""
    apns.faults.update(**{knob: 1.0})
    apns_id = "7a0f8d3e-1c2b-4a5d-9e8f-0123456789ab"
    assert _send(client, bearer, headers={"apns-id": apns_id}).headers["apns-id"] == apns_id


def test_aioapns_without_alpn_sends_through_the_emulator(apns, apns_key, monkeypatch):
    pytest.importorskip("aioapns")
    from aioapns import APNs, NotificationRequest
    from aioapns.connection import APNsProductionClientProtocol

    # aioapns offers no ALPN and always dials Apple; point it here and trust only the emulator CA.
    monkeypatch.setattr(APNsProductionClientProtocol, "APNS_SERVER", "127.0.0.1")
    monkeypatch.setattr(APNsProductionClientProtocol, "APNS_PORT", apns.port)
    apns.mark_dead(["dd" * 32], timestamp_ms=1_700_000_000_123)

    async def send_all() -> tuple[list[Any], Any]:
        client = APNs(
            key=apns_key.private_key_pem,
            key_id=KEY_ID,
            team_id=TEAM_ID,
            topic=TOPIC,
            ssl_context=ssl.create_default_context(cafile=apns.ca_path),
        )
        try:
            sent = await asyncio.gather(
                *(
                    client.send_notification(
                        NotificationRequest(device_token=DEVICE, message={"aps": {"alert": f"n{i}"}})
                    )
                    for i in range(200)
                )
            )
            dead = await client.send_notification(NotificationRequest(device_token="dd" * 32, message={"aps": {}}))
        finally:
            client.pool.close()
        return sent, dead

    sent, dead = asyncio.run(send_all())
    assert all(result.is_successful for result in sent)
    assert (dead.status, dead.description, dead.timestamp) == ("410", "Unregistered", 1_700_000_000_123)
    assert sorted(entry.data["payload"]["aps"]["alert"] for entry in apns.ledger.entries()) == sorted(
        f"n{i}" for i in range(200)
    )
