"""Web Push message encryption (RFC 8291) in the aes128gcm content coding (RFC 8188), one record per message.

http_ece implements RFC 8188 generically (records, key ids, legacy codings); a push message is always one
record with a fixed header, which is a few cryptography primitives and four HMACs.
"""

import base64
import binascii
import hmac
import os
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RECORD_SIZE = 4096
# salt(16) + rs(4) + idlen(1) + key id (the sender's 65-byte public key)
HEADER_BYTES = 16 + 4 + 1 + 65
# One record holds header, plaintext, the 0x02 padding delimiter and the 16-byte GCM tag.
MAX_PLAINTEXT_BYTES = RECORD_SIZE - HEADER_BYTES - 1 - 16

_CURVE = ec.SECP256R1()
_ECDH = ec.ECDH()
_RS_IDLEN = RECORD_SIZE.to_bytes(4, "big") + b"\x41"
_KEY_INFO = b"WebPush: info\x00"
# HKDF-Expand's first block is HMAC(PRK, info || 0x01); every output here fits in that one block.
_CEK_INFO = b"Content-Encoding: aes128gcm\x00\x01"
_NONCE_INFO = b"Content-Encoding: nonce\x00\x01"
_LAST_RECORD = b"\x02"


class EncryptionError(ValueError):
    """The message cannot be encrypted for this subscription (bad keys, oversize plaintext)."""


class PlaintextTooLarge(EncryptionError):
    """The plaintext does not fit one record: a problem of the message, for every subscription alike."""


def encrypt(
    plaintext: bytes,
    p256dh: str,
    auth: str,
    *,
    salt: bytes | None = None,
    sender_private_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """The aes128gcm request body carrying plaintext to the subscription with keys p256dh and auth.

    p256dh and auth are the subscription's base64url keys (padding optional). A fresh sender key pair
    and salt are drawn per message; salt and sender_private_key exist to reproduce known vectors.
    """
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise PlaintextTooLarge(f"plaintext is {len(plaintext)} bytes; at most {MAX_PLAINTEXT_BYTES} fit one record")
    ua_public_bytes, ua_public = _subscription_key(p256dh)
    auth_secret = _b64decode(auth, "auth")
    if len(auth_secret) != 16:
        raise EncryptionError("auth is not a 16-byte secret")
    if salt is None:
        salt = os.urandom(16)
    elif len(salt) != 16:
        raise EncryptionError("salt must be 16 bytes")
    sender = sender_private_key if sender_private_key is not None else ec.generate_private_key(_CURVE)
    as_public = sender.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    ecdh_secret = sender.exchange(_ECDH, ua_public)
    # The fixed-size HKDF extract/expand steps are single HMACs: cheaper than building HKDF objects per message.
    ikm = hmac.digest(
        hmac.digest(auth_secret, ecdh_secret, "sha256"), _KEY_INFO + ua_public_bytes + as_public + b"\x01", "sha256"
    )
    prk = hmac.digest(salt, ikm, "sha256")
    cek = hmac.digest(prk, _CEK_INFO, "sha256")[:16]
    nonce = hmac.digest(prk, _NONCE_INFO, "sha256")[:12]
    ciphertext = AESGCM(cek).encrypt(nonce, plaintext + _LAST_RECORD, None)
    return salt + _RS_IDLEN + as_public + ciphertext


@lru_cache(maxsize=1024)
def _subscription_key(p256dh: str) -> tuple[bytes, ec.EllipticCurvePublicKey]:
    # Cached because a warm container often sends the next publication to the same subscribers; a hit
    # saves the point decoding and on-curve check (about 5 µs), a miss costs a dictionary lookup.
    raw = _b64decode(p256dh, "p256dh")
    if len(raw) != 65 or raw[0] != 4:
        raise EncryptionError("p256dh is not an uncompressed P-256 public key (65 bytes, 0x04 first)")
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, raw)
    except ValueError as error:
        raise EncryptionError("p256dh is not a point on P-256") from error
    return raw, key


def _b64decode(value: str, name: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as error:
        raise EncryptionError(f"{name} is not base64url") from error
