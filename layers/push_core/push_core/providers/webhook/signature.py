"""Webhook signatures: `Pushlane-Signature: t=<unix time>,v1=<hex HMAC-SHA256>` over "<t>." + body.

The timestamp is signed with the body so a captured request cannot be replayed outside the tolerance;
several v1= values let a receiver accept either secret while one is being rotated.
"""

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Pushlane-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a marker that says what the string is, not a secret
# More signatures than this in one header is not rotation; refuse to spend HMAC comparisons on it.
_MAX_SIGNATURES = 8


def _signature(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.digest(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hex()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The Pushlane-Signature header value for body sent at timestamp (unix seconds)."""
    return f"t={timestamp},v1={_signature(secret, body, timestamp)}"


def verify(secret: str, body: bytes, header: str, *, now: int, tolerance_s: int = 300) -> bool:
    """Whether header signs body with secret, at a timestamp within tolerance_s of now (either direction).

    Malformed headers are simply not valid; comparisons run in constant time.
    """
    timestamp: int | None = None
    candidates: list[bytes] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            return False
        if name == "t":
            if timestamp is not None or not (value.isascii() and value.isdigit()):
                return False
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value.encode())
        # other schemes (v0, future versions) are ignored, so senders can add one without breaking receivers
    if timestamp is None or not candidates or len(candidates) > _MAX_SIGNATURES:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = _signature(secret, body, timestamp).encode()
    matched = False
    for candidate in candidates:  # compare every candidate: which one matched must not show in the timing
        matched |= hmac.compare_digest(expected, candidate)
    return matched


def new_webhook_secret() -> str:
    """A new signing secret: "whsec_" and 32 random bytes, base64url."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)
