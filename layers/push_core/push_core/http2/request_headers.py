"""Request header blocks: a stateless HPACK encoder (RFC 7541) and the per-origin RequestTemplate.

We encode by hand because hpack's Encoder indexes into a dynamic table: it must run once per
request in wire order and costs microseconds. Encoding every field as a literal that does not
touch the dynamic table (static-table name indexes, no Huffman) keeps blocks stateless, so all
but the path and per-request fields are built once per template.
"""

import re
from collections.abc import Sequence
from typing import Final

from hpack.table import HeaderTable

# HPACK representations (RFC 7541 §6): indexed field, literal without indexing, never indexed.
_INDEXED: Final = 0x80
_LITERAL: Final = 0x00
_NEVER_INDEXED: Final = 0x10

_STATIC_FIELD_INDEX: Final[dict[tuple[str, str], int]] = {}
_STATIC_NAME_INDEX: Final[dict[str, int]] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _STATIC_FIELD_INDEX.setdefault((_name.decode(), _value.decode()), _index)
    _STATIC_NAME_INDEX.setdefault(_name.decode(), _index)

# Lowercase field names only: HTTP/2 forbids uppercase, and a server treats it as malformed.
_FIELD_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
_METHOD: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Connection-specific fields are illegal in HTTP/2 (RFC 9113 §8.2.2); content-length is ours to set.
_FORBIDDEN_FIELDS: Final = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host", "content-length"}
)
# Credentials are sent "never indexed" so no intermediary stores them in a compression table.
_SENSITIVE_FIELDS: Final = frozenset({"authorization", "proxy-authorization"})


def encode_integer(value: int, prefix_bits: int, flags: int) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) with `flags` in the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((flags | value,))
    out = bytearray((flags | limit,))
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# Length prefixes of raw (non-Huffman) strings shorter than 127 bytes: one byte each.
_SHORT_LENGTHS: Final = tuple(bytes((n,)) for n in range(127))


def encode_string(raw: bytes) -> bytes:
    """An HPACK string literal without Huffman coding (RFC 7541 §5.2)."""
    n = len(raw)
    if n < 127:
        return _SHORT_LENGTHS[n] + raw
    return encode_integer(n, 7, 0) + raw


def _check_value(name: str, value: str) -> bytes:
    # isprintable() rejects CR, LF, NUL and every other control character in one C-level scan.
    if not value.isprintable():
        raise ValueError(f"header {name!r} has a control character in its value")
    return value.encode()


def name_prefix(name: str) -> bytes:
    """The encoded start of a literal field for `name`, everything before the value's length.

    Raises ValueError for a name HTTP/2 forbids in a request the caller builds.
    """
    if name.startswith(":"):
        raise ValueError(f"pseudo-header {name!r} is set by the client, not by callers")
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"header name {name!r} is not a lowercase HTTP token")
    if name in _FORBIDDEN_FIELDS:
        raise ValueError(f"header {name!r} is not allowed in an HTTP/2 request from pushlane")
    flags = _NEVER_INDEXED if name in _SENSITIVE_FIELDS else _LITERAL
    index = _STATIC_NAME_INDEX.get(name)
    if index is not None:
        return encode_integer(index, 4, flags)
    return bytes((flags,)) + encode_string(name.encode())


def encode_field(name: str, value: str) -> bytes:
    """One request field, encoded without touching the dynamic table.

    An exact static-table match is sent as an index; anything else as a literal. Raises ValueError
    for fields HTTP/2 forbids.
    """
    if name.startswith(":"):
        index = _STATIC_FIELD_INDEX.get((name, value))
        if index is not None:
            return encode_integer(index, 7, _INDEXED)
        return encode_integer(_STATIC_NAME_INDEX[name], 4, _LITERAL) + encode_string(_check_value(name, value))
    return name_prefix(name) + encode_string(_check_value(name, value))


# Per-request names repeat (apns-id, authorization, ttl...): validate and encode each name once.
_NAME_PREFIXES: dict[str, bytes] = {}
_NAME_PREFIX_CACHE_LIMIT: Final = 1024


def _request_field(name: str, value: str) -> bytes:
    prefix = _NAME_PREFIXES.get(name)
    if prefix is None:
        prefix = name_prefix(name)
        if len(_NAME_PREFIXES) < _NAME_PREFIX_CACHE_LIMIT:
            _NAME_PREFIXES[name] = prefix
    if not value.isprintable():
        raise ValueError(f"header {name!r} has a control character in its value")
    raw = value.encode()
    n = len(raw)
    return prefix + (_SHORT_LENGTHS[n] if n < 127 else encode_integer(n, 7, 0)) + raw


_PATH_NAME: Final = encode_integer(_STATIC_NAME_INDEX[":path"], 4, _LITERAL)
_PATH_PREFIXES: Final = tuple(_PATH_NAME + length for length in _SHORT_LENGTHS)
_CONTENT_LENGTH_NAME: Final = encode_integer(_STATIC_NAME_INDEX["content-length"], 4, _LITERAL)
_CONTENT_LENGTH_FIELDS: dict[int, bytes] = {}
_CONTENT_LENGTH_CACHE_LIMIT: Final = 8192


def _content_length_field(length: int) -> bytes:
    field = _CONTENT_LENGTH_FIELDS.get(length)
    if field is None:
        field = _CONTENT_LENGTH_NAME + encode_string(str(length).encode())
        if len(_CONTENT_LENGTH_FIELDS) < _CONTENT_LENGTH_CACHE_LIMIT:
            _CONTENT_LENGTH_FIELDS[length] = field
    return field


class RequestTemplate:
    """The precompiled part of requests to one origin: :method, :scheme, :authority and static fields.

    Build it once (`Http2Client.template`) and pass it to every `send`; only the path, per-request
    fields and content-length are encoded per request.
    """

    __slots__ = ("_fields", "_pseudo", "authority", "headers", "method")

    def __init__(
        self, method: str, authority: str, headers: Sequence[tuple[str, str]] = (), *, scheme: str = "https"
    ) -> None:
        if not _METHOD.fullmatch(method):
            raise ValueError(f"{method!r} is not an HTTP method")
        self.method = method
        self.authority = authority
        self.headers = tuple(headers)
        self._pseudo = (
            encode_field(":method", method) + encode_field(":scheme", scheme) + encode_field(":authority", authority)
        )
        self._fields = b"".join(encode_field(name, value) for name, value in self.headers)

    def header_block(self, path: str, headers: Sequence[tuple[str, str]] = (), content_length: int = 0) -> bytes:
        """The complete HPACK header block of one request.

        Raises ValueError for a path that is not an absolute, printable ASCII path without spaces, or
        for a field HTTP/2 forbids.
        """
        if path[:1] != "/" or " " in path or not path.isprintable():
            raise ValueError(f"request path {path!r} must start with / and hold no spaces or controls")
        raw = path.encode("ascii")
        n = len(raw)
        parts = [
            self._pseudo,
            _PATH_PREFIXES[n] if n < 127 else _PATH_NAME + encode_integer(n, 7, 0),
            raw,
            self._fields,
        ]
        if headers:
            parts += [_request_field(name, value) for name, value in headers]
        if content_length:
            parts.append(_content_length_field(content_length))
        return b"".join(parts)

    def __repr__(self) -> str:
        return f"RequestTemplate({self.method!r}, {self.authority!r}, {list(self.headers)!r})"
