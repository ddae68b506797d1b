"""Web Push emulator: messages encrypted by independent code are decrypted into the ledger; VAPID and header checks."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import http_ece
import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dev.emulators import WebPushEmulator
from tests.emulators.conftest import h2_client

SUBJECT = "mailto:ops@example.com"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VapidKey:
    """An application server's VAPID key pair."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.public = _b64(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def token(self, aud: str, **overrides: Any) -> str:
        claims = {"aud": aud, "exp": int(time.time()) + 12 * 3600, "sub": SUBJECT}
        claims.update(overrides)
        return jwt.encode({k: v for k, v in claims.items() if v is not None}, self.private_key, algorithm="ES256")

    def header(self, aud: str, **overrides: Any) -> str:
        return f"vapid t={self.token(aud, **overrides)}, k={self.public}"


def encrypt(subscription: dict[str, Any], plaintext: bytes, **options: Any) -> bytes:
    """RFC 8291 aes128gcm with http_ece, as an application server would."""
    return bytes(
        http_ece.encrypt(
            plaintext,
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=_unb64(subscription["keys"]["p256dh"]),
            auth_secret=_unb64(subscription["keys"]["auth"]),
            version="aes128gcm",
            **options,
        )
    )


@pytest.fixture(scope="module")
def vapid() -> VapidKey:
    return VapidKey()


@pytest.fixture
def subscription(webpush: WebPushEmulator) -> dict[str, Any]:
    return webpush.create_subscription()


def _push(
    session: requests.Session,
    webpush: WebPushEmulator,
    endpoint: str,
    body: bytes,
    headers: dict[str, str | None],
) -> requests.Response:
    return session.post(
        endpoint,
        data=body,
        headers={k: v for k, v in headers.items() if v is not None},
        verify=webpush.ca_path,
        timeout=5,
    )


def _headers(webpush: WebPushEmulator, vapid: VapidKey, **changes: str | None) -> dict[str, str | None]:
    headers: dict[str, str | None] = {
        "authorization": vapid.header(webpush.url),
        "ttl": "60",
        "content-encoding": "aes128gcm",
    }
    headers.update(changes)
    return headers


def test_a_subscription_looks_like_push_subscription_to_json(webpush, subscription):
    assert subscription["endpoint"].startswith(webpush.url + "/push/")
    assert subscription["expirationTime"] is None
    p256dh = _unb64(subscription["keys"]["p256dh"])
    assert (len(p256dh), p256dh[0]) == (65, 4)
    assert len(_unb64(subscription["keys"]["auth"])) == 16


def test_a_message_encrypted_with_http_ece_and_vapid_signed_with_pyjwt_is_decrypted_into_the_ledger(
    webpush, subscription, vapid, session
):
    plaintext = json.dumps({"title": "Hello", "body": "héllo wörld"}).encode()
    answer = _push(
        session,
        webpush,
        subscription["endpoint"],
        encrypt(subscription, plaintext),
        _headers(webpush, vapid, urgency="high", topic="news-1"),
    )
    assert answer.status_code == 201
    assert answer.headers["location"].startswith(webpush.url + "/m/")
    (entry,) = webpush.ledger.entries()
    assert entry.data["plaintext"] == plaintext.decode()
    assert _unb64(entry.data["plaintext_b64"]) == plaintext
    assert entry.data["endpoint"] == subscription["endpoint"]
    assert (entry.data["ttl"], entry.data["urgency"], entry.data["topic"]) == (60, "high", "news-1")
    assert entry.data["vapid"]["k"] == vapid.public
    assert entry.data["vapid"]["claims"]["aud"] == webpush.url
    assert entry.data["vapid"]["claims"]["sub"] == SUBJECT


def test_pywebpush_sends_a_message_the_emulator_decrypts(webpush, subscription, session):
    pywebpush = pytest.importorskip("pywebpush")
    from py_vapid import Vapid

    sender = Vapid()
    sender.generate_keys()
    session.verify = webpush.ca_path
    answer = pywebpush.webpush(
        subscription,
        data="from pywebpush",
        vapid_private_key=sender,
        vapid_claims={"sub": SUBJECT},
        ttl=30,
        requests_session=session,
        headers={"Urgency": "low"},
    )
    assert answer.status_code == 201
    (entry,) = webpush.ledger.entries()
    assert entry.data["plaintext"] == "from pywebpush"
    assert (entry.data["vapid"]["scheme"], entry.data["ttl"], entry.data["urgency"]) == ("vapid", 30, "low")


def test_the_draft_webpush_authorization_with_crypto_key_is_accepted(webpush, subscription, vapid, session):
    headers = _headers(
        webpush,
        vapid,
        authorization=f"WebPush {vapid.token(webpush.url)}",
        **{"crypto-key": f"dh=abc;p256ecdsa={vapid.public}"},
    )
    answer = _push(session, webpush, subscription["endpoint"], encrypt(subscription, b"draft"), headers)
    assert answer.status_code == 201
    assert webpush.ledger.entries()[0].data["vapid"]["scheme"] == "webpush"


def test_a_message_over_http2_is_accepted(webpush, subscription, vapid):
    path = subscription["endpoint"][len(webpush.url) :]
    headers = [(k, v) for k, v in _headers(webpush, vapid).items() if v is not None]
    with h2_client(webpush) as client:
        answer = client.request("POST", path, headers, encrypt(subscription, b"over h2"))
    assert answer.status == 201
    assert webpush.ledger.entries()[0].data["plaintext"] == "over h2"
    assert webpush.ledger.entries()[0].protocol == "h2"


def test_a_message_without_payload_is_accepted(webpush, subscription, vapid, session):
    answer = _push(
        session, webpush, subscription["endpoint"], b"", _headers(webpush, vapid, **{"content-encoding": None})
    )
    assert answer.status_code == 201
    assert webpush.ledger.entries()[0].data["plaintext"] is None


@pytest.mark.parametrize(
    ("make_authorization", "status", "reason"),
    [
        (lambda v, url: None, 401, "MissingAuthorization"),
        (lambda v, url: f"Bearer {v.token(url)}", 401, "BadAuthorizationHeader"),
        (lambda v, url: f"vapid t={v.token(url)}", 401, "BadAuthorizationHeader"),
        (lambda v, url: f"vapid t={v.token(url)}, k={VapidKey().public}", 401, "BadVapidSignature"),
        (lambda v, url: f"vapid t={v.token(url)}, k=AAAA", 401, "BadVapidKey"),
        (lambda v, url: v.header("https://push.example.com"), 401, "VapidAudienceMismatch"),
        (lambda v, url: v.header(url + "/push"), 401, "VapidAudienceMismatch"),
        (lambda v, url: v.header(url, exp=int(time.time()) - 10), 401, "VapidExpired"),
        (lambda v, url: v.header(url, exp=None), 401, "VapidExpired"),
        (lambda v, url: v.header(url, exp=int(time.time()) + 25 * 3600), 401, "VapidExpiryTooFar"),
        (lambda v, url: v.header(url, sub=None), 401, "VapidBadSubject"),
        (lambda v, url: v.header(url, sub="ops@example.com"), 401, "VapidBadSubject"),
    ],
    ids=[
        "missing",
        "not-vapid",
        "no-key",
        "signed-by-another-key",
        "key-not-a-point",
        "other-origin",
        "aud-with-path",
        "expired",
        "no-exp",
        "exp-over-24h",
        "no-sub",
        "sub-not-a-uri",
    ],
)
def test_bad_vapid_is_refused(webpush, subscription, vapid, session, make_authorization, status, reason):
    headers = _headers(webpush, vapid, authorization=make_authorization(vapid, webpush.url))
    answer = _push(session, webpush, subscription["endpoint"], encrypt(subscription, b"x"), headers)
    assert (answer.status_code, answer.json()["reason"]) == (status, reason)
    assert len(webpush.ledger) == 0


def test_a_subscription_restricted_to_another_server_key_is_403(webpush, vapid, session):
    restricted = webpush.create_subscription(application_server_key=VapidKey().public)
    answer = _push(session, webpush, restricted["endpoint"], encrypt(restricted, b"x"), _headers(webpush, vapid))
    assert (answer.status_code, answer.json()["reason"]) == (403, "VapidKeyMismatch")
    mine = webpush.create_subscription(application_server_key=vapid.public)
    assert _push(session, webpush, mine["endpoint"], encrypt(mine, b"x"), _headers(webpush, vapid)).status_code == 201


@pytest.mark.parametrize(
    ("changes", "status", "reason"),
    [
        ({"ttl": None}, 400, "MissingTTL"),
        ({"ttl": "soon"}, 400, "BadTTL"),
        ({"urgency": "urgent"}, 400, "BadUrgency"),
        ({"topic": "t" * 33}, 400, "BadTopic"),
        ({"topic": "not/url-safe"}, 400, "BadTopic"),
        ({"content-encoding": "aesgcm"}, 415, "UnsupportedEncoding"),
        ({"content-encoding": None}, 415, "UnsupportedEncoding"),
    ],
)
def test_bad_push_headers_are_refused(webpush, subscription, vapid, session, changes, status, reason):
    answer = _push(
        session, webpush, subscription["endpoint"], encrypt(subscription, b"x"), _headers(webpush, vapid, **changes)
    )
    assert (answer.status_code, answer.json()["reason"]) == (status, reason)


def test_a_body_over_4096_bytes_is_413(webpush, subscription, vapid, session):
    body = encrypt(subscription, b"x" * 4000, rs=8192)
    assert len(body) > 4096
    answer = _push(session, webpush, subscription["endpoint"], body, _headers(webpush, vapid))
    assert (answer.status_code, answer.json()["reason"]) == (413, "PayloadTooLarge")


@pytest.mark.parametrize(
    "make_body",
    [
        lambda mine, other: b"garbage that is not aes128gcm at all",
        lambda mine, other: encrypt(other, b"for someone else"),
        lambda mine, other: encrypt(mine, b"x" * 200, rs=100),
        lambda mine, other: encrypt(mine, b"tampered")[:-1] + b"\x00",
    ],
    ids=["garbage", "other-subscription", "several-records", "tampered"],
)
def test_a_body_that_does_not_decrypt_for_the_subscription_is_400(webpush, subscription, vapid, session, make_body):
    other = webpush.create_subscription()
    answer = _push(session, webpush, subscription["endpoint"], make_body(subscription, other), _headers(webpush, vapid))
    assert (answer.status_code, answer.json()["reason"]) == (400, "DecryptionFailed")


def test_an_unknown_subscription_is_404(webpush, vapid, session):
    answer = _push(session, webpush, webpush.url + "/push/nobody", b"", _headers(webpush, vapid))
    assert (answer.status_code, answer.json()["reason"]) == (404, "NotFound")


@pytest.mark.parametrize(("reason", "status"), [("Gone", 410), ("NotFound", 404)])
def test_a_dead_subscription_gets_its_status(webpush, subscription, vapid, session, reason, status):
    webpush.mark_dead([subscription["endpoint"]], reason=reason)
    answer = _push(session, webpush, subscription["endpoint"], encrypt(subscription, b"x"), _headers(webpush, vapid))
    assert (answer.status_code, answer.json()["reason"]) == (status, reason)
    assert webpush.ledger.counts() == {f"{status} {reason}": 1}


def test_a_subscription_created_over_the_admin_api_accepts_messages(webpush, vapid, session):
    created = session.post(webpush.url + "/_emulator/subscriptions", json={}, verify=webpush.ca_path, timeout=5)
    assert created.status_code == 201
    subscription = created.json()
    answer = _push(
        session, webpush, subscription["endpoint"], encrypt(subscription, b"admin"), _headers(webpush, vapid)
    )
    assert answer.status_code == 201
