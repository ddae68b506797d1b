"""Responses: the Response value and the decoder that turns HPACK header blocks into status and fields.

Decoding is hpack's (it honours the server's dynamic table). In front of it sits a memo of blocks
whose decoding left the dynamic table untouched: servers repeat such blocks byte for byte (a
status plus fields already in the table), and a repeat decodes to the same fields for as long
as the table has not changed since.
"""

from dataclasses import dataclass
from typing import Final, cast

import hpack


@dataclass(frozen=True, slots=True)
class Response:
    """A complete HTTP/2 response. Trailer fields, if any, are merged into `headers`."""

    status: int
    headers: dict[str, str]
    body: bytes


class MalformedHeaders(ValueError):
    """A header block decoded fine but is not a valid HTTP/2 response head (RFC 9113 §8.3)."""


# Same as hpack's default: the largest decoded header list a server may make us hold.
MAX_HEADER_LIST_SIZE: Final = 65_536
_MEMO_LIMIT: Final = 512


def _head(fields: list[tuple[str, str]]) -> tuple[int, dict[str, str]]:
    status = 0
    headers: dict[str, str] = {}
    for name, value in fields:
        if name[:1] == ":":
            if name != ":status" or status or headers:
                raise MalformedHeaders(f"unexpected pseudo-header {name!r}")
            if len(value) != 3 or not value.isdigit():
                raise MalformedHeaders(f"invalid :status {value!r}")
            status = int(value)
        elif name in headers:
            # Repeated fields combine with a comma (RFC 9110 §5.3).
            headers[name] += ", " + value
        else:
            headers[name] = value
    return status, headers


class HeaderBlockDecoder:
    """Decodes one connection's response header blocks in arrival order.

    The dynamic table's size limit is the one *we* advertise (SETTINGS_HEADER_TABLE_SIZE, left at
    the default 4096), never the server's setting, which governs the server's decoder instead.
    """

    __slots__ = ("_count", "_decoder", "_first", "_generation", "_maxsize", "_memo", "_table")

    def __init__(self) -> None:
        self._decoder = hpack.Decoder(max_header_list_size=MAX_HEADER_LIST_SIZE)
        self._table = self._decoder.header_table
        self._memo: dict[bytes, tuple[int, int, dict[str, str]]] = {}
        # The table's state as of the last decode; a new generation starts whenever it changes.
        self._generation = 0
        self._first: tuple[bytes, bytes] | None = None
        self._count = 0
        self._maxsize = self._table.maxsize

    def decode(self, block: bytes) -> tuple[int, dict[str, str]]:
        """Decode a complete header block into (:status or 0 when absent, fields).

        Raises hpack.HPACKError when the block cannot be decoded (a connection error: the shared
        table is then unusable) and MalformedHeaders when it decodes to an invalid response head
        (a stream error). The returned dict is the caller's own.
        """
        hit = self._memo.get(block)
        if hit is not None and hit[0] == self._generation:
            return hit[1], hit[2].copy()
        fields = cast("list[tuple[str, str]]", self._decoder.decode(block))
        table = self._table
        entries = table.dynamic_entries
        # Holding the newest entry keeps its identity unique: an insertion always shows up as a
        # new object at the front, an eviction or resize as a new count or size.
        first = entries[0] if entries else None
        changed = first is not self._first or len(entries) != self._count or table.maxsize != self._maxsize
        if changed:
            self._first = first
            self._count = len(entries)
            self._maxsize = table.maxsize
            self._generation += 1
        status, headers = _head(fields)
        if not changed:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[block] = (self._generation, status, headers.copy())
        return status, headers
