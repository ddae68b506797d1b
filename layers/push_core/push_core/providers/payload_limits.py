"""Fitting a payload under its platform's byte limit: the body is shortened first, then the title; data never.

APNs, FCM and a Web Push record each cap the payload at about 4 KB. A message over the cap is trimmed here
for every platform, the way Apple asks ("trim the alert body, not the JSON"), so a payload problem is solved
before sending and can never come back from a provider looking like a dead target.
"""

import json
import unicodedata
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

ELLIPSIS = "…"
_ELLIPSIS_BYTES = len(ELLIPSIS.encode())
_ZERO_WIDTH_JOINER = "\u200d"
# Combining marks (accents, variation selectors) change the character before them: never cut just before one.
_MARK_CATEGORIES = frozenset({"Mn", "Mc", "Me"})
_SKIN_TONES = range(0x1F3FB, 0x1F400)

# A text the trimmer may shorten: the mapping that holds it and its key.
TrimmableText = tuple[MutableMapping[str, Any], str]


class PayloadError(ValueError):
    """The message cannot be sent to a platform as asked; reason is the one the provider would give."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class PayloadTooLarge(PayloadError):
    """Over the limit even with every trimmable text emptied: the data (or an override) alone is too big."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__("PayloadTooLarge", f"payload is {size} bytes, {size - limit} over the {limit}-byte limit")
        self.size = size
        self.limit = limit

    @property
    def excess(self) -> int:
        """How many bytes too many."""
        return self.size - self.limit


def trim_to_fit(measure: Callable[[], int], limit: int, texts: Sequence[TrimmableText]) -> int:
    """Shorten texts in order until measure() is at most limit; the final measure.

    Each text is emptied before the next one is touched. A shortened text ends with an ellipsis and is cut
    between characters, never inside one or between a character and the marks that modify it. The first text
    (the body) stays even when empty; a later one (the title) trimmed away is removed, as builders leave out
    an empty title. A payload that already fits is left as it is; one that cannot fit comes back over the
    limit, for the caller to refuse.
    """
    size = measure()
    for position, (holder, key) in enumerate(texts):
        text = holder.get(key)
        if size <= limit or not isinstance(text, str) or not text:
            continue
        while size > limit and text:
            text = _shorten(text, size - limit)
            holder[key] = text
            size = measure()
        if not text and position:
            del holder[key]
            size = measure()
    return size


def _shorten(text: str, excess: int) -> str:
    """text cut to be at least excess bytes shorter as a JSON string, ellipsis included; "" if nothing is left."""
    needed = excess + _ELLIPSIS_BYTES
    end = len(text)
    while end > 0 and needed > 0:
        end -= 1
        needed -= _json_bytes(text[end])
    while 0 < end < len(text) and (_extends(text[end]) or text[end - 1] == _ZERO_WIDTH_JOINER):
        end -= 1
    return text[:end] + ELLIPSIS if end else ""


def _json_bytes(char: str) -> int:
    # What the character costs inside a compact UTF-8 JSON string: quotes and control characters are escaped.
    return len(json.dumps(char, ensure_ascii=False).encode()) - 2


def _extends(char: str) -> bool:
    return char == _ZERO_WIDTH_JOINER or ord(char) in _SKIN_TONES or unicodedata.category(char) in _MARK_CATEGORIES
