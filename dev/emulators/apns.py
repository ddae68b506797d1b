"""APNs emulator: `POST /3/device/<token>` over HTTP/2, token (ES256 JWT) and certificate auth, Apple's reasons.

Checks, in order: path and method (404 BadPath, 405 MethodNotAllowed, HTTP/1.1 refused with 405), duplicate
apns-* headers, auth (403s, 429 TooManyProviderTokenUpdates), device token, topic, push type, priority
(background requires 5), expiration, apns-id, collapse id, payload, then dead tokens (410). Every answer
carries `apns-id`.

Topics: token auth accepts the team's registered bundle ids and their Apple suffixes (`.voip`,
`.complication`, ...); certificate auth (a client certificate from the emulator CA, no authorization
header) takes the bundle id from the certificate and defaults apns-topic to it.

Not Apple's: a payload that is not a JSON object with an `aps` object is answered 400 `BadPayload` (Apple
documents no reason for it).

Ledger `data` of an accepted notification: token, topic, apns_id, push_type, priority, expiration,
collapse_id, headers (every apns-* header), payload (parsed JSON), auth ({"method": "token", "team_id",
"key_id", "iat"} or {"method": "certificate", "topic"}).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dev.emulators import admin
from dev.emulators.admin import AdminHandler, BadAdminRequest
from dev.emulators.emulator import Emulator
from dev.emulators.faults import FaultDecision, FaultKind
from dev.emulators.server import EmulatorRequest, EmulatorResponse
from dev.emulators.tls import ClientCertificate, topic_from_certificate

# Apple's reason → HTTP status.
REASON_STATUS: dict[str, int] = {
    "BadCollapseId": 400,
    "BadDeviceToken": 400,
    "BadExpirationDate": 400,
    "BadMessageId": 400,
    "BadPriority": 400,
    "BadTopic": 400,
    "DeviceTokenNotForTopic": 400,
    "DuplicateHeaders": 400,
    "IdleTimeout": 400,
    "InvalidPushType": 400,
    "MissingDeviceToken": 400,
    "MissingTopic": 400,
    "PayloadEmpty": 400,
    "TopicDisallowed": 400,
    "BadPayload": 400,
    "BadCertificate": 403,
    "BadCertificateEnvironment": 403,
    "ExpiredProviderToken": 403,
    "Forbidden": 403,
    "InvalidProviderToken": 403,
    "MissingProviderToken": 403,
    "BadPath": 404,
    "MethodNotAllowed": 405,
    "ExpiredToken": 410,
    "Unregistered": 410,
    "PayloadTooLarge": 413,
    "TooManyProviderTokenUpdates": 429,
    "TooManyRequests": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
    "Shutdown": 503,
}

# Injected fault → Apple's answer.
FAULT_REASON: dict[FaultKind, str] = {
    FaultKind.INTERNAL_ERROR: "InternalServerError",
    FaultKind.UNAVAILABLE: "ServiceUnavailable",
    FaultKind.THROTTLED: "TooManyRequests",
    FaultKind.AUTH_ERROR: "InvalidProviderToken",
    FaultKind.BAD_REQUEST: "BadDeviceToken",
}

PUSH_TYPES = frozenset(
    {
        "alert",
        "background",
        "voip",
        "location",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
        "pushtotalk",
    }
)
PRIORITIES = frozenset({"10", "5", "1"})
# A registered bundle id also covers the topics Apple derives from it for the other push types.
TOPIC_SUFFIXES = (
    ".voip",
    ".complication",
    ".pushkit.fileprovider",
    ".push-type.liveactivity",
    ".voip-ptt",
    ".location-query",
)
MAX_PAYLOAD = 4096
MAX_VOIP_PAYLOAD = 5120
MAX_COLLAPSE_ID_BYTES = 64
TOKEN_MAX_AGE_S = 3600
# Provider clocks run a little ahead of Apple's sometimes; a JWT "from the future" beyond this is invalid.
CLOCK_SKEW_S = 60
DEVICE_PATH = "/3/device/"

_TOKEN = re.compile(r"[0-9a-fA-F]{64,200}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TOPIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-_]*")
_DIGITS = re.compile(r"\d{1,19}")
# Verified JWTs are remembered by their exact text; the bound keeps a long benchmark from growing it forever.
_JWT_CACHE_LIMIT = 10_000


class _Rejected(Exception):
    """A notification Apple would refuse, with Apple's reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ApnsSigningKey:
    """A token-auth signing key: what a pushlane app is configured with (private_key_pem is None if registered)."""

    team_id: str
    key_id: str
    topics: tuple[str, ...]
    private_key_pem: str | None

    def to_json(self) -> dict[str, Any]:
        """The admin API's shape."""
        return {
            "team_id": self.team_id,
            "key_id": self.key_id,
            "topics": list(self.topics),
            "private_key_pem": self.private_key_pem,
        }


@dataclass(frozen=True)
class _Key:
    team_id: str
    public_key: ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class _VerifiedJwt:
    team_id: str
    key_id: str
    issued_at: int


def _bundle_of(topic: str) -> str:
    for suffix in TOPIC_SUFFIXES:
        if topic.endswith(suffix):
            return topic[: -len(suffix)]
    return topic


class ApnsEmulator(Emulator):
    """APNs provider API. Register signing keys (or client certificates) and topics, then send."""

    kind: ClassVar[str] = "apns"
    dead_reasons: ClassVar[tuple[str, ...]] = ("Unregistered", "ExpiredToken")

    def __init__(self, *, token_update_min_interval_s: float | None = None, **options: Any) -> None:
        self._keys: dict[str, _Key] = {}
        self._team_topics: dict[str, set[str]] = {}
        self._token_topics: dict[str, str] = {}
        self._jwt_cache: dict[str, _VerifiedJwt] = {}
        self._team_current_jwt: dict[str, tuple[str, float]] = {}
        self._registry_lock = threading.Lock()
        # Apple's "no more than once every 20 minutes" is off by default: tests mint tokens often.
        self.token_update_min_interval_s = token_update_min_interval_s
        super().__init__(**options)

    # -- Python API --------------------------------------------------------------------------------------

    def create_signing_key(self, team_id: str, key_id: str, topics: list[str] | tuple[str, ...] = ()) -> ApnsSigningKey:
        """Generate a P-256 key for (team_id, key_id), register its public half and `topics`; returns it."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self._register(team_id, key_id, private_key.public_key(), topics)
        return ApnsSigningKey(team_id, key_id, tuple(topics), pem)

    def register_public_key(
        self, team_id: str, key_id: str, public_key_pem: str, topics: list[str] | tuple[str, ...] = ()
    ) -> ApnsSigningKey:
        """Accept tokens signed by the private half of `public_key_pem` (a P-256 public key PEM)."""
        public_key = serialization.load_pem_public_key(public_key_pem.encode())
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP256R1):
            raise ValueError("APNs signing keys are P-256 EC keys")
        self._register(team_id, key_id, public_key, topics)
        return ApnsSigningKey(team_id, key_id, tuple(topics), None)

    def _register(
        self, team_id: str, key_id: str, public_key: ec.EllipticCurvePublicKey, topics: list[str] | tuple[str, ...]
    ) -> None:
        with self._registry_lock:
            self._keys[key_id] = _Key(team_id, public_key)
            self._team_topics.setdefault(team_id, set()).update(topics)
            # A replaced key must not keep validating tokens cached under the old one.
            self._jwt_cache = {}

    def register_topics(self, team_id: str, topics: list[str] | tuple[str, ...]) -> list[str]:
        """Allow `topics` (bundle ids) for the team; returns all its topics."""
        with self._registry_lock:
            team_topics = self._team_topics.setdefault(team_id, set())
            team_topics.update(topics)
            return sorted(team_topics)

    def register_device_token(self, token: str, topic: str) -> None:
        """Bind a device token to one app: a send with another topic gets DeviceTokenNotForTopic."""
        self._token_topics[token.lower()] = topic

    def dead_key(self, token: str) -> str:
        """Device tokens are hex: case does not matter."""
        return token.lower()

    def issue_client_certificate(self, topic: str) -> ClientCertificate:
        """A client certificate (from the emulator CA) for certificate-based auth to `topic`."""
        return self.authority.issue_client_certificate(topic)

    def describe(self) -> dict[str, Any]:
        """URL plus the registered teams and their topics."""
        with self._registry_lock:
            teams = {team: sorted(topics) for team, topics in self._team_topics.items()}
        return {"url": self.url, "teams": teams}

    # -- delivery ----------------------------------------------------------------------------------------

    def is_delivery(self, request: EmulatorRequest) -> bool:
        """POSTs under /3/device/ over HTTP/2."""
        return request.protocol == "h2" and request.path.startswith(DEVICE_PATH)

    def fault_response(self, decision: FaultDecision, request: EmulatorRequest) -> EmulatorResponse:
        """Apple's answer for an injected fault (Retry-After added for 429 and 503)."""
        reason = FAULT_REASON[decision.kind]
        given = request.headers.get("apns-id")  # Apple answers with the request's apns-id, as on success
        headers = [("apns-id", given if given is not None and _UUID.fullmatch(given) else str(uuid.uuid4()))]
        if REASON_STATUS[reason] in (429, 503):
            headers.append(("retry-after", str(decision.retry_after_s)))
        return self._error(reason, headers)

    def serve(self, request: EmulatorRequest) -> EmulatorResponse:
        """Validate one notification as Apple does and answer 200 with apns-id, or Apple's error."""
        apns_id = str(uuid.uuid4())
        if request.protocol != "h2":
            # Apple serves HTTP/2 only; a clear 405 is kinder to a misconfigured client than a dead socket.
            return EmulatorResponse.json(
                405,
                {"reason": "MethodNotAllowed", "detail": "APNs answers HTTP/2 only (TLS ALPN h2)"},
                [("apns-id", apns_id)],
                reason="MethodNotAllowed",
            )
        try:
            apns_id = self._check_path(request, apns_id)
            return self._deliver(request, apns_id)
        except _Rejected as rejection:
            return self._error(rejection.reason, [("apns-id", apns_id)])

    def _error(self, reason: str, headers: list[tuple[str, str]], timestamp_ms: int | None = None) -> EmulatorResponse:
        document: dict[str, Any] = {"reason": reason}
        if timestamp_ms is not None:
            document["timestamp"] = timestamp_ms
        return EmulatorResponse.json(REASON_STATUS[reason], document, headers, reason=reason)

    def _check_path(self, request: EmulatorRequest, apns_id: str) -> str:
        if not request.path.startswith(DEVICE_PATH) and request.path != DEVICE_PATH.rstrip("/"):
            raise _Rejected("BadPath")
        if request.method != "POST":
            raise _Rejected("MethodNotAllowed")
        given = request.headers.get("apns-id")
        if given is not None and _UUID.fullmatch(given):
            return given
        return apns_id

    def _deliver(self, request: EmulatorRequest, apns_id: str) -> EmulatorResponse:
        headers = request.headers
        apns_headers = {name: value for name, value in request.header_list if name.startswith("apns-")}
        if len(apns_headers) != sum(1 for name, _ in request.header_list if name.startswith("apns-")) or (
            request.header_count("authorization") > 1
        ):
            raise _Rejected("DuplicateHeaders")
        auth = self._authenticate(request)

        token = request.path[len(DEVICE_PATH) :] if request.path.startswith(DEVICE_PATH) else ""
        if not token:
            raise _Rejected("MissingDeviceToken")
        if not _TOKEN.fullmatch(token):
            raise _Rejected("BadDeviceToken")

        topic = self._check_topic(headers.get("apns-topic"), auth, token)

        push_type = headers.get("apns-push-type", "alert")
        if push_type not in PUSH_TYPES:
            raise _Rejected("InvalidPushType")
        priority = headers.get("apns-priority", "10")
        # Background notifications must be sent at priority 5 (PROTOCOLS.md; absent means 10).
        if priority not in PRIORITIES or (push_type == "background" and priority != "5"):
            raise _Rejected("BadPriority")
        expiration = headers.get("apns-expiration")
        if expiration is not None and not _DIGITS.fullmatch(expiration):
            raise _Rejected("BadExpirationDate")
        given_id = headers.get("apns-id")
        if given_id is not None and not _UUID.fullmatch(given_id):
            raise _Rejected("BadMessageId")
        collapse_id = headers.get("apns-collapse-id")
        if collapse_id is not None and len(collapse_id.encode()) > MAX_COLLAPSE_ID_BYTES:
            raise _Rejected("BadCollapseId")

        payload = self._check_payload(request.body, push_type)

        mark = self.dead_mark(token)
        if mark is not None:
            return self._error(mark.reason, [("apns-id", apns_id)], mark.timestamp_ms)

        self.ledger.record(
            method=request.method,
            path=request.path,
            protocol=request.protocol,
            status=200,
            data={
                "token": token,
                "topic": topic,
                "apns_id": apns_id,
                "push_type": push_type,
                "priority": int(priority),
                "expiration": int(expiration) if expiration is not None else None,
                "collapse_id": collapse_id,
                "headers": apns_headers,
                "payload": payload,
                "auth": auth,
            },
        )
        return EmulatorResponse(200, [("apns-id", apns_id)])

    def _authenticate(self, request: EmulatorRequest) -> dict[str, Any]:
        authorization = request.headers.get("authorization")
        if authorization is None:
            if request.peer_certificate is None:
                raise _Rejected("MissingProviderToken")
            topic = topic_from_certificate(request.peer_certificate)
            if topic is None:
                raise _Rejected("BadCertificate")
            return {"method": "certificate", "topic": topic}
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Rejected("InvalidProviderToken")
        verified = self._jwt_cache.get(token) or self._verify_jwt(token)
        now = time.time()
        if now - verified.issued_at > TOKEN_MAX_AGE_S:
            raise _Rejected("ExpiredProviderToken")
        if verified.issued_at > now + CLOCK_SKEW_S:
            raise _Rejected("InvalidProviderToken")
        self._check_token_update(verified.team_id, token, now)
        return {"method": "token", "team_id": verified.team_id, "key_id": verified.key_id, "iat": verified.issued_at}

    def _verify_jwt(self, token: str) -> _VerifiedJwt:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise _Rejected("InvalidProviderToken") from exc
        key_id = header.get("kid")
        key = self._keys.get(key_id) if isinstance(key_id, str) else None
        if key is None or header.get("alg") != "ES256":
            raise _Rejected("InvalidProviderToken")
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=["ES256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
        except jwt.InvalidTokenError as exc:
            raise _Rejected("InvalidProviderToken") from exc
        issued_at = claims.get("iat")
        if claims.get("iss") != key.team_id or isinstance(issued_at, bool) or not isinstance(issued_at, int):
            raise _Rejected("InvalidProviderToken")
        verified = _VerifiedJwt(key.team_id, str(key_id), issued_at)
        if len(self._jwt_cache) >= _JWT_CACHE_LIMIT:
            self._jwt_cache = {}
        self._jwt_cache[token] = verified
        return verified

    def _check_token_update(self, team_id: str, token: str, now: float) -> None:
        current = self._team_current_jwt.get(team_id)
        if current is not None and current[0] == token:
            return
        interval = self.token_update_min_interval_s
        if current is not None and interval is not None and now - current[1] < interval:
            raise _Rejected("TooManyProviderTokenUpdates")
        self._team_current_jwt[team_id] = (token, now)

    def _check_topic(self, topic: str | None, auth: dict[str, Any], token: str) -> str:
        if auth["method"] == "certificate":
            bundle = str(auth["topic"])
            if topic is None:
                topic = bundle
            elif _bundle_of(topic) != bundle:
                raise _Rejected("TopicDisallowed")
        else:
            if topic is None:
                raise _Rejected("MissingTopic")
            if not _TOPIC.fullmatch(topic):
                raise _Rejected("BadTopic")
            allowed = self._team_topics.get(str(auth["team_id"]), set())
            if topic not in allowed and _bundle_of(topic) not in allowed:
                raise _Rejected("TopicDisallowed")
        bound = self._token_topics.get(token.lower())
        if bound is not None and _bundle_of(bound) != _bundle_of(topic):
            raise _Rejected("DeviceTokenNotForTopic")
        return topic

    @staticmethod
    def _check_payload(body: bytes, push_type: str) -> dict[str, Any]:
        if not body:
            raise _Rejected("PayloadEmpty")
        if len(body) > (MAX_VOIP_PAYLOAD if push_type == "voip" else MAX_PAYLOAD):
            raise _Rejected("PayloadTooLarge")
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Rejected("BadPayload") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            raise _Rejected("BadPayload")
        return payload

    # -- admin API ---------------------------------------------------------------------------------------

    def admin_routes(self) -> dict[tuple[str, str], AdminHandler]:
        """keys, topics, tokens, client-certificates, settings."""
        return {
            ("POST", "keys"): self._admin_keys,
            ("POST", "topics"): self._admin_topics,
            ("POST", "tokens"): self._admin_tokens,
            ("POST", "client-certificates"): self._admin_client_certificates,
            ("GET", "settings"): self._admin_settings,
            ("POST", "settings"): self._admin_settings,
        }

    def _admin_keys(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        team_id, key_id = admin.text(body, "team_id"), admin.text(body, "key_id")
        topics = admin.text_list(body, "topics", required=False)
        public_key_pem = admin.optional_text(body, "public_key_pem")
        if public_key_pem is None:
            key = self.create_signing_key(team_id, key_id, topics)
        else:
            try:
                key = self.register_public_key(team_id, key_id, public_key_pem, topics)
            except ValueError as exc:
                raise BadAdminRequest(f"public_key_pem: {exc}") from exc
        return EmulatorResponse.json(201, key.to_json())

    def _admin_topics(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        team_id = admin.text(body, "team_id")
        topics = self.register_topics(team_id, admin.text_list(body, "topics"))
        return EmulatorResponse.json(200, {"team_id": team_id, "topics": topics})

    def _admin_tokens(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        token, topic = admin.text(body, "token"), admin.text(body, "topic")
        self.register_device_token(token, topic)
        return EmulatorResponse.json(200, {"token": token, "topic": topic})

    def _admin_client_certificates(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        certificate = self.issue_client_certificate(admin.text(body, "topic"))
        return EmulatorResponse.json(
            201,
            {
                "topic": certificate.topic,
                "cert_pem": certificate.cert_pem,
                "key_pem": certificate.key_pem,
                "cert_path": certificate.cert_path,
                "key_path": certificate.key_path,
            },
        )

    def _admin_settings(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        if request.method == "POST" and "token_update_min_interval_s" in body:
            self.token_update_min_interval_s = admin.optional_number(body, "token_update_min_interval_s")
        return EmulatorResponse.json(200, {"token_update_min_interval_s": self.token_update_min_interval_s})
