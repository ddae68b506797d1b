"""FCM HTTP v1 emulator, with Google's OAuth token endpoint for service accounts.

`POST /token` exchanges an RS256 JWT assertion from a service account the emulator generated for an access
token. As Google does, the assertion's aud may be the token_uri or Google's own token endpoint (google-auth
always uses the latter), and its scope must include firebase.messaging or cloud-platform (firebase-admin
asks for the latter). `POST /v1/projects/{project}/messages:send` (HTTP/2 and HTTP/1.1) checks that token
and the v1 message, and answers `{"name": ...}` or a v1 error whose `details` carry the FcmError code.

A 401 for a missing, unknown, expired or other-project access token has no FcmError detail (as Google's
does not); THIRD_PARTY_AUTH_ERROR (a fault knob) has one.

Ledger `data` of an accepted message: project, message (the JSON as sent), target ({"token"|"topic"|
"condition"|"fid": value}), validate_only, access_token, client_email, name. validate_only requests are
recorded with outcome "validated" and are not deliveries.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dev.emulators import admin
from dev.emulators.admin import AdminHandler
from dev.emulators.emulator import Emulator
from dev.emulators.faults import FaultDecision, FaultKind
from dev.emulators.ledger import DELIVERED, VALIDATED
from dev.emulators.server import EmulatorRequest, EmulatorResponse

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# FCM v1 accepts either scope; firebase-admin asks for cloud-platform (and others), not firebase.messaging.
FCM_SCOPES = frozenset({SCOPE, "https://www.googleapis.com/auth/cloud-platform"})
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = "/token"  # noqa: S105 - a URL path, not a secret
# google-auth signs every assertion for Google's endpoint whatever the service account's token_uri says, and
# Google accepts it: so does the emulator, besides its own token_uri.
GOOGLE_TOKEN_AUDIENCES = ("https://oauth2.googleapis.com/token", "https://www.googleapis.com/oauth2/v4/token")
ACCESS_TOKEN_LIFETIME_S = 3599
MAX_ASSERTION_LIFETIME_S = 3600
CLOCK_SKEW_S = 60
MAX_PAYLOAD = 4096
MAX_TOPIC_PAYLOAD = 2048
MAX_TTL_S = 28 * 24 * 3600

# FcmError code → (HTTP status, google.rpc status, message).
FCM_ERRORS: dict[str, tuple[int, str, str]] = {
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Messages sent'."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
}

# Injected fault → FcmError code.
FAULT_ERROR: dict[FaultKind, str] = {
    FaultKind.INTERNAL_ERROR: "INTERNAL",
    FaultKind.UNAVAILABLE: "UNAVAILABLE",
    FaultKind.THROTTLED: "QUOTA_EXCEEDED",
    FaultKind.AUTH_ERROR: "THIRD_PARTY_AUTH_ERROR",
    FaultKind.BAD_REQUEST: "INVALID_ARGUMENT",
}
# Google sends Retry-After with these.
_RETRY_AFTER_ERRORS = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE"})

# OAuth error code → HTTP status (RFC 6749 5.2).
OAUTH_ERRORS: dict[str, int] = {
    "invalid_request": 400,
    "unsupported_grant_type": 400,
    "invalid_grant": 400,
    "invalid_scope": 400,
    "invalid_client": 401,
}

# `fid` (a Firebase installation ID) is the newest target, what firebase-admin 7 suggests instead of token.
TARGETS = ("token", "topic", "condition", "fid")
MESSAGE_FIELDS = frozenset({"name", "data", "notification", "android", "webpush", "apns", "fcm_options", *TARGETS})
REQUEST_FIELDS = frozenset({"message", "validate_only"})
ANDROID_PRIORITIES = frozenset({"NORMAL", "HIGH"})
# FCM refuses these data keys: they collide with its own fields.
RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type"})
RESERVED_DATA_PREFIXES = ("google.", "gcm.")

_SEND_PATH = re.compile(r"/v1/projects/([^/]+)/messages:send")
_TOKEN = re.compile(r"[A-Za-z0-9_:.\-]{1,4096}")
_TOPIC = re.compile(r"(/topics/)?[A-Za-z0-9\-_.~%]{1,900}")
_DURATION = re.compile(r"(\d{1,12})(\.\d{1,9})?s")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class _Invalid(Exception):
    """A v1 request FCM would refuse: the FcmError code and Google's message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class _ServiceAccount:
    project_id: str
    client_email: str
    private_key_id: str
    public_key: rsa.RSAPublicKey


@dataclass(frozen=True)
class _AccessToken:
    project_id: str
    client_email: str
    expires_at: float


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _field(document: dict[str, Any], name: str) -> Any:
    """A proto3-JSON field: Google accepts both snake_case and lowerCamelCase names."""
    if name in document:
        return document[name]
    head, *rest = name.split("_")
    return document.get(head + "".join(part.title() for part in rest))


def _invalid(message: str) -> _Invalid:
    return _Invalid("INVALID_ARGUMENT", message)


def _check_known(document: dict[str, Any], known: frozenset[str], where: str) -> None:
    for name in document:
        if _snake(name) not in known:
            raise _invalid(f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field.")


def _check_string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"Invalid value at '{where}': expected an object of strings.")
    for key, item in value.items():
        if not isinstance(item, str):
            raise _invalid(f"Invalid value at '{where}[{key}]' ({type(item).__name__}), expected a string.")
    return value


def _check_object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"Invalid value at '{where}': expected an object.")
    return value


def _check_data(value: Any, where: str) -> dict[str, str]:
    data = _check_string_map(value, where)
    for key in data:
        if key in RESERVED_DATA_KEYS or key.startswith(RESERVED_DATA_PREFIXES):
            raise _invalid(f"Invalid data payload key: {key}")
    return data


def _payload_size(*parts: Any) -> int:
    return sum(len(json.dumps(part, separators=(",", ":"), ensure_ascii=False).encode()) for part in parts if part)


def validate_message(message: Any) -> tuple[str, str]:
    """Check a v1 message as FCM does; returns (target kind, target value) or raises _Invalid."""
    if not isinstance(message, dict):
        raise _invalid("Invalid value at 'message': expected an object.")
    _check_known(message, MESSAGE_FIELDS, "message")
    targets = [(name, message[name]) for name in TARGETS if message.get(name) is not None]
    if len(targets) != 1:
        raise _invalid("Exactly one of message.token, message.topic, message.condition or message.fid must be set.")
    kind, value = targets[0]
    if not isinstance(value, str) or not value:
        raise _invalid(f"Invalid value at 'message.{kind}': expected a non-empty string.")
    if kind in ("token", "fid") and not _TOKEN.fullmatch(value):
        raise _invalid("The registration token is not a valid FCM registration token")
    if kind == "topic" and not _TOPIC.fullmatch(value):
        raise _invalid("Invalid topic name")

    data = _check_data(message.get("data"), "message.data")
    notification = _check_object(message.get("notification"), "message.notification")
    for key in ("title", "body", "image"):
        if key in notification and not isinstance(notification[key], str):
            raise _invalid(f"Invalid value at 'message.notification.{key}': expected a string.")

    android = _check_object(message.get("android"), "message.android")
    priority = android.get("priority")
    # FCM parses enum names case-insensitively: firebase-admin sends "high", the REST docs say "HIGH".
    if priority is not None and (not isinstance(priority, str) or priority.upper() not in ANDROID_PRIORITIES):
        raise _invalid(f"Invalid value at 'message.android.priority' ({priority})")
    ttl = android.get("ttl")
    if ttl is not None:
        match = _DURATION.fullmatch(ttl) if isinstance(ttl, str) else None
        if match is None:
            raise _invalid("Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration)")
        if int(match.group(1)) > MAX_TTL_S:
            raise _invalid("TTL exceeds the maximum of 4 weeks (2419200s).")
    for key in ("collapse_key", "restricted_package_name"):
        if _field(android, key) is not None and not isinstance(_field(android, key), str):
            raise _invalid(f"Invalid value at 'message.android.{key}': expected a string.")
    android_data = _check_data(android.get("data"), "message.android.data")
    android_notification = _check_object(android.get("notification"), "message.android.notification")

    apns = _check_object(message.get("apns"), "message.apns")
    _check_string_map(apns.get("headers"), "message.apns.headers")
    apns_payload = _check_object(apns.get("payload"), "message.apns.payload")

    webpush = _check_object(message.get("webpush"), "message.webpush")
    _check_string_map(webpush.get("headers"), "message.webpush.headers")
    webpush_data = _check_data(webpush.get("data"), "message.webpush.data")
    webpush_notification = _check_object(webpush.get("notification"), "message.webpush.notification")

    limit = MAX_TOPIC_PAYLOAD if kind in ("topic", "condition") else MAX_PAYLOAD
    # Each platform receives the common payload plus its own override; each must fit.
    for platform, size in (
        ("Android", _payload_size(data, notification, android_data, android_notification)),
        ("APNs", _payload_size(data, notification, apns_payload)),
        ("Web push", _payload_size(data, notification, webpush_data, webpush_notification)),
    ):
        if size > limit:
            raise _invalid(f"{platform} message is too big")
    return kind, value


class FcmEmulator(Emulator):
    """FCM HTTP v1. Create a service account, let the client exchange it for a token, then send."""

    kind: ClassVar[str] = "fcm"
    dead_reasons: ClassVar[tuple[str, ...]] = ("UNREGISTERED", "SENDER_ID_MISMATCH")

    def __init__(self, **options: Any) -> None:
        self._accounts: dict[str, _ServiceAccount] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        self._registry_lock = threading.Lock()
        self._message_serial = 0
        super().__init__(**options)

    @property
    def token_uri(self) -> str:
        """The OAuth token endpoint (the `token_uri` in the service accounts, and the assertion's `aud`)."""
        return self.url + TOKEN_PATH

    # -- Python API --------------------------------------------------------------------------------------

    def create_service_account(self, project_id: str) -> dict[str, Any]:
        """Generate an RSA-2048 service account for `project_id`; returns Google's service-account JSON."""
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_key_id = secrets.token_hex(20)
        client_id = str(secrets.randbelow(10**21 - 10**20) + 10**20)
        name = f"firebase-adminsdk-{secrets.token_hex(3)}"
        client_email = f"{name}@{project_id}.iam.gserviceaccount.com"
        with self._registry_lock:
            self._accounts[client_email] = _ServiceAccount(
                project_id, client_email, private_key_id, private_key.public_key()
            )
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": private_key_id,
            "private_key": pem,
            "client_email": client_email,
            "client_id": client_id,
            "auth_uri": self.url + "/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": self.url + "/oauth2/v1/certs",
            "client_x509_cert_url": f"{self.url}/robot/v1/metadata/x509/{client_email}",
            "universe_domain": "googleapis.com",
        }

    def describe(self) -> dict[str, Any]:
        """URL and token URI."""
        return {"url": self.url, "token_uri": self.token_uri}

    # -- requests ----------------------------------------------------------------------------------------

    def is_delivery(self, request: EmulatorRequest) -> bool:
        """messages:send requests."""
        return request.path.startswith("/v1/projects/")

    def fault_response(self, decision: FaultDecision, request: EmulatorRequest) -> EmulatorResponse:
        """The v1 error for an injected fault."""
        return self._fcm_error(FAULT_ERROR[decision.kind], None, decision.retry_after_s)

    def serve(self, request: EmulatorRequest) -> EmulatorResponse:
        """The token endpoint and messages:send."""
        if request.path == TOKEN_PATH:
            return self._serve_token(request)
        match = _SEND_PATH.fullmatch(request.path)
        if match is None or request.method != "POST":
            return EmulatorResponse.json(
                404,
                {"error": {"code": 404, "message": "Method not found.", "status": "NOT_FOUND"}},
                reason="NOT_FOUND",
            )
        try:
            return self._send(request, match.group(1))
        except _Invalid as invalid:
            return self._fcm_error(invalid.code, invalid.message)

    def _fcm_error(self, code: str, message: str | None, retry_after_s: int | None = None) -> EmulatorResponse:
        status, rpc_status, default_message = FCM_ERRORS[code]
        document = {
            "error": {
                "code": status,
                "message": message or default_message,
                "status": rpc_status,
                "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}],
            }
        }
        headers = []
        if code in _RETRY_AFTER_ERRORS:
            headers.append(("retry-after", str(retry_after_s if retry_after_s is not None else 60)))
        return EmulatorResponse.json(status, document, headers, reason=code)

    def _unauthenticated(self, message: str) -> EmulatorResponse:
        document = {"error": {"code": 401, "message": message, "status": "UNAUTHENTICATED"}}
        return EmulatorResponse.json(
            401, document, [("www-authenticate", 'Bearer realm="emulator"')], "UNAUTHENTICATED"
        )

    def _send(self, request: EmulatorRequest, project: str) -> EmulatorResponse:
        authorization = request.headers.get("authorization", "")
        scheme, _, access_token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not access_token:
            return self._unauthenticated("Request is missing required authentication credential.")
        issued = self._access_tokens.get(access_token)
        if issued is None or issued.expires_at <= time.time() or issued.project_id != project:
            return self._unauthenticated("Request had invalid authentication credentials.")

        try:
            document = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _invalid("Invalid JSON payload received.") from exc
        if not isinstance(document, dict):
            raise _invalid("Invalid JSON payload received. Expected an object.")
        _check_known(document, REQUEST_FIELDS, "")
        message = document.get("message")
        validate_only = _field(document, "validate_only")
        if validate_only is not None and not isinstance(validate_only, bool):
            raise _invalid("Invalid value at 'validate_only' (TYPE_BOOL)")
        target_kind, target = validate_message(message)

        if target_kind in ("token", "fid"):
            mark = self.dead_mark(target)
            if mark is not None:
                return self._fcm_error(mark.reason, None)

        with self._registry_lock:
            self._message_serial += 1
            serial = self._message_serial
        name = f"projects/{project}/messages/0:{int(time.time() * 1000)}%{serial:016x}"
        self.ledger.record(
            method=request.method,
            path=request.path,
            protocol=request.protocol,
            status=200,
            outcome=VALIDATED if validate_only else DELIVERED,
            data={
                "project": project,
                "message": message,
                "target": {target_kind: target},
                "validate_only": bool(validate_only),
                "access_token": access_token,
                "client_email": issued.client_email,
                "name": name,
            },
        )
        reason = "validate_only" if validate_only else ""
        return EmulatorResponse.json(200, {"name": name}, reason=reason)

    # -- OAuth -------------------------------------------------------------------------------------------

    def _serve_token(self, request: EmulatorRequest) -> EmulatorResponse:
        if request.method != "POST":
            return EmulatorResponse.json(405, {"error": "invalid_request", "error_description": "POST only"})
        try:
            account = self._check_assertion(request)
        except _OAuthError as failure:
            document = {"error": failure.error, "error_description": failure.description}
            return EmulatorResponse.json(OAUTH_ERRORS[failure.error], document, reason=failure.error)
        access_token = "ya29.emulator-" + secrets.token_urlsafe(32)
        self._access_tokens[access_token] = _AccessToken(
            account.project_id, account.client_email, time.time() + ACCESS_TOKEN_LIFETIME_S
        )
        return EmulatorResponse.json(
            200,
            {"access_token": access_token, "expires_in": ACCESS_TOKEN_LIFETIME_S, "token_type": "Bearer"},
            [("cache-control", "no-store")],
        )

    def _check_assertion(self, request: EmulatorRequest) -> _ServiceAccount:
        try:
            form = parse_qs(request.body.decode(), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise _OAuthError("invalid_request", "The body is not a form.") from exc
        if form.get("grant_type", [""])[0] != GRANT_TYPE:
            raise _OAuthError("unsupported_grant_type", "Invalid grant_type.")
        assertion = form.get("assertion", [""])[0]
        if not assertion:
            raise _OAuthError("invalid_request", "Missing required parameter: assertion")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError as exc:
            raise _OAuthError("invalid_grant", "Invalid JWT.") from exc
        account = self._accounts.get(str(unverified.get("iss")))
        if account is None:
            raise _OAuthError("invalid_client", "The OAuth client was not found.")
        if header.get("alg") != "RS256":
            raise _OAuthError("invalid_grant", "Invalid JWT Signature.")
        try:
            claims = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
        except jwt.InvalidTokenError as exc:
            raise _OAuthError("invalid_grant", "Invalid JWT Signature.") from exc
        if claims.get("aud") not in (self.token_uri, *GOOGLE_TOKEN_AUDIENCES):
            raise _OAuthError("invalid_grant", "Invalid JWT: Failed audience check.")
        if FCM_SCOPES.isdisjoint(str(claims.get("scope", "")).split()):
            raise _OAuthError("invalid_scope", f"The assertion's scope must include one of {sorted(FCM_SCOPES)}.")
        issued_at, expires_at = claims.get("iat"), claims.get("exp")
        now = time.time()
        if (
            not isinstance(issued_at, int)
            or not isinstance(expires_at, int)
            or issued_at > now + CLOCK_SKEW_S
            or expires_at <= now
            or expires_at - issued_at > MAX_ASSERTION_LIFETIME_S
            or expires_at <= issued_at
        ):
            raise _OAuthError(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
            )
        return account

    # -- admin API ---------------------------------------------------------------------------------------

    def admin_routes(self) -> dict[tuple[str, str], AdminHandler]:
        """service-accounts."""
        return {("POST", "service-accounts"): self._admin_service_accounts}

    def _admin_service_accounts(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        return EmulatorResponse.json(201, self.create_service_account(admin.text(body, "project_id")))
