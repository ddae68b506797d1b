"""RFC 8291 encryption: the RFC's own example byte for byte, an independent decrypter, and refusals."""

import base64

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from push_core.providers.webpush.encryption import MAX_PLAINTEXT_BYTES, RECORD_SIZE, EncryptionError, encrypt

# RFC 8291 Appendix A.
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_UA_PUBLIC = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scalar_key(text: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(_unb64(text), "big"), ec.SECP256R1())


class Subscription:
    """A browser's side: its key pair and auth secret, and what it publishes."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = bytes(range(16))
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.p256dh, self.auth = _b64(public), _b64(self.auth_secret)

    def decrypt(self, body: bytes) -> bytes:
        return bytes(http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth_secret))


def test_the_rfc_8291_example_is_reproduced_byte_for_byte():
    body = encrypt(
        RFC_PLAINTEXT,
        RFC_UA_PUBLIC,
        RFC_AUTH,
        salt=_unb64(RFC_SALT),
        sender_private_key=_scalar_key(RFC_AS_PRIVATE),
    )

    assert _b64(body) == RFC_BODY


def test_padded_subscription_keys_are_accepted():
    padded_auth = RFC_AUTH + "=="
    body = encrypt(
        RFC_PLAINTEXT,
        RFC_UA_PUBLIC + "=",
        padded_auth,
        salt=_unb64(RFC_SALT),
        sender_private_key=_scalar_key(RFC_AS_PRIVATE),
    )

    assert _b64(body) == RFC_BODY


def test_the_rfc_user_agent_decrypts_a_fresh_message_with_an_independent_implementation():
    body = encrypt(RFC_PLAINTEXT, RFC_UA_PUBLIC, RFC_AUTH)

    decrypted = http_ece.decrypt(body, private_key=_scalar_key(RFC_UA_PRIVATE), auth_secret=_unb64(RFC_AUTH))

    assert decrypted == RFC_PLAINTEXT


def test_a_random_subscription_decrypts_what_was_encrypted_for_it():
    subscription = Subscription()
    plaintext = b'{"title":"hello","body":"\xc3\xa9t\xc3\xa9"}' * 5

    assert subscription.decrypt(encrypt(plaintext, subscription.p256dh, subscription.auth)) == plaintext


def test_every_message_gets_a_fresh_salt_and_sender_key():
    subscription = Subscription()
    first = encrypt(b"same", subscription.p256dh, subscription.auth)
    second = encrypt(b"same", subscription.p256dh, subscription.auth)

    assert first[:16] != second[:16]  # salt
    assert first[21:86] != second[21:86]  # sender public key


def test_the_header_is_salt_record_size_and_the_sender_public_key():
    subscription = Subscription()
    body = encrypt(b"x", subscription.p256dh, subscription.auth)

    assert int.from_bytes(body[16:20], "big") == RECORD_SIZE
    assert body[20] == 65
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), body[21:86])
    assert len(body) == 86 + 1 + 1 + 16  # header, plaintext, delimiter, tag


def test_the_largest_plaintext_fills_exactly_one_4096_byte_record():
    subscription = Subscription()
    plaintext = b"a" * MAX_PLAINTEXT_BYTES

    body = encrypt(plaintext, subscription.p256dh, subscription.auth)

    assert MAX_PLAINTEXT_BYTES == 3993
    assert len(body) == RECORD_SIZE
    assert subscription.decrypt(body) == plaintext


def test_an_oversize_plaintext_is_refused():
    subscription = Subscription()

    with pytest.raises(EncryptionError, match="plaintext"):
        encrypt(b"a" * (MAX_PLAINTEXT_BYTES + 1), subscription.p256dh, subscription.auth)


def _off_curve_point() -> str:
    raw = bytearray(_unb64(RFC_UA_PUBLIC))
    raw[-1] ^= 1
    return _b64(bytes(raw))


@pytest.mark.parametrize(
    "p256dh",
    [
        pytest.param(_off_curve_point(), id="not-on-the-curve"),
        pytest.param(_b64(_unb64(RFC_UA_PUBLIC)[:64]), id="64-bytes"),
        pytest.param(_b64(_unb64(RFC_UA_PUBLIC) + b"\x00"), id="66-bytes"),
        pytest.param(_b64(b"\x02" + _unb64(RFC_UA_PUBLIC)[1:33]), id="compressed"),
        pytest.param(_b64(b"\x05" + _unb64(RFC_UA_PUBLIC)[1:]), id="wrong-prefix"),
        pytest.param("", id="empty"),
        pytest.param("clé-publique", id="not-ascii"),
        pytest.param("A", id="bad-base64-length"),
    ],
)
def test_a_bad_p256dh_is_refused(p256dh):
    with pytest.raises(EncryptionError, match="p256dh"):
        encrypt(b"hi", p256dh, RFC_AUTH)


@pytest.mark.parametrize("auth", [_b64(b"\x01" * 15), _b64(b"\x01" * 17), ""])
def test_an_auth_secret_that_is_not_16_bytes_is_refused(auth):
    with pytest.raises(EncryptionError, match="auth"):
        encrypt(b"hi", RFC_UA_PUBLIC, auth)


def test_a_salt_that_is_not_16_bytes_is_refused():
    with pytest.raises(EncryptionError, match="salt"):
        encrypt(b"hi", RFC_UA_PUBLIC, RFC_AUTH, salt=b"short")
