"""Web Push service emulator (RFC 8030 delivery, RFC 8292 VAPID, RFC 8291 aes128gcm decrypted with http_ece).

Subscriptions are created through the admin or Python API; the emulator holds each one's P-256 private key
and auth secret, as a browser would, and decrypts every message with `http_ece`, an implementation
independent of pushlane's own, so the plaintext in the ledger proves pushlane's encryption right.

Checks, in order: unknown subscription (404), VAPID (401; 403 when the subscription was created for another
application server key), TTL / Urgency / Topic headers (400), dead subscription (410, or 404 when marked
"NotFound"), size (413), Content-Encoding (415), decryption (400); then 201 with Location.

Authorization forms accepted: RFC 8292 `vapid t=<JWT>, k=<key>`, and the draft form pywebpush's Vapid01
sends, `WebPush <JWT>` with `Crypto-Key: p256ecdsa=<key>` (pywebpush 2.5.0 itself sends the RFC form).

Ledger `data` of an accepted message: subscription_id, endpoint, message_id, ttl, urgency, topic,
content_encoding, vapid ({"scheme", "k", "claims"}), plaintext (UTF-8 text, or null when binary or empty),
plaintext_b64 (exact bytes, base64url), body_size.
"""

from __future__ import annotations

import base64
import re
import secrets
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dev.emulators import admin
from dev.emulators.admin import AdminHandler, BadAdminRequest
from dev.emulators.emulator import UrlTargetEmulator
from dev.emulators.faults import FaultKind
from dev.emulators.server import EmulatorRequest, EmulatorResponse

PUSH_PATH = "/push/"
MAX_BODY = 4096
MAX_VAPID_LIFETIME_S = 24 * 3600
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
# aes128gcm header: salt (16) + rs (4) + idlen (1) + keyid; RFC 8291 puts the sender's 65-byte key in keyid.
_HEADER_FIXED = 21
_SENDER_KEY_LENGTH = 65

# reason → (HTTP status, message).
WEBPUSH_ERRORS: dict[str, tuple[int, str]] = {
    "MissingAuthorization": (401, "VAPID authorization is required"),
    "BadAuthorizationHeader": (401, "Authorization header is not a VAPID header"),
    "BadVapidKey": (401, "VAPID public key is not a P-256 point"),
    "BadVapidSignature": (401, "VAPID JWT signature does not verify"),
    "VapidAudienceMismatch": (401, "VAPID aud is not this push service's origin"),
    "VapidExpired": (401, "VAPID exp is missing or in the past"),
    "VapidExpiryTooFar": (401, "VAPID exp is more than 24 hours ahead"),
    "VapidBadSubject": (401, "VAPID sub must be a mailto: or https: URI"),
    "VapidRejected": (401, "the push service rejected the VAPID credentials"),
    "VapidKeyMismatch": (403, "VAPID key is not the subscription's application server key"),
    "MissingTTL": (400, "TTL header is required"),
    "BadTTL": (400, "TTL must be a non-negative integer"),
    "BadUrgency": (400, "Urgency must be very-low, low, normal or high"),
    "BadTopic": (400, "Topic must be at most 32 URL-safe base64 characters"),
    "DecryptionFailed": (400, "the body does not decrypt as aes128gcm for this subscription"),
    "BadRequest": (400, "the push service refused the request"),
    "NotFound": (404, "no such subscription"),
    "Gone": (410, "subscription has expired or was unsubscribed"),
    "MethodNotAllowed": (405, "POST only"),
    "PayloadTooLarge": (413, "body larger than 4096 bytes"),
    "UnsupportedEncoding": (415, "Content-Encoding must be aes128gcm"),
    "TooManyRequests": (429, "too many requests"),
    "InternalServerError": (500, "internal error"),
    "ServiceUnavailable": (503, "service unavailable"),
}

FAULT_REASON: dict[FaultKind, str] = {
    FaultKind.INTERNAL_ERROR: "InternalServerError",
    FaultKind.UNAVAILABLE: "ServiceUnavailable",
    FaultKind.THROTTLED: "TooManyRequests",
    FaultKind.AUTH_ERROR: "VapidRejected",
    FaultKind.BAD_REQUEST: "BadRequest",
}

_TOPIC = re.compile(r"[A-Za-z0-9_\-]{1,32}")
_TTL = re.compile(r"\d{1,10}")
_SUBJECT = re.compile(r"(mailto:\S+|https://\S+)")
_DEFAULT_PORTS = {"https": 443, "http": 80}


def b64url(data: bytes) -> str:
    """Unpadded base64url, as Web Push keys are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Subscription:
    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    public_key: bytes
    auth_secret: bytes
    application_server_key: bytes | None


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def _vapid_parts(request: EmulatorRequest) -> tuple[str, str, str]:
    """(scheme, JWT, key) from either Authorization form."""
    authorization = request.headers.get("authorization")
    if not authorization:
        raise _Refused("MissingAuthorization")
    scheme, _, rest = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "vapid":
        params: dict[str, str] = {}
        for item in rest.split(","):
            name, _, value = item.strip().partition("=")
            params[name.strip().lower()] = value.strip()
        token, key = params.get("t", ""), params.get("k", "")
    elif scheme == "webpush":
        token = rest.strip()
        key = ""
        for entry in re.split(r"[;,]", request.headers.get("crypto-key", "")):
            name, _, value = entry.strip().partition("=")
            if name.strip().lower() == "p256ecdsa":
                key = value.strip().strip('"')
    else:
        raise _Refused("BadAuthorizationHeader")
    if not token or not key:
        raise _Refused("BadAuthorizationHeader")
    return scheme, token, key


class WebPushEmulator(UrlTargetEmulator):
    """A push service: create subscriptions, then POST encrypted messages to their endpoints."""

    kind: ClassVar[str] = "webpush"
    dead_reasons: ClassVar[tuple[str, ...]] = ("Gone", "NotFound")
    delivery_path = PUSH_PATH
    fault_reasons = FAULT_REASON
    errors = WEBPUSH_ERRORS

    def fault_key(self, request: EmulatorRequest) -> str:
        # Every send is freshly encrypted, so only the subscription says which request this is.
        return request.path

    def __init__(self, **options: Any) -> None:
        self._subscriptions: dict[str, _Subscription] = {}
        self._registry_lock = threading.Lock()
        self._message_serial = 0
        super().__init__(**options)

    # -- Python API --------------------------------------------------------------------------------------

    def create_subscription(self, application_server_key: str | None = None) -> dict[str, Any]:
        """A new browser subscription; returns what PushSubscription.toJSON() gives.

        With `application_server_key` (b64url P-256 point), only that VAPID key may push to it (else 403).
        """
        server_key = b64url_decode(application_server_key) if application_server_key else None
        if server_key is not None:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), server_key)  # ValueError if not a point
        private_key = ec.generate_private_key(ec.SECP256R1())
        public_key = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        subscription_id = secrets.token_urlsafe(24)
        subscription = _Subscription(
            subscription_id,
            f"{self.url}{PUSH_PATH}{subscription_id}",
            private_key,
            public_key,
            secrets.token_bytes(16),
            server_key,
        )
        with self._registry_lock:
            self._subscriptions[subscription_id] = subscription
        return {
            "endpoint": subscription.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(public_key), "auth": b64url(subscription.auth_secret)},
        }

    # -- delivery ----------------------------------------------------------------------------------------

    def _error(self, reason: str, headers: list[tuple[str, str]] | None = None) -> EmulatorResponse:
        status, message = WEBPUSH_ERRORS[reason]
        document = {"code": status, "error": reason, "message": message, "reason": reason}
        return EmulatorResponse.json(status, document, headers or [], reason=reason)

    def serve(self, request: EmulatorRequest) -> EmulatorResponse:
        """Accept (201) or refuse one push message."""
        try:
            return self._accept(request)
        except _Refused as refusal:
            return self._error(refusal.reason)

    def _accept(self, request: EmulatorRequest) -> EmulatorResponse:
        subscription = self._subscriptions.get(request.path[len(PUSH_PATH) :]) if self.is_delivery(request) else None
        if subscription is None:
            raise _Refused("NotFound")
        if request.method != "POST":
            raise _Refused("MethodNotAllowed")
        vapid = self._check_vapid(request, subscription)

        headers = request.headers
        ttl = headers.get("ttl")
        if ttl is None:
            raise _Refused("MissingTTL")
        if not _TTL.fullmatch(ttl.strip()):
            raise _Refused("BadTTL")
        urgency = headers.get("urgency")
        if urgency is not None and urgency not in URGENCIES:
            raise _Refused("BadUrgency")
        topic = headers.get("topic")
        if topic is not None and not _TOPIC.fullmatch(topic):
            raise _Refused("BadTopic")

        mark = self.dead_mark(subscription.id)
        if mark is not None:
            raise _Refused(mark.reason)

        body = request.body
        if len(body) > MAX_BODY:
            raise _Refused("PayloadTooLarge")
        encoding = headers.get("content-encoding")
        plaintext: bytes | None = None
        if body:
            if encoding is None or encoding.strip().lower() != "aes128gcm":
                raise _Refused("UnsupportedEncoding")
            plaintext = self._decrypt(body, subscription)

        with self._registry_lock:
            self._message_serial += 1
            message_id = f"{self._message_serial:x}-{secrets.token_hex(6)}"
        text: str | None = None
        if plaintext:
            try:
                text = plaintext.decode()
            except UnicodeDecodeError:
                text = None
        self.ledger.record(
            method=request.method,
            path=request.path,
            protocol=request.protocol,
            status=201,
            data={
                "subscription_id": subscription.id,
                "endpoint": subscription.endpoint,
                "message_id": message_id,
                "ttl": int(ttl),
                "urgency": urgency,
                "topic": topic,
                "content_encoding": encoding,
                "vapid": vapid,
                "plaintext": text,
                "plaintext_b64": b64url(plaintext or b""),
                "body_size": len(body),
            },
        )
        return EmulatorResponse(201, [("location", f"{self.url}/m/{message_id}"), ("ttl", str(int(ttl)))])

    def _check_vapid(self, request: EmulatorRequest, subscription: _Subscription) -> dict[str, Any]:
        scheme, token, key_text = _vapid_parts(request)
        try:
            key_bytes = b64url_decode(key_text)
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key_bytes)
        except ValueError as exc:
            raise _Refused("BadVapidKey") from exc
        try:
            if jwt.get_unverified_header(token).get("alg") != "ES256":
                raise _Refused("BadVapidSignature")
            claims = jwt.decode(
                token,
                public_key,
                algorithms=["ES256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
        except jwt.InvalidTokenError as exc:
            raise _Refused("BadVapidSignature") from exc
        audience = claims.get("aud")
        if not isinstance(audience, str) or _origin(audience) != _origin(self.url) or urlsplit(audience).path:
            raise _Refused("VapidAudienceMismatch")
        expires = claims.get("exp")
        now = time.time()
        if isinstance(expires, bool) or not isinstance(expires, int | float) or expires <= now:
            raise _Refused("VapidExpired")
        if expires > now + MAX_VAPID_LIFETIME_S:
            raise _Refused("VapidExpiryTooFar")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
            raise _Refused("VapidBadSubject")
        if subscription.application_server_key is not None and key_bytes != subscription.application_server_key:
            raise _Refused("VapidKeyMismatch")
        return {"scheme": scheme, "k": b64url(key_bytes), "claims": claims}

    @staticmethod
    def _decrypt(body: bytes, subscription: _Subscription) -> bytes:
        if len(body) < _HEADER_FIXED:
            raise _Refused("DecryptionFailed")
        record_size = struct.unpack("!L", body[16:20])[0]
        key_length = body[20]
        content = body[_HEADER_FIXED + key_length :]
        # RFC 8291 section 4: one record, keyid = the sender's uncompressed P-256 key.
        if key_length != _SENDER_KEY_LENGTH or len(content) > record_size or not content:
            raise _Refused("DecryptionFailed")
        try:
            plaintext: bytes = http_ece.decrypt(
                body,
                private_key=subscription.private_key,
                auth_secret=subscription.auth_secret,
                version="aes128gcm",
            )
        except (http_ece.ECEException, ValueError, struct.error, IndexError) as exc:
            raise _Refused("DecryptionFailed") from exc
        return plaintext

    # -- admin API ---------------------------------------------------------------------------------------

    def admin_routes(self) -> dict[tuple[str, str], AdminHandler]:
        """subscriptions."""
        return {("POST", "subscriptions"): self._admin_subscriptions}

    def _admin_subscriptions(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        server_key = admin.optional_text(body, "application_server_key")
        try:
            return EmulatorResponse.json(201, self.create_subscription(server_key))
        except ValueError as exc:
            raise BadAdminRequest("application_server_key is not a b64url P-256 public key") from exc
