"""FCM HTTP v1 request bodies: one JSON document per message, split around the token so each
device's body is two byte concatenations."""

import json
from dataclasses import dataclass
from typing import Any

from push_core.providers.contract import PushMessage

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


def build_body(message: PushMessage) -> FcmBody:
    """The messages:send body for message (notification, data, android / apns / webpush blocks)."""
    content = message.content
    data = data_strings(content.data)
    data["pushlane_id"] = message.message_id
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
    document = json.dumps({"message": body}, separators=(",", ":"), ensure_ascii=False)
    prefix, _, suffix = document.partition(json.dumps(_TOKEN_PLACEHOLDER))
    return FcmBody(prefix.encode(), suffix.encode())
