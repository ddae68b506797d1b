"""FCM HTTP v1 request bodies: one JSON document per message, split around the token so each
device's body is two byte concatenations."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from push_core.providers.contract import PushMessage
from push_core.providers.payload_limits import PayloadTooLarge, TrimmableText, trim_to_fit

# For a message to a registration token (topic messages get 2048 bytes; pushlane sends only to tokens).
MAX_PAYLOAD_BYTES = 4096
_TOKEN_PLACEHOLDER = "\u0000pushlane-token\u0000"  # noqa: S105 - a marker, not a secret


@dataclass(frozen=True, slots=True)
class FcmBody:
    """The send body with a hole for the registration token."""

    prefix: bytes
    suffix: bytes

    def for_token(self, token: str) -> bytes:
        """The body for one device."""
        return self.prefix + json.dumps(token).encode() + self.suffix


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = (
            _deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def data_strings(data: dict[str, Any] | None) -> dict[str, str]:
    """FCM data values must be strings: strings stay as they are, everything else becomes JSON."""
    return {
        key: value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        for key, value in (data or {}).items()
    }


def payload_bytes(message: Mapping[str, Any]) -> int:
    """FCM's payload size of a v1 message: the largest of what Android, APNs and Web Push each receive.

    Each receives data and notification plus its own block. FCM does not say how it counts them; compact
    JSON is never less than a count of keys and values, and is what the FCM emulator enforces.
    """
    android, apns, webpush = (_block(message, name) for name in ("android", "apns", "webpush"))
    common = (message.get("data"), message.get("notification"))
    return max(
        _json_bytes(*common, android.get("data"), android.get("notification")),
        _json_bytes(*common, apns.get("payload")),
        _json_bytes(*common, webpush.get("data"), webpush.get("notification")),
    )


def _block(message: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = message.get(name)
    return value if isinstance(value, Mapping) else {}


def _json_bytes(*parts: Any) -> int:
    return sum(len(json.dumps(part, separators=(",", ":"), ensure_ascii=False).encode()) for part in parts if part)


def build_body(message: PushMessage) -> FcmBody:
    """The messages:send body for message (notification, data, android / apns / webpush blocks).

    A notification too big for FCM has its body, then its title, trimmed; PayloadTooLarge if the rest
    (data and overrides) cannot fit.
    """
    content = message.content
    data = data_strings(content.data)
    data["pushlane_id"] = message.publication_id
    if content.link:
        data["link"] = content.link
    high = content.importance >= 4 or message.silent
    android: dict[str, Any] = {"priority": "HIGH" if high else "NORMAL"}
    if message.ttl_s is not None:
        android["ttl"] = f"{message.ttl_s}s"
    if message.collapse_key:
        android["collapse_key"] = message.collapse_key
    body: dict[str, Any] = {"token": _TOKEN_PLACEHOLDER, "data": data, "android": android}
    if not message.silent:
        notification = {"body": content.body}
        if content.title:
            notification["title"] = content.title
        body["notification"] = notification
        body["apns"] = {"headers": {"apns-priority": "10" if content.importance >= 3 else "5"}}
    else:
        body["apns"] = {
            "headers": {"apns-push-type": "background", "apns-priority": "5"},
            "payload": {"aps": {"content-available": 1}},
        }
    override = (message.overrides or {}).get("fcm")
    if isinstance(override, dict):
        body = _deep_merge(body, override)
    texts: list[TrimmableText] = []
    if isinstance(body.get("notification"), dict):
        shown = body["notification"] = dict(body["notification"])  # it may be the caller's override: trim a copy
        texts = [(shown, "body"), (shown, "title")]
    size = trim_to_fit(lambda: payload_bytes(body), MAX_PAYLOAD_BYTES, texts)
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(size, MAX_PAYLOAD_BYTES)
    document = json.dumps({"message": body}, separators=(",", ":"), ensure_ascii=False)
    prefix, _, suffix = document.partition(json.dumps(_TOKEN_PLACEHOLDER))
    return FcmBody(prefix.encode(), suffix.encode())
