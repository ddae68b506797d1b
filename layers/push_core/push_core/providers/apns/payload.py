"""APNs request building: the JSON payload and the apns-* headers, built once per message."""

import json
import time
from dataclasses import dataclass
from typing import Any

from push_core.providers.contract import PushMessage
from push_core.providers.payload_limits import PayloadError as PayloadError  # what build_request raises
from push_core.providers.payload_limits import PayloadTooLarge, trim_to_fit

MAX_PAYLOAD_BYTES = 4096
MAX_VOIP_PAYLOAD_BYTES = 5120
MAX_COLLAPSE_ID_BYTES = 64
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


@dataclass(frozen=True, slots=True)
class ApnsRequest:
    """Everything that is the same for every device receiving one message."""

    payload: bytes
    headers: tuple[tuple[str, str], ...]


def _compact(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _payload_document(message: PushMessage) -> dict[str, Any]:
    content = message.content
    if message.silent:
        aps: dict[str, Any] = {"content-available": 1}
    else:
        alert = {"title": content.title, "body": content.body} if content.title else {"body": content.body}
        aps = {"alert": alert, "sound": "default"}
        if content.importance >= 5:
            aps["interruption-level"] = "time-sensitive"
        elif content.importance <= 2:
            aps["interruption-level"] = "passive"
    document: dict[str, Any] = {k: v for k, v in (content.data or {}).items() if k != "aps"}
    if content.link:
        document["link"] = content.link
    document["pushlane_id"] = message.publication_id
    document["aps"] = aps
    override = (message.overrides or {}).get("apns", {}).get("payload")
    return _deep_merge(document, override) if isinstance(override, dict) else document


def _trim_alert(document: dict[str, Any], limit: int) -> bytes:
    """The payload with its alert body, then title, shortened until it fits (the JSON structure is kept)."""
    aps = document["aps"]
    alert = aps.get("alert") if isinstance(aps, dict) else None
    if isinstance(alert, dict):
        alert = aps["alert"] = dict(alert)  # it may be the caller's override: trim a copy
    texts = [(alert, "body"), (alert, "title")] if isinstance(alert, dict) else []
    size = trim_to_fit(lambda: len(_compact(document)), limit, texts)
    if size > limit:
        raise PayloadTooLarge(size, limit)
    return _compact(document)


def build_request(message: PushMessage, topic: str, *, trim: bool = False, now: float | None = None) -> ApnsRequest:
    """The payload and headers for message, or PayloadError with the reason APNs would give."""
    override = (message.overrides or {}).get("apns", {})
    extra_headers = {str(k).lower(): str(v) for k, v in (override.get("headers") or {}).items()}
    push_type = extra_headers.pop("apns-push-type", "background" if message.silent else "alert")
    if push_type not in PUSH_TYPES:
        raise PayloadError("InvalidPushType", f"unknown apns-push-type {push_type!r}")
    if push_type == "voip" and not topic.endswith(".voip"):
        topic += ".voip"
    priority = "5" if message.silent or message.content.importance <= 2 else "10"
    headers: dict[str, str] = {"apns-push-type": push_type, "apns-topic": topic, "apns-priority": priority}
    if message.ttl_s is not None:
        moment = time.time() if now is None else now
        headers["apns-expiration"] = "0" if message.ttl_s == 0 else str(int(moment) + message.ttl_s)
    if message.collapse_key:
        if len(message.collapse_key.encode()) > MAX_COLLAPSE_ID_BYTES:
            raise PayloadError("BadCollapseId", f"collapse id is over {MAX_COLLAPSE_ID_BYTES} bytes")
        headers["apns-collapse-id"] = message.collapse_key
    headers.update(extra_headers)
    limit = MAX_VOIP_PAYLOAD_BYTES if push_type == "voip" else MAX_PAYLOAD_BYTES
    document = _payload_document(message)
    payload = _compact(document)
    if len(payload) > limit:
        if not trim:
            raise PayloadTooLarge(len(payload), limit)
        payload = _trim_alert(document, limit)
    return ApnsRequest(payload=payload, headers=tuple(headers.items()))
