"""Identifiers: time-sortable ids for things listed in order, and random secrets."""

import os
import re
import secrets
import time

# Crockford base32, as ULID uses: sortable as text, no ambiguous letters.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SORTABLE_ID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
_SORTABLE_ID = re.compile(SORTABLE_ID_PATTERN)


def new_sortable_id(now_ms: int | None = None) -> str:
    """A 26-character ULID: 48 bits of milliseconds then 80 random bits.

    Written here because the stdlib gains uuid7 only in 3.14 and one function does not justify a dependency.
    """
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_sortable_id(value: str) -> bool:
    """Whether value has the shape of an id made by new_sortable_id."""
    return bool(_SORTABLE_ID.match(value))


def sortable_id_time_ms(value: str) -> int:
    """The millisecond timestamp inside a sortable id."""
    number = 0
    for char in value[:10]:
        number = number * 32 + _CROCKFORD.index(char)
    return number


def new_key_id() -> str:
    """A short public identifier for an API key (16 hex characters)."""
    return secrets.token_hex(8)


def new_secret() -> str:
    """160 random bits as 40 hex characters."""
    return secrets.token_hex(20)
