"""Webhook receiver emulator: `POST /hooks/<id>` with JSON signed the pushlane way (Stripe-like).

`Pushlane-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.".encode() + body)>`; several v1
values may be sent (secret rotation): one matching is enough. The timestamp must be within 5 minutes.

Checks, in order: unknown hook (404), method (405), dead hook (410), signature (401), JSON body (400);
then 200 `{"received": true}`.

Ledger `data` of an accepted webhook: hook_id, headers (every header, lowercase names), body (parsed
JSON), signature ({"t", "v1", "verified": true}).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any, ClassVar

from dev.emulators import admin
from dev.emulators.admin import AdminHandler
from dev.emulators.emulator import UrlTargetEmulator
from dev.emulators.faults import FaultKind
from dev.emulators.server import EmulatorRequest, EmulatorResponse

HOOK_PATH = "/hooks/"
SIGNATURE_HEADER = "pushlane-signature"
TOLERANCE_S = 300

# reason → (HTTP status, message).
WEBHOOK_ERRORS: dict[str, tuple[int, str]] = {
    "BadJson": (400, "the body is not JSON"),
    "MissingSignature": (401, "Pushlane-Signature header is missing"),
    "BadSignatureHeader": (401, "Pushlane-Signature must be t=<seconds>,v1=<hex>"),
    "StaleTimestamp": (401, "signature timestamp is outside the 5-minute tolerance"),
    "BadSignature": (401, "no v1 signature matches"),
    "NotFound": (404, "no such hook"),
    "MethodNotAllowed": (405, "POST only"),
    "Gone": (410, "hook removed"),
    "TooManyRequests": (429, "too many requests"),
    "InternalServerError": (500, "internal error"),
    "ServiceUnavailable": (503, "service unavailable"),
}

FAULT_REASON: dict[FaultKind, str] = {
    FaultKind.INTERNAL_ERROR: "InternalServerError",
    FaultKind.UNAVAILABLE: "ServiceUnavailable",
    FaultKind.THROTTLED: "TooManyRequests",
    FaultKind.AUTH_ERROR: "BadSignature",
    FaultKind.BAD_REQUEST: "BadJson",
}


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The Pushlane-Signature header value for `body` at `timestamp` (what a sender computes)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _verify(header: str | None, secret: str, body: bytes, now: float) -> dict[str, Any]:
    if header is None:
        raise _Refused("MissingSignature")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not signatures:
        raise _Refused("BadSignatureHeader")
    timestamp = int(timestamps[0])
    if abs(now - timestamp) > TOLERANCE_S:
        raise _Refused("StaleTimestamp")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    for signature in signatures:
        if hmac.compare_digest(expected, signature.lower()):
            return {"t": timestamp, "v1": signature, "verified": True}
    raise _Refused("BadSignature")


class WebhookEmulator(UrlTargetEmulator):
    """A webhook receiver: create hooks (each with its secret), then POST signed JSON to their URLs."""

    kind: ClassVar[str] = "webhook"
    dead_reasons: ClassVar[tuple[str, ...]] = ("Gone", "NotFound")
    delivery_path = HOOK_PATH
    fault_reasons = FAULT_REASON
    errors = WEBHOOK_ERRORS

    def __init__(self, **options: Any) -> None:
        self._secrets: dict[str, str] = {}
        self._registry_lock = threading.Lock()
        super().__init__(**options)

    def create_hook(self, secret: str | None = None) -> dict[str, str]:
        """A new hook; returns {"id", "url", "secret"} (the secret is generated unless given)."""
        hook_id = secrets.token_urlsafe(16)
        chosen = secret or "whsec_" + secrets.token_urlsafe(24)
        with self._registry_lock:
            self._secrets[hook_id] = chosen
        return {"id": hook_id, "url": f"{self.url}{HOOK_PATH}{hook_id}", "secret": chosen}

    def _error(self, reason: str, headers: list[tuple[str, str]] | None = None) -> EmulatorResponse:
        status, message = WEBHOOK_ERRORS[reason]
        return EmulatorResponse.json(status, {"error": reason, "message": message}, headers or [], reason=reason)

    def serve(self, request: EmulatorRequest) -> EmulatorResponse:
        """Verify and record one webhook."""
        try:
            return self._accept(request)
        except _Refused as refusal:
            return self._error(refusal.reason)

    def _accept(self, request: EmulatorRequest) -> EmulatorResponse:
        hook_id = request.path[len(HOOK_PATH) :] if self.is_delivery(request) else ""
        secret = self._secrets.get(hook_id)
        if secret is None:
            raise _Refused("NotFound")
        if request.method != "POST":
            raise _Refused("MethodNotAllowed")
        mark = self.dead_mark(hook_id)
        if mark is not None:
            raise _Refused(mark.reason)
        signature = _verify(request.headers.get(SIGNATURE_HEADER), secret, request.body, time.time())
        try:
            body = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Refused("BadJson") from exc
        self.ledger.record(
            method=request.method,
            path=request.path,
            protocol=request.protocol,
            status=200,
            data={
                "hook_id": hook_id,
                "headers": dict(request.header_list),
                "body": body,
                "signature": signature,
            },
        )
        return EmulatorResponse.json(200, {"received": True})

    def admin_routes(self) -> dict[tuple[str, str], AdminHandler]:
        """hooks."""
        return {("POST", "hooks"): self._admin_hooks}

    def _admin_hooks(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        return EmulatorResponse.json(201, self.create_hook(admin.optional_text(body, "secret")))
