"""VAPID (RFC 8292): the application server's ES256 identity, one JWT per push-service origin."""

import base64
import binascii
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

MAX_LIFETIME_S = 24 * 3600  # RFC 8292 §2: exp no more than 24 hours ahead
_DEFAULT_PORTS = {"https": 443, "http": 80}
# Push services are a handful of origins; the bounds only stop a flood of odd endpoints growing memory.
_MAX_AUDIENCES = 256


class VapidKeyError(ValueError):
    """The VAPID private key is neither a P-256 PEM key nor a base64url raw 32-byte scalar."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_point(key: ec.EllipticCurvePrivateKey) -> str:
    return _b64encode(
        key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )


def load_vapid_key(private_key: str) -> ec.EllipticCurvePrivateKey:
    """Parse a VAPID private key: PEM, or base64url of the raw 32-byte scalar (or of DER, as py-vapid stores)."""
    text = private_key.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.replace("\\n", "\n").encode(), password=None)
        else:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            if len(raw) == 32:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm) as error:
        raise VapidKeyError("not a PEM key or a base64url raw P-256 private key") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise VapidKeyError("not a P-256 key")
    return key


def audience(endpoint: str) -> str:
    """The origin of a push endpoint as the `aud` claim: scheme://host[:port], lower case, default port omitted."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as error:
        raise ValueError("endpoint is not a URL") from error
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError("endpoint is not an http(s) URL with a host")
    if ":" in host:  # IPv6 literal: hostname drops the brackets the origin keeps
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class VapidSigner:
    """`Authorization: vapid t=..., k=...` for one application server key, cached per push-service origin.

    Safe to share between threads: at worst two threads sign the same audience at once, and both JWTs are valid.
    """

    def __init__(
        self,
        private_key: str,
        subject: str,
        *,
        clock: Callable[[], float] = time.time,
        lifetime_s: int = 12 * 3600,
    ) -> None:
        if not (
            (subject.startswith("mailto:") and len(subject) > len("mailto:"))
            or (subject.startswith("https://") and len(subject) > len("https://"))
        ):
            raise ValueError("subject must be a mailto: or https: URI")
        if not 0 < lifetime_s <= MAX_LIFETIME_S:
            raise ValueError(f"lifetime_s must be within (0, {MAX_LIFETIME_S}]")
        self._key = load_vapid_key(private_key)
        self.subject = subject
        self.public_key = _public_point(self._key)
        self._clock = clock
        self._lifetime_s = lifetime_s
        # endpoint prefix up to the path -> audience: skips URL parsing for every endpoint of a known service.
        self._audiences: dict[str, str] = {}
        # audience -> (header, refresh at): a JWT is reused until half its lifetime has passed.
        self._headers: dict[str, tuple[str, float]] = {}

    def authorization(self, endpoint: str) -> str:
        """The Authorization header value for a request to endpoint."""
        start = endpoint.find("://") + 3
        end = endpoint.find("/", start)
        prefix = endpoint if end < 0 else endpoint[:end]
        aud = self._audiences.get(prefix)
        if aud is None:
            aud = audience(endpoint)
            if len(self._audiences) >= _MAX_AUDIENCES:
                self._audiences.clear()
            self._audiences[prefix] = aud
        cached = self._headers.get(aud)
        now = self._clock()
        if cached is not None and now < cached[1]:
            return cached[0]
        return self._sign(aud, now)

    def _sign(self, aud: str, now: float) -> str:
        token = jwt.encode(
            {"aud": aud, "exp": int(now) + self._lifetime_s, "sub": self.subject}, self._key, algorithm="ES256"
        )
        header = f"vapid t={token}, k={self.public_key}"
        if len(self._headers) >= _MAX_AUDIENCES:
            self._headers.clear()
        self._headers[aud] = (header, now + self._lifetime_s / 2)
        return header


def generate_vapid_key() -> tuple[str, str]:
    """A new VAPID key pair: (private key as base64url raw scalar, public key as base64url uncompressed point)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return _b64encode(key.private_numbers().private_value.to_bytes(32, "big")), _public_point(key)
