"""VAPID: a JWT per push-service origin with the right claims, cached for half its life, from any key format."""

import base64
import re
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from push_core.providers.webpush.vapid import VapidKeyError, VapidSigner, audience, generate_vapid_key

T0 = 1_700_000_000.0
SUBJECT = "mailto:ops@example.com"
HEADER = re.compile(r"^vapid t=(?P<t>[\w-]+\.[\w-]+\.[\w-]+), k=(?P<k>[\w-]+)$")


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _raw(key: ec.EllipticCurvePrivateKey) -> str:
    return _b64(key.private_numbers().private_value.to_bytes(32, "big"))


def _claims(header: str, public_key: str) -> dict[str, Any]:
    match = HEADER.match(header)
    assert match is not None, header
    assert match["k"] == public_key
    verifying_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _unb64(public_key))
    assert jwt.get_unverified_header(match["t"]) == {"alg": "ES256", "typ": "JWT"}
    claims: dict[str, Any] = jwt.decode(
        match["t"], verifying_key, algorithms=["ES256"], options={"verify_aud": False, "verify_exp": False}
    )
    return claims


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc:def", "https://fcm.googleapis.com"),
        ("https://updates.push.services.mozilla.com:443/wpush/v2/gAAA", "https://updates.push.services.mozilla.com"),
        ("https://push.example.net:8443/p/1", "https://push.example.net:8443"),
        ("HTTPS://Web.Push.Apple.COM/QGm", "https://web.push.apple.com"),
        ("https://user:pw@web.push.apple.com/QGm", "https://web.push.apple.com"),
        ("http://127.0.0.1:8080/push", "http://127.0.0.1:8080"),
        ("http://localhost:80/push", "http://localhost"),
        ("https://[::1]:4443/push", "https://[::1]:4443"),
        ("https://push.example.net?x=1", "https://push.example.net"),
    ],
)
def test_the_audience_is_the_endpoints_origin(key, clock, endpoint, expected):
    signer = VapidSigner(_raw(key), SUBJECT, clock=clock)

    claims = _claims(signer.authorization(endpoint), signer.public_key)

    assert audience(endpoint) == expected
    assert claims == {"aud": expected, "exp": int(T0) + 12 * 3600, "sub": SUBJECT}


@pytest.mark.parametrize(
    "endpoint", ["fcm.googleapis.com/fcm/send/x", "ftp://push.example.net/x", "https:///x", "https://h:99999/"]
)
def test_an_endpoint_without_an_http_origin_is_refused(key, clock, endpoint):
    with pytest.raises(ValueError, match="endpoint"):
        VapidSigner(_raw(key), SUBJECT, clock=clock).authorization(endpoint)


def test_expiry_follows_the_configured_lifetime(key, clock):
    signer = VapidSigner(_raw(key), SUBJECT, clock=clock, lifetime_s=3600)

    assert _claims(signer.authorization("https://a.example/1"), signer.public_key)["exp"] == int(T0) + 3600


def test_one_jwt_serves_every_endpoint_of_an_origin_until_half_its_lifetime(key, clock):
    signer = VapidSigner(_raw(key), SUBJECT, clock=clock, lifetime_s=12 * 3600)
    first = signer.authorization("https://fcm.googleapis.com/fcm/send/one")

    clock.now = T0 + 6 * 3600 - 1
    assert signer.authorization("https://fcm.googleapis.com/fcm/send/two") == first

    clock.now = T0 + 6 * 3600
    renewed = signer.authorization("https://fcm.googleapis.com/fcm/send/three")
    assert renewed != first
    assert _claims(renewed, signer.public_key)["exp"] == int(clock.now) + 12 * 3600


def test_each_origin_gets_its_own_jwt(key, clock):
    signer = VapidSigner(_raw(key), SUBJECT, clock=clock)

    fcm = signer.authorization("https://fcm.googleapis.com/fcm/send/one")
    mozilla = signer.authorization("https://updates.push.services.mozilla.com/wpush/v2/x")

    assert _claims(fcm, signer.public_key)["aud"] == "https://fcm.googleapis.com"
    assert _claims(mozilla, signer.public_key)["aud"] == "https://updates.push.services.mozilla.com"
    assert signer.authorization("https://fcm.googleapis.com/fcm/send/two") == fcm


def _encodings(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    def pem(fmt: serialization.PrivateFormat) -> str:
        return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()

    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    return {
        "pkcs8-pem": pem(serialization.PrivateFormat.PKCS8),
        "sec1-pem": pem(serialization.PrivateFormat.TraditionalOpenSSL),
        "pem-escaped-newlines": pem(serialization.PrivateFormat.PKCS8).replace("\n", "\\n"),
        "raw-base64url": _b64(raw),
        "raw-base64url-padded": base64.urlsafe_b64encode(raw).decode(),
        "der-base64url": _b64(der),
    }


@pytest.mark.parametrize("form", list(_encodings(ec.generate_private_key(ec.SECP256R1()))))
def test_pem_and_raw_keys_give_the_same_identity(key, clock, form):
    expected_public = _b64(
        key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )

    signer = VapidSigner(_encodings(key)[form], SUBJECT, clock=clock)

    assert signer.public_key == expected_public
    assert _claims(signer.authorization("https://a.example/x"), expected_public)["aud"] == "https://a.example"


def test_a_generated_key_pair_signs_verifiable_jwts(clock):
    private_key, public_key = generate_vapid_key()

    signer = VapidSigner(private_key, SUBJECT, clock=clock)

    assert len(_unb64(private_key)) == 32
    assert len(_unb64(public_key)) == 65
    assert _unb64(public_key)[0] == 4
    assert signer.public_key == public_key
    assert _claims(signer.authorization("https://a.example/x"), public_key)["sub"] == SUBJECT
    assert generate_vapid_key()[0] != private_key


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize(
    "private_key",
    [
        pytest.param("not-a-key", id="garbage"),
        pytest.param(_b64(b"\x01" * 31), id="31-bytes"),
        pytest.param(_b64(b"\x00" * 32), id="zero-scalar"),
        pytest.param(_b64(b"\xff" * 32), id="scalar-above-order"),
        pytest.param(_pem(ec.generate_private_key(ec.SECP384R1())), id="p384"),
        pytest.param(_pem(rsa.generate_private_key(65537, 2048)), id="rsa"),
        pytest.param("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", id="truncated-pem"),
    ],
)
def test_unusable_keys_raise_vapid_key_error(private_key):
    with pytest.raises(VapidKeyError):
        VapidSigner(private_key, SUBJECT)


@pytest.mark.parametrize("subject", ["mailto:ops@example.com", "https://example.com/contact"])
def test_mailto_and_https_subjects_are_accepted(key, subject):
    assert VapidSigner(_raw(key), subject).subject == subject


@pytest.mark.parametrize("subject", ["ops@example.com", "http://example.com", "mailto:", "https://", ""])
def test_other_subjects_are_refused(key, subject):
    with pytest.raises(ValueError, match="subject"):
        VapidSigner(_raw(key), subject)


@pytest.mark.parametrize("lifetime_s", [0, -1, 24 * 3600 + 1])
def test_lifetimes_beyond_24_hours_or_not_positive_are_refused(key, lifetime_s):
    with pytest.raises(ValueError, match="lifetime_s"):
        VapidSigner(_raw(key), SUBJECT, lifetime_s=lifetime_s)
