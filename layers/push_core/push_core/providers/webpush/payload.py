"""What a Web Push service worker receives: one small JSON document, trimmed to fit one RFC 8188 record."""

import json
from typing import Any

from push_core.providers.contract import PushMessage
from push_core.providers.payload_limits import trim_to_fit
from push_core.providers.webpush.encryption import MAX_PLAINTEXT_BYTES


def _compact(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def render_payload(message: PushMessage) -> bytes:
    """The plaintext for message, its body and then title trimmed until it fits one record.

    When the data alone is too big the plaintext stays over MAX_PLAINTEXT_BYTES, and encryption refuses it
    for every subscription (PlaintextTooLarge): a payload problem, not a dead subscription.
    """
    content = message.content
    document = {
        "pushlane_id": message.publication_id,
        "title": content.title,
        "body": content.body,
        "link": content.link,
        "importance": content.importance,
        "data": content.data,
    }
    document = {k: v for k, v in document.items() if v is not None}
    trim_to_fit(lambda: len(_compact(document)), MAX_PLAINTEXT_BYTES, [(document, "body"), (document, "title")])
    return _compact(document)
