"""Responses: the Response value, its headers, and the decoder that turns header blocks into both.

Header blocks are decoded by our HpackDecoder, which leaves Huffman-coded values coded until they
are read (ResponseHeaders is the dict that decodes them then), except for fields whose values
callers have been seen to read. In front of the decoder sits a memo of blocks whose decoding left
the dynamic table untouched: servers repeat such blocks byte for byte (a status plus fields
already in the table), and a repeat decodes to the same fields for as long as the table has not
changed since.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar, cast, overload

from push_core.http2.hpack_decoder import DEFAULT_TABLE_SIZE, Field, FieldValue, HpackDecoder, HuffmanValue

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_values

_T = TypeVar("_T")

# Names of the fields whose values callers read one by one (get, []): from then on their values are
# decoded as they arrive, which is cheaper than counting a Huffman string's octets when the block
# is decoded and decoding it when read (3.1 µs against 4.9 per APNs 200 whose apns-id is read).
# Values of other fields stay coded until read. Callers read a handful of names; the cap is a guard.
_READ_NAMES: Final[set[str]] = set()
_READ_NAMES_LIMIT: Final = 64


def forget_read_names() -> None:
    """Forget which names callers read, so their values arrive coded again (tests start from here)."""
    _READ_NAMES.clear()


def _decoded(name: str, value: HuffmanValue) -> str:
    if len(_READ_NAMES) < _READ_NAMES_LIMIT:
        _READ_NAMES.add(name)
    return str(value)


class ResponseHeaders(dict[str, str]):
    """A response's fields by name: a dict[str, str] whose Huffman-coded values decode when first read.

    Until read, such a value is stored as a HuffmanValue; every dict method that hands out values
    is overridden to decode them first, and __iter__ is overridden so that dict(headers),
    {**headers} and other.update(headers) read through __getitem__ rather than copy raw storage.
    """

    __slots__ = ()

    def __getitem__(self, name: str, /) -> str:
        value: object = dict.__getitem__(self, name)
        if isinstance(value, HuffmanValue):
            value = _decoded(name, value)
            dict.__setitem__(self, name, value)
        return cast("str", value)

    @overload
    def get(self, name: str, default: None = None, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str, /) -> str: ...
    @overload
    def get(self, name: str, default: _T, /) -> str | _T: ...
    def get(self, name: str, default: object = None, /) -> object:
        """The value of field `name` (its repeats joined with ", "), or `default` if absent."""
        value: object = dict.get(self, name, default)
        if isinstance(value, HuffmanValue):
            value = _decoded(name, value)
            dict.__setitem__(self, name, value)
        return value

    @overload
    def pop(self, name: str, /) -> str: ...
    @overload
    def pop(self, name: str, default: str, /) -> str: ...
    @overload
    def pop(self, name: str, default: _T, /) -> str | _T: ...
    def pop(self, name: str, /, *default: object) -> object:
        """Remove field `name` and return its value, or `default` if given and the field is absent."""
        value: object = dict.pop(self, name, *default)
        return str(value) if value.__class__ is HuffmanValue else value

    def popitem(self) -> tuple[str, str]:
        """Remove and return the last field inserted."""
        name, value = dict.popitem(self)
        return name, str(value)

    @overload
    def setdefault(self: "dict[str, str | None]", name: str, default: None = None, /) -> str | None: ...
    @overload
    def setdefault(self, name: str, default: str, /) -> str: ...
    def setdefault(self, name: str, default: str | None = None, /) -> str | None:
        """The value of field `name`, after adding it with `default` if absent."""
        if name in self:
            return self[name]
        cast("dict[str, str | None]", self)[name] = default
        return default

    def values(self) -> "dict_values[str, str]":
        """The fields' values, all decoded."""
        self._decode_all()
        return dict.values(self)

    def items(self) -> "dict_items[str, str]":
        """The fields as (name, value) pairs, all decoded."""
        self._decode_all()
        return dict.items(self)

    def __iter__(self) -> Iterator[str]:
        return dict.__iter__(self)

    def __eq__(self, other: object, /) -> bool:
        self._decode_all()
        if isinstance(other, ResponseHeaders):
            other._decode_all()
        return dict.__eq__(self, other)

    def __ne__(self, other: object, /) -> bool:
        return not self == other

    def __repr__(self) -> str:
        self._decode_all()
        return dict.__repr__(self)

    def _decode_all(self) -> None:
        stored = cast("dict[str, FieldValue]", self)
        for name, value in list(dict.items(stored)):
            if value.__class__ is HuffmanValue:
                stored[name] = str(value)


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


def _head(fields: list[Field]) -> tuple[int, dict[str, str]]:
    status = 0
    # A plain dict until a value is still Huffman-coded: the cheaper and the common case.
    headers: dict[str, str] = {}
    for name, value in fields:
        if name[:1] == ":":
            if name != ":status" or status or headers:
                raise MalformedHeaders(f"unexpected pseudo-header {name!r}")
            text = str(value)
            if len(text) != 3 or not text.isdigit():
                raise MalformedHeaders(f"invalid :status {text!r}")
            status = int(text)
        elif name in headers:
            # Repeated fields combine with a comma (RFC 9110 §5.3).
            headers[name] += ", " + str(value)
        elif value.__class__ is str:
            headers[name] = value
        else:
            if headers.__class__ is dict:
                headers = ResponseHeaders(headers)
            headers[name] = value  # type: ignore[assignment]  # decoded by ResponseHeaders when read
    return status, headers


class HeaderBlockDecoder:
    """Decodes one connection's response header blocks in arrival order.

    The dynamic table's size limit is the one *we* advertise (SETTINGS_HEADER_TABLE_SIZE, left at
    the default 4096), never the server's setting, which governs the server's decoder instead.
    """

    __slots__ = ("_decoder", "_memo")

    def __init__(self) -> None:
        self._decoder = HpackDecoder(DEFAULT_TABLE_SIZE, MAX_HEADER_LIST_SIZE)
        # Block -> (table generation it was decoded in, status, fields as _head stored them, their type).
        self._memo: dict[bytes, tuple[int, int, dict[str, str], type[dict[str, str]]]] = {}

    def decode(self, block: bytes) -> tuple[int, dict[str, str]]:
        """Decode a complete header block into (:status or 0 when absent, fields).

        The fields are a ResponseHeaders when a value is still Huffman-coded, else a plain dict
        (cheaper, and the same to callers). Raises HpackDecodingError (an hpack.HPACKError) when
        the block cannot be decoded (a connection error: the shared table is then unusable) and
        MalformedHeaders when it decodes to an invalid response head (a stream error). The returned
        dict is the caller's own.
        """
        decoder = self._decoder
        generation = decoder.generation
        hit = self._memo.get(block)
        if hit is not None and hit[0] == generation:
            return hit[1], hit[2].copy() if hit[3] is dict else ResponseHeaders(hit[2])
        status, headers = _head(decoder.decode(block, _READ_NAMES))
        if decoder.generation == generation:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            # Values as stored: coded ones stay coded, shared by every copy (HuffmanValue decodes once).
            self._memo[block] = (generation, status, dict(dict.items(headers)), headers.__class__)
        return status, headers
