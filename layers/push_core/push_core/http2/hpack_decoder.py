"""HPACK decoding (RFC 7541) of response header blocks, with Huffman-coded values decoded on first read.

Why our own: hpack's pure-Python decoder costs more than the rest of a request (~12 µs for an APNs
200 with a fresh apns-id, ~2 µs here); we need only a small, allocation-light subset, and values
nobody reads need not be Huffman-decoded. hpack stays our source for the static table and the
Huffman code, and our error subclasses its HPACKDecodingError.

Huffman strings are walked a byte at a time through per-state tables (a state is an internal node
of the code tree). Every string is walked once when its block is decoded, to validate it (EOS,
padding) and count its octets, which table and list sizes need (counting costs two thirds of
decoding); only a read builds its text. Table rows are built on first use: all of them would
cost ~45 ms and ~5 MB at import, and real traffic touches a fifth of them.

Values are read as UTF-8 with invalid sequences replaced (hpack fails the connection instead): a
value decoded when read cannot fail the connection then, and HTTP allows such octets. Names must
be UTF-8.
"""

from collections.abc import Container
from typing import Final, Generic, Protocol, TypeVar

from hpack import HPACKDecodingError
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable

# The dynamic table size we advertise: SETTINGS_HEADER_TABLE_SIZE left at its default.
DEFAULT_TABLE_SIZE: Final = 4096
# An entry's overhead in table and header-list sizes (RFC 7541 §4.1).
ENTRY_OVERHEAD: Final = 32
# Continuation octets an integer may use: 4 carry 28 bits, more than any length, index or size
# a decoder here can accept; more is an overlong or overflowing integer (RFC 7541 §5.1).
_MAX_CONTINUATION_OCTETS: Final = 4


class HpackDecodingError(HPACKDecodingError):
    """A header block that cannot be decoded; the connection's HPACK state is unusable after it.

    It is an hpack.HPACKDecodingError, so the connection ends with COMPRESSION_ERROR as for hpack's.
    """


# --- Huffman code (RFC 7541 §5.2, Appendix B) ------------------------------------------------

_EOS: Final = 256


def _code_tree() -> list[int]:
    # children[2 * node + bit]: an internal node's number (>= 0) or ~symbol for a leaf.
    children = [0, 0]
    for symbol, (code, length) in enumerate(zip(REQUEST_CODES, REQUEST_CODES_LENGTH, strict=True)):
        node = 0
        for shift in range(length - 1, 0, -1):
            slot = 2 * node + ((code >> shift) & 1)
            if not children[slot]:
                children[slot] = len(children) // 2
                children += (0, 0)
            node = children[slot]
        children[2 * node + (code & 1)] = ~symbol
    return children


_CHILDREN: Final = _code_tree()
_STATES: Final = len(_CHILDREN) // 2  # 256 internal nodes; node 0 is the root
_DEAD: Final = _STATES  # the state after EOS: absorbing, never accepting


def _padding_states() -> frozenset[int]:
    # A string may end at the root or after up to 7 bits of padding, which must be the EOS code's
    # most significant bits, all ones: the first 7 nodes down the all-ones path.
    states = [0]
    for _ in range(7):
        states.append(_CHILDREN[2 * states[-1] + 1])
    return frozenset(states)


_ACCEPTING: Final = _padding_states()

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


class _Row(Protocol[_T_co]):
    def __getitem__(self, byte: int, /) -> _T_co: ...


# Per state, per input byte: (next state, text emitted) and (next state, octets emitted).
_TEXT_ROWS: Final[list[_Row[tuple[int, str]]]] = []
_COUNT_ROWS: Final[list[_Row[tuple[int, int]]]] = []
# Count entries repeat across rows ((0, 1) is in nearly all): one shared tuple for each.
_COUNTS: Final[dict[tuple[int, int], tuple[int, int]]] = {}


def _build_rows(state: int) -> None:
    # Expand all 8-bit inputs a bit at a time, sharing prefixes: 510 steps rather than 2,048.
    walks = [(state, "")]
    for _ in range(8):
        longer: list[tuple[int, str]] = []
        for node, text in walks:
            for bit in (0, 1):
                if node == _DEAD:
                    longer.append((_DEAD, ""))
                    continue
                child = _CHILDREN[2 * node + bit]
                if child >= 0:
                    longer.append((child, text))
                elif ~child == _EOS:
                    longer.append((_DEAD, ""))
                else:
                    longer.append((0, text + chr(~child)))
        walks = longer
    _TEXT_ROWS[state] = walks
    _COUNT_ROWS[state] = [_COUNTS.setdefault(count, count) for count in ((node, len(text)) for node, text in walks)]


class _RowOnFirstUse(Generic[_T]):
    """Stands in for a state's row until first indexed, then builds it (and the state's other row)."""

    __slots__ = ("_rows", "_state")

    def __init__(self, rows: list[_Row[_T]], state: int) -> None:
        self._rows = rows
        self._state = state

    def __getitem__(self, byte: int, /) -> _T:
        _build_rows(self._state)
        return self._rows[self._state][byte]


_TEXT_ROWS.extend(_RowOnFirstUse(_TEXT_ROWS, state) for state in range(_STATES))
_COUNT_ROWS.extend(_RowOnFirstUse(_COUNT_ROWS, state) for state in range(_STATES))
_TEXT_ROWS.append([(_DEAD, "")] * 256)
_COUNT_ROWS.append([(_DEAD, 0)] * 256)


def huffman_length(code: bytes) -> int:
    """The number of octets a Huffman string decodes to, checking that it is valid.

    Raises HpackDecodingError for a string that contains EOS or ends in padding that is longer
    than 7 bits or not all ones (RFC 7541 §5.2).
    """
    rows = _COUNT_ROWS
    state = 0
    octets = 0
    for byte in code:
        state, emitted = rows[state][byte]
        octets += emitted
    if state not in _ACCEPTING:
        raise HpackDecodingError("Huffman string contains EOS" if state == _DEAD else "invalid Huffman padding")
    return octets


def _huffman_octets(code: bytes) -> str:
    # The decoded octets as a str of code points 0-255, one per octet.
    rows = _TEXT_ROWS
    state = 0
    text = ""
    for byte in code:
        state, emitted = rows[state][byte]
        text += emitted
    if state not in _ACCEPTING:
        huffman_length(code)  # raises the precise error
    return text


def huffman_decode(code: bytes) -> str:
    """The text of a Huffman-coded value: its octets as UTF-8, an invalid sequence becoming U+FFFD.

    Raises HpackDecodingError for an invalid string, as huffman_length does.
    """
    text = _huffman_octets(code)
    return text if text.isascii() else text.encode("latin-1").decode("utf-8", "replace")


class HuffmanValue:
    """A Huffman-coded field value, kept coded until its text is first asked for (`str(value)`).

    The decoder has validated the code and counted its octets by the time anyone holds one. The
    text is built once and shared by every response and table entry holding the value.
    """

    __slots__ = ("_text", "code")

    def __init__(self, code: bytes) -> None:
        self.code = code
        self._text: str | None = None

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = self._text = huffman_decode(self.code)
        return text

    def __repr__(self) -> str:
        return f"HuffmanValue({self.code!r})"


FieldValue = str | HuffmanValue
Field = tuple[str, FieldValue]


def text_of(value: FieldValue) -> str:
    """A field value as text, decoding it if it is still Huffman-coded."""
    return value if isinstance(value, str) else str(value)


# --- Decoder (RFC 7541 §3, §6) -----------------------------------------------------------------

_STATIC_COUNT: Final = len(HeaderTable.STATIC_TABLE)
# By index; index 0 is no field (RFC 7541 §6.1) and is rejected before these are read.
_STATIC_FIELDS: Final[tuple[Field, ...]] = (
    ("", ""),
    *((name.decode(), value.decode()) for name, value in HeaderTable.STATIC_TABLE),
)
_STATIC_SIZES: Final = (0, *(ENTRY_OVERHEAD + len(name) + len(value) for name, value in HeaderTable.STATIC_TABLE))
# Literal names by their encoding, length prefix included (so Huffman and raw never collide):
# servers send the same few names again and again.
_NAMES: Final[dict[bytes, tuple[str, int]]] = {}
_NAMES_LIMIT: Final = 256


def _integer(block: bytes, pos: int, value: int) -> tuple[int, int]:
    """Finish an integer whose prefix was all ones (`value`) from block[pos]: (integer, next pos)."""
    stop = pos + _MAX_CONTINUATION_OCTETS
    shift = 0
    while pos < len(block):
        if pos == stop:
            raise HpackDecodingError(f"integer longer than {_MAX_CONTINUATION_OCTETS} continuation octets")
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise HpackDecodingError("truncated integer")


def _octets(name: str) -> int:
    return len(name) if name.isascii() else len(name.encode())


def _literal_name(block: bytes, pos: int) -> tuple[str, int, int]:
    """A string literal name at block[pos] (RFC 7541 §5.2): (name, its octets, next pos)."""
    if pos >= len(block):
        raise HpackDecodingError("truncated header block")
    head = block[pos]
    length = head & 0x7F
    start = pos + 1
    if length == 0x7F:
        length, start = _integer(block, start, length)
    stop = start + length
    if stop > len(block):
        raise HpackDecodingError("string runs past the end of the block")
    key = block[pos:stop]
    known = _NAMES.get(key)
    if known is None:
        octets = _huffman_octets(block[start:stop]).encode("latin-1") if head & 0x80 else block[start:stop]
        try:
            known = (octets.decode(), len(octets))
        except UnicodeDecodeError as exc:
            raise HpackDecodingError("field name is not UTF-8") from exc
        if len(_NAMES) >= _NAMES_LIMIT:
            _NAMES.clear()
        _NAMES[key] = known
    return known[0], known[1], stop


class HpackDecoder:
    """Decodes one connection's header blocks in arrival order, holding its dynamic table.

    `max_table_size` is the SETTINGS_HEADER_TABLE_SIZE we advertise: the server may size the table
    up to it with updates at the start of a block. `generation` changes whenever the table does.
    """

    __slots__ = ("_entries", "_max_size", "_size", "_sizes", "generation", "max_header_list_size", "max_table_size")

    def __init__(self, max_table_size: int = DEFAULT_TABLE_SIZE, max_header_list_size: int = 65_536) -> None:
        self.max_table_size = max_table_size
        self.max_header_list_size = max_header_list_size
        self.generation = 0
        self._max_size = max_table_size
        self._size = 0
        # Newest entry last, so an insertion appends and an eviction trims the front.
        self._entries: list[Field] = []
        self._sizes: list[int] = []

    @property
    def table_size(self) -> int:
        """The dynamic table's size: the sum of its entries' sizes (RFC 7541 §4.1)."""
        return self._size

    @property
    def table_max_size(self) -> int:
        """The dynamic table's maximum size, as the server's last size update set it."""
        return self._max_size

    def table(self) -> list[tuple[str, str]]:
        """The dynamic table's entries as text, newest (index 62) first (coded values stay coded)."""
        return [
            (name, value if isinstance(value, str) else huffman_decode(value.code))
            for name, value in reversed(self._entries)
        ]

    def decode(self, block: bytes, decode_now: Container[str] = frozenset()) -> list[Field]:
        """The fields of a complete header block, in order.

        Huffman-coded values stay coded (HuffmanValue), except those of fields named in
        `decode_now`: decoding a value costs less than counting its octets now and decoding it
        when it is read, so values that will be read are better decoded at once.

        Raises HpackDecodingError for a block that breaks RFC 7541 (truncated, a bad index or
        Huffman string, an overlong integer), for a table size update above max_table_size or
        after a field, and for a header list larger than max_header_list_size.
        """
        fields: list[Field] = []
        append = fields.append
        entries = self._entries
        sizes = self._sizes
        end = len(block)
        listed = 0  # the header list's size, counted like a table's (RFC 9113 §6.5.2)
        pos = 0
        while pos < end:
            byte = block[pos]
            pos += 1
            if byte & 0x80:  # indexed field (§6.1)
                index = byte & 0x7F
                if index == 0x7F:
                    index, pos = _integer(block, pos, index)
                if index > _STATIC_COUNT:
                    index -= _STATIC_COUNT
                    if index > len(entries):
                        raise HpackDecodingError(f"index {index + _STATIC_COUNT} is beyond the table")
                    append(entries[-index])
                    listed += sizes[-index]
                elif index:
                    append(_STATIC_FIELDS[index])
                    listed += _STATIC_SIZES[index]
                else:
                    raise HpackDecodingError("index 0")
            elif byte & 0x40 or not byte & 0x20:  # literal (§6.2): incremental indexing, without, never
                prefix = 0x3F if byte & 0x40 else 0x0F
                index = byte & prefix
                if index:
                    if index == prefix:
                        index, pos = _integer(block, pos, index)
                    if index <= _STATIC_COUNT:
                        name = _STATIC_FIELDS[index][0]
                    elif index - _STATIC_COUNT <= len(entries):
                        name = entries[_STATIC_COUNT - index][0]
                    else:
                        raise HpackDecodingError(f"index {index} is beyond the table")
                    size = ENTRY_OVERHEAD + _octets(name)
                else:
                    name, size, pos = _literal_name(block, pos)
                    size += ENTRY_OVERHEAD
                if pos >= end:
                    raise HpackDecodingError("truncated header block")
                head = block[pos]
                length = head & 0x7F
                pos += 1
                if length == 0x7F:
                    length, pos = _integer(block, pos, length)
                stop = pos + length
                if stop > end:
                    raise HpackDecodingError("string runs past the end of the block")
                value: FieldValue
                if head & 0x80 and length:
                    code = block[pos:stop]
                    if name in decode_now:
                        text = _huffman_octets(code)
                        size += len(text)
                        value = text if text.isascii() else text.encode("latin-1").decode("utf-8", "replace")
                    else:
                        size += huffman_length(code)
                        value = HuffmanValue(code)
                else:
                    value = block[pos:stop].decode("utf-8", "replace")
                    size += length
                pos = stop
                field = (name, value)
                if byte & 0x40:  # inline: the hot path of every APNs response
                    self.generation += 1
                    if size > self._max_size:  # empties the table, is not added (§4.4)
                        entries.clear()
                        sizes.clear()
                        self._size = 0
                    else:
                        entries.append(field)
                        sizes.append(size)
                        total = self._size + size
                        if total > self._max_size:  # evict oldest first (§4.4)
                            dropped = 0
                            while total > self._max_size:
                                total -= sizes[dropped]
                                dropped += 1
                            del entries[:dropped]
                            del sizes[:dropped]
                        self._size = total
                append(field)
                listed += size
            else:  # dynamic table size update (§6.3)
                new_size = byte & 0x1F
                if new_size == 0x1F:
                    new_size, pos = _integer(block, pos, new_size)
                if fields:
                    raise HpackDecodingError("table size update after a field")
                if new_size > self.max_table_size:
                    raise HpackDecodingError(f"table size update to {new_size}, above our {self.max_table_size}")
                self._max_size = new_size
                self._evict()
            if listed > self.max_header_list_size:
                raise HpackDecodingError(f"header list larger than {self.max_header_list_size} octets")
        return fields

    def _evict(self) -> None:
        # Oldest first, until the table fits its maximum size (RFC 7541 §4.3).
        self.generation += 1
        sizes = self._sizes
        size = self._size
        dropped = 0
        while size > self._max_size:
            size -= sizes[dropped]
            dropped += 1
        del self._entries[:dropped]
        del sizes[:dropped]
        self._size = size
