"""Our HPACK decoder, checked against hpack's (an independent implementation) and RFC 7541's own examples.

Every differential test drives one long sequence of blocks through one decoder of each kind, so
the dynamic tables must stay in step; after each block the fields and the whole table are compared.
"""

import random
import string
import uuid
from collections.abc import Callable, Iterator, Sequence

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable
from hyperframe.frame import ContinuationFrame, Frame, HeadersFrame

from push_core.http2 import hpack_decoder
from push_core.http2.hpack_decoder import HpackDecoder, HpackDecodingError, huffman_decode, huffman_length, text_of
from push_core.http2.request_headers import encode_integer

Fields = list[tuple[str, str]]
READ_BY_PROVIDERS = frozenset({"apns-id", "retry-after", "location"})
HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


def ours(decoder: HpackDecoder, block: bytes, decode_now: frozenset[str] = frozenset()) -> Fields:
    return [(name, text_of(value)) for name, value in decoder.decode(block, decode_now)]


def theirs(decoder: hpack.Decoder, block: bytes) -> Fields:
    return [(str(name), str(value)) for name, value in decoder.decode(block)]


def hpack_table(decoder: hpack.Decoder) -> Fields:
    return [(name.decode(), value.decode()) for name, value in decoder.header_table.dynamic_entries]


def assert_in_step(decoder: HpackDecoder, reference: hpack.Decoder) -> None:
    entries = reference.header_table.dynamic_entries
    assert decoder.table() == hpack_table(reference)
    assert decoder.table_size == sum(32 + len(name) + len(value) for name, value in entries)
    assert decoder.table_max_size == reference.header_table_size


# --- Random header lists ---------------------------------------------------------------------------

_COMMON_NAMES = sorted(
    {name.decode() for name, _ in HeaderTable.STATIC_TABLE if not name.startswith(b":")}
    | {"apns-id", "apns-unique-id", "x-request-id", "alt-svc", "x-content-type-options", "x-frame-options"}
)
_STATIC_VALUES = sorted({value.decode() for _, value in HeaderTable.STATIC_TABLE if value})


def random_name(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return rng.choice(_COMMON_NAMES)
    return "x-" + "".join(rng.choices(string.ascii_lowercase + string.digits + "-", k=rng.randint(1, 24)))


def random_value(rng: random.Random, history: list[str]) -> str:
    kind = rng.random()
    if kind < 0.15 and history:
        return rng.choice(history)  # a repeat: often an indexed field
    if kind < 0.35:
        return str(uuid.UUID(int=rng.getrandbits(128)))
    if kind < 0.45:
        return str(rng.randrange(10 ** rng.randint(1, 12)))
    if kind < 0.5:
        return ""
    if kind < 0.55:
        return rng.choice(_STATIC_VALUES)
    if kind < 0.62:
        # Eviction pressure: long values, some larger than the whole table (which empties it).
        return "".join(rng.choices(string.ascii_letters, k=rng.choice([300, 1500, 4000, 4100])))
    if kind < 0.7:
        return "".join(rng.choices("aé✓日本-~€ \t\U0001f600", k=rng.randint(1, 20)))  # UTF-8 of 2-4 octets
    # Printable ASCII, whose rarer characters have Huffman codes of up to 28 bits.
    return "".join(rng.choices(string.printable[:95], k=rng.randint(1, 60)))


def random_fields(rng: random.Random, history: list[str], count: int) -> Fields:
    fields = [(random_name(rng), random_value(rng, history)) for _ in range(count)]
    history.extend(value for _, value in fields if len(value) < 100)
    del history[:-50]
    return fields


def response_fields(rng: random.Random, history: list[str]) -> Fields:
    status = rng.choice(["200", "200", "200", "204", "400", "410", "429", "500", "503"])
    return [(":status", status), *random_fields(rng, history, rng.randint(0, 6))]


# --- Encoders --------------------------------------------------------------------------------------


def encode_string(raw: bytes, huffman: bool) -> bytes:
    if huffman:
        code = HUFFMAN.encode(raw)
        return encode_integer(len(code), 7, 0x80) + code
    return encode_integer(len(raw), 7, 0) + raw


class MixedEncoder:
    """An encoder that picks among all RFC 7541 representations at random, unlike hpack's and h2's.

    Those never send literals without indexing, and always index a full match; this one also sends
    indexed names for fields in neither table, two size updates in one block, and Huffman per string.
    hpack's HeaderTable keeps its dynamic table.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.table = HeaderTable()
        self._resizes: list[int] = []

    def resize(self, *sizes: int) -> None:
        self._resizes.extend(sizes)

    def encode(self, fields: Fields) -> bytes:
        rng = self.rng
        out = bytearray()
        for size in self._resizes:
            out += encode_integer(size, 5, 0x20)
            self.table.maxsize = size
        self._resizes.clear()
        for name, value in fields:
            raw_name, raw_value = name.encode(), value.encode()
            match = self.table.search(raw_name, raw_value)
            if match is not None and match[2] is not None and rng.random() < 0.6:
                out += encode_integer(match[0], 7, 0x80)
                continue
            flags, prefix = rng.choice([(0x40, 6), (0x40, 6), (0x00, 4), (0x10, 4)])
            if match is not None and rng.random() < 0.8:
                out += encode_integer(match[0], prefix, flags)
            else:
                out += bytes((flags,)) + encode_string(raw_name, rng.random() < 0.5)
            out += encode_string(raw_value, rng.random() < 0.5)
            if flags == 0x40:
                self.table.add(raw_name, raw_value)
        return bytes(out)


_H2_REFUSES_TO_SEND = {
    "connection",
    "content-length",
    "cookie",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
}


def h2_response_blocks(rng: random.Random, count: int) -> Iterator[tuple[bytes, Fields]]:
    """Header blocks of responses sent by an h2 server, with the fields h2's client decoded from each.

    The client sometimes changes SETTINGS_HEADER_TABLE_SIZE, so h2's encoder sends size updates.
    """
    config = h2.config.H2Configuration
    client = h2.connection.H2Connection(config(client_side=True, header_encoding="utf-8"))
    server = h2.connection.H2Connection(config(client_side=False, header_encoding="utf-8"))
    client.initiate_connection()
    server.initiate_connection()
    history: list[str] = []
    request = [(":method", "GET"), (":scheme", "https"), (":authority", "example.com"), (":path", "/")]
    for _ in range(count):
        if rng.random() < 0.03:
            client.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: rng.choice([0, 100, 1024, 4096])})
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
        stream_id = client.get_next_available_stream_id()
        client.send_headers(stream_id, request, end_stream=True)
        server.receive_data(client.data_to_send())
        # h2 checks what it sends (no connection-specific fields, a numeric content-length, no
        # whitespace around values) and joins the cookie fields it receives.
        fields = [
            (name, value.strip(" \t"))
            for name, value in response_fields(rng, history)
            if name not in _H2_REFUSES_TO_SEND
        ]
        if rng.random() < 0.1:
            fields.append(("authorization", "Bearer " + "".join(rng.choices(string.ascii_letters, k=20))))
        server.send_headers(stream_id, fields, end_stream=True)
        data = server.data_to_send()
        events = client.receive_data(data)
        received = next(event for event in events if isinstance(event, h2.events.ResponseReceived))
        assert received.headers is not None
        yield header_block(data), [(str(name), str(value)) for name, value in received.headers]


def header_block(data: bytes) -> bytes:
    """The header block in a run of frames: one HEADERS frame and its CONTINUATION frames."""
    block = b""
    view = memoryview(data)
    while view:
        frame, length = Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        if isinstance(frame, HeadersFrame | ContinuationFrame):
            block += frame.data
        view = view[9 + length :]
    return block


# --- (a)+(b) Differential: our decoder and hpack's on the same long sequences -----------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blocks_from_hpacks_encoder_decode_as_hpack_decodes_them(seed: int) -> None:
    rng = random.Random(seed)
    encoder = hpack.Encoder()
    decoder, reference = HpackDecoder(), hpack.Decoder()
    history: list[str] = []
    unread: list[tuple[list[hpack_decoder.Field], Fields]] = []
    emptied = 0
    for _ in range(1000):
        if rng.random() < 0.04:
            encoder.header_table_size = rng.choice([0, 0, 1, 64, 256, 1000, 4096])
        fields = random_fields(rng, history, rng.randint(0, 12))
        sent: list[hpack.HeaderTuple | tuple[str, str]] = [
            hpack.NeverIndexedHeaderTuple(name, value) if rng.random() < 0.1 else (name, value)
            for name, value in fields
        ]
        block = encoder.encode(sent, huffman=rng.random() < 0.8)
        emptied += block[:1] == b"\x20"

        expected = theirs(reference, block)
        if rng.random() < 0.5:
            assert ours(decoder, block) == expected == fields
        else:
            unread.append((decoder.decode(block), expected))  # read after later blocks have moved the table
        assert_in_step(decoder, reference)

    for decoded, expected in unread:
        assert [(name, text_of(value)) for name, value in decoded] == expected
    assert emptied > 3  # size updates to 0 came up


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_blocks_using_every_representation_decode_as_hpack_decodes_them(seed: int) -> None:
    rng = random.Random(seed)
    encoder = MixedEncoder(rng)
    decoder, reference = HpackDecoder(), hpack.Decoder()
    decode_now = frozenset(rng.sample(_COMMON_NAMES, 12))  # these decoded at once, the rest when read
    history: list[str] = []
    for _ in range(1000):
        if rng.random() < 0.04:
            smaller = rng.choice([0, 0, 50, 300, 1000])
            encoder.resize(*rng.choice([[smaller], [smaller, rng.choice([smaller, 2000, 4096])]]))
        fields = random_fields(rng, history, rng.randint(0, 12))
        block = encoder.encode(fields)

        assert ours(decoder, block, decode_now) == theirs(reference, block) == fields
        assert_in_step(decoder, reference)
        assert decoder.table() == [(name.decode(), value.decode()) for name, value in encoder.table.dynamic_entries]


@pytest.mark.parametrize("seed", [7, 8])
def test_response_blocks_from_h2s_server_decode_as_h2s_client_decodes_them(seed: int) -> None:
    rng = random.Random(seed)
    decoder, reference = HpackDecoder(), hpack.Decoder()
    size_updates = 0
    for block, received in h2_response_blocks(rng, 600):
        assert ours(decoder, block, READ_BY_PROVIDERS) == theirs(reference, block) == received
        assert_in_step(decoder, reference)
        size_updates += block[0] & 0xE0 == 0x20
    assert size_updates > 3


def test_every_case_of_the_response_header_tests_decodes_as_hpack_decodes_it() -> None:
    encoder = hpack.Encoder()
    decoder, reference = HpackDecoder(), hpack.Decoder()
    blocks = [
        encoder.encode([(":status", "200"), ("x-a", "1")]),
        encoder.encode([(":status", "200"), ("x-a", "1")]),
        encoder.encode([(":status", "200"), ("x-b", "2")]),
        encoder.encode([(":status", "200"), ("x-b", "2")]),
        b"\x88",
        encoder.encode([("x-a", "1"), (":status", "200")]),
        encoder.encode([(":status", "200"), (":status", "200")]),
        encoder.encode([(":status", "20")]),
        encoder.encode([(":status", "abc")]),
        encoder.encode([(":path", "/")]),
        encoder.encode([(":status", "200"), ("vary", "accept"), ("vary", "origin"), ("x-other", "1")]),
        encoder.encode([(":status", "103"), ("link", "</style.css>; rel=preload")]),
        encoder.encode([(":status", "200"), ("apns-id", "6a1b5e3c-0000-4000-8000-1234567890ab")]),
        encoder.encode([("grpc-status", "0"), ("x-trailer", "t")]),
    ]
    encoder.header_table_size = 0
    blocks.append(encoder.encode([(":status", "204")]))
    encoder.header_table_size = 4096
    blocks.append(encoder.encode([(":status", "200"), ("x-a", "1")]))
    for block in blocks:
        assert ours(decoder, block) == theirs(reference, block)
        assert_in_step(decoder, reference)


# --- (c) RFC 7541 Appendix C ------------------------------------------------------------------------

_REQUEST_1 = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]
_REQUEST_2 = [*_REQUEST_1, ("cache-control", "no-cache")]
_REQUEST_3 = [
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
]
_REQUEST_TABLES = [
    ([(":authority", "www.example.com")], 57),
    ([("cache-control", "no-cache"), (":authority", "www.example.com")], 110),
    ([("custom-key", "custom-value"), ("cache-control", "no-cache"), (":authority", "www.example.com")], 164),
]
_DATE_1 = ("date", "Mon, 21 Oct 2013 20:13:21 GMT")
_DATE_2 = ("date", "Mon, 21 Oct 2013 20:13:22 GMT")
_LOCATION = ("location", "https://www.example.com")
_COOKIE = ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")
_RESPONSES = [
    [(":status", "302"), ("cache-control", "private"), _DATE_1, _LOCATION],
    [(":status", "307"), ("cache-control", "private"), _DATE_1, _LOCATION],
    [(":status", "200"), ("cache-control", "private"), _DATE_2, _LOCATION, ("content-encoding", "gzip"), _COOKIE],
]
_RESPONSE_TABLES = [
    ([_LOCATION, _DATE_1, ("cache-control", "private"), (":status", "302")], 222),
    ([(":status", "307"), _LOCATION, _DATE_1, ("cache-control", "private")], 222),
    ([_COOKIE, ("content-encoding", "gzip"), _DATE_2], 215),
]

RFC_7541_APPENDIX_C = {
    # C.3: requests without Huffman coding, default table size.
    "C.3": (
        4096,
        [
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ],
        [_REQUEST_1, _REQUEST_2, _REQUEST_3],
        _REQUEST_TABLES,
    ),
    # C.4: the same requests with Huffman coding.
    "C.4": (
        4096,
        [
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ],
        [_REQUEST_1, _REQUEST_2, _REQUEST_3],
        _REQUEST_TABLES,
    ),
    # C.5: responses without Huffman coding, a 256-octet table, so entries are evicted.
    "C.5": (
        256,
        [
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32"
            "3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970"
            "7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61"
            "6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
        ],
        _RESPONSES,
        _RESPONSE_TABLES,
    ),
    # C.6: the same responses with Huffman coding.
    "C.6": (
        256,
        [
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad"
            "1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2"
            "e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ],
        _RESPONSES,
        _RESPONSE_TABLES,
    ),
}


@pytest.mark.parametrize("example", sorted(RFC_7541_APPENDIX_C))
def test_rfc_7541_appendix_c_sequences_give_the_published_header_lists_and_tables(example: str) -> None:
    table_size, blocks, header_lists, tables = RFC_7541_APPENDIX_C[example]
    decoder = HpackDecoder(max_table_size=table_size)
    reference = hpack.Decoder()
    reference.header_table_size = table_size

    for block, header_list, (table, size) in zip(blocks, header_lists, tables, strict=True):
        raw = bytes.fromhex(block)
        assert ours(decoder, raw) == theirs(reference, raw) == header_list
        assert (decoder.table(), decoder.table_size) == (table, size)


@pytest.mark.parametrize(
    ("block", "fields", "table"),
    [
        # C.2.1-C.2.4: one field in each representation.
        (
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            [("custom-key", "custom-header")],
            [("custom-key", "custom-header")],
        ),
        ("040c 2f73 616d 706c 652f 7061 7468", [(":path", "/sample/path")], []),
        ("1008 7061 7373 776f 7264 0673 6563 7265 74", [("password", "secret")], []),
        ("82", [(":method", "GET")], []),
    ],
)
def test_rfc_7541_appendix_c2_field_representations_decode_as_published(
    block: str, fields: Fields, table: Fields
) -> None:
    decoder = HpackDecoder()

    assert ours(decoder, bytes.fromhex(block)) == fields
    assert decoder.table() == table


@pytest.mark.parametrize(("block", "size"), [("2a", 10), ("3f9a0a", 1337)])
def test_rfc_7541_appendix_c1_integers_decode_as_published(block: str, size: int) -> None:
    # C.1.1 and C.1.2 are 5-bit-prefix integers: the prefix of a table size update.
    decoder = HpackDecoder()

    assert decoder.decode(bytes.fromhex(block)) == []
    assert decoder.table_max_size == size


# --- (d) Malformed blocks ----------------------------------------------------------------------------


def _big_entry_then_repeats(repeats: int) -> bytes:
    # One 4,032-octet entry, then indexed references to it: each adds 4,032 octets to the list.
    return b"\x40\x01a" + encode_integer(3998, 7, 0) + b"v" * 3998 + b"\xbe" * repeats


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (b"\xff", "truncated integer"),
        (b"\xff\x80\x80", "truncated integer"),
        (b"\x0f", "truncated integer"),
        (b"\xff\xff\xff\xff\xff\x0f", "integer longer than 4 continuation octets"),
        (b"\x3f\xe1\xff\xff\xff\xff\x7f", "integer longer than 4 continuation octets"),
        (b"\x01\x7f\x80\x80\x80\x80\x01", "integer longer than 4 continuation octets"),
        (b"\x80", "index 0"),
        (b"\xbe", "index 62 is beyond the table"),
        (b"\xff\x80\x7f", "is beyond the table"),
        (b"\x7e\x01v", "index 62 is beyond the table"),
        (b"\x0f\x2f\x01v", "index 62 is beyond the table"),
        (b"\x3f\xe2\x1f", "table size update to 4097, above our 4096"),
        (b"\x88\x20", "table size update after a field"),
        (b"\x01\x81\x18", "invalid Huffman padding"),  # "a" (00011), then 000: not the EOS prefix
        (b"\x01\x82\x1f\xff", "invalid Huffman padding"),  # "a", then 11 bits of padding
        (b"\x01\x81\xfe", "invalid Huffman padding"),  # 7 ones and a zero: an unfinished code, not padding
        (b"\x01\x84\xff\xff\xff\xff", "Huffman string contains EOS"),
        (b"\x01\x85\x1f\xff\xff\xff\xff", "Huffman string contains EOS"),  # "a" then EOS
        (b"\x00\x81\x18\x01v", "invalid Huffman padding"),  # in a name
        (b"\x01\x05abc", "string runs past the end of the block"),
        (b"\x01\x7f\x01" + b"v" * 100, "string runs past the end of the block"),
        (b"\x00\x05ab", "string runs past the end of the block"),
        (b"\x01", "truncated header block"),
        (b"\x00", "truncated header block"),
        (b"\x40\x01a", "truncated header block"),
        (b"\x00\x01\xff\x01v", "field name is not UTF-8"),
        (_big_entry_then_repeats(16), "header list larger than 65536 octets"),
        (b"\x01" + encode_integer(65_536, 7, 0) + b"v" * 65_536, "header list larger than 65536 octets"),
    ],
)
@pytest.mark.parametrize("decode_now", [frozenset(), frozenset({":authority", "a"})], ids=["lazily", "at-once"])
def test_malformed_blocks_raise_the_decoding_error_the_connection_maps_to_compression_error(
    block: bytes, message: str, decode_now: frozenset[str]
) -> None:
    with pytest.raises(HpackDecodingError, match=message) as raised:
        HpackDecoder().decode(block, decode_now)

    assert isinstance(raised.value, hpack.HPACKError)  # what connection.py turns into COMPRESSION_ERROR


def test_a_header_list_at_the_maximum_is_accepted() -> None:
    decoder = HpackDecoder()
    # 16 references of 4,032 octets (the entry is 32 + 1 + 3,999): 64,512, under 65,536.
    fields = decoder.decode(_big_entry_then_repeats(15))

    assert len(fields) == 16


def test_two_size_updates_at_the_start_of_a_block_are_accepted() -> None:
    decoder = HpackDecoder()
    decoder.decode(b"\x40\x01a\x01v")  # one entry

    decoder.decode(b"\x20\x3f\xe1\x1f\x88")  # 0 (evicts it), then 4096, then a field

    assert (decoder.table(), decoder.table_max_size) == ([], 4096)


def test_an_entry_larger_than_the_table_empties_it_and_is_not_added() -> None:
    decoder = HpackDecoder(max_table_size=100)
    decoder.decode(b"\x40\x01a\x01v")

    fields = ours(decoder, b"\x40\x01b" + encode_integer(70, 7, 0) + b"w" * 70)  # 32 + 1 + 70 > 100

    assert fields == [("b", "w" * 70)]
    assert (decoder.table(), decoder.table_size) == ([], 0)


def test_a_value_that_is_not_utf8_decodes_with_replacement_characters() -> None:
    # hpack fails the connection here; the octets are legal in HTTP (obs-text), and a lazily decoded
    # value cannot fail at read time, so every value decodes the same forgiving way.
    raw = b"\x01\x03a\xffb"
    coded = HUFFMAN.encode(b"a\xffb")
    huffman = b"\x01" + encode_integer(len(coded), 7, 0x80) + coded

    at_once = ours(HpackDecoder(), huffman, frozenset({":authority"}))

    assert ours(HpackDecoder(), raw) == ours(HpackDecoder(), huffman) == at_once == [(":authority", "a\ufffdb")]


# --- Huffman code --------------------------------------------------------------------------------------


def test_every_octet_round_trips_through_the_huffman_code() -> None:
    octets = bytes(range(256)) * 2
    code = HUFFMAN.encode(octets)

    assert huffman_length(code) == 512
    assert huffman_decode(code) == octets.decode("utf-8", "replace")
    text = "".join(chr(c) for c in range(32, 0x800, 7)) + "\U0001f600"
    assert huffman_decode(HUFFMAN.encode(text.encode())) == text


def test_arbitrary_octet_strings_are_accepted_or_rejected_as_hpacks_huffman_decoder_does() -> None:
    rng = random.Random(9)
    accepted = 0
    for _ in range(20_000):
        # Weighted to ones, so that padding and EOS come up often.
        code = bytes(rng.choice([rng.randrange(256), 0xFF, 0xFE, 0x7F]) for _ in range(rng.randint(0, 6)))
        try:
            expected: bytes | None = decode_huffman(code)
        except hpack.HPACKDecodingError:
            expected = None
        if expected is None:
            with pytest.raises(HpackDecodingError):
                huffman_length(code)
            with pytest.raises(HpackDecodingError):
                huffman_decode(code)
        else:
            accepted += 1
            assert huffman_length(code) == len(expected)
            assert huffman_decode(code) == expected.decode("utf-8", "replace")
    assert 5_000 < accepted < 15_000  # both outcomes well exercised


@pytest.mark.parametrize("padding", range(8))
def test_huffman_padding_of_up_to_7_one_bits_is_accepted(padding: int) -> None:
    # "0" is 00000 (5 bits) and "a" 00011; pad "0" + "a"*k to a byte boundary with `padding` ones.
    for count in range(8):
        bits = "00000" + "00011" * count
        if (8 - len(bits) % 8) % 8 == padding:
            code = int(bits + "1" * padding, 2).to_bytes((len(bits) + padding) // 8, "big")
            assert huffman_decode(code) == "0" + "a" * count
            return
    pytest.fail("no string with that padding")


# --- (e) Lazy values -------------------------------------------------------------------------------------


def count_huffman_decodes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    calls: list[bytes] = []
    real: Callable[[bytes], str] = hpack_decoder.huffman_decode

    def counting(code: bytes) -> str:
        calls.append(code)
        return real(code)

    monkeypatch.setattr(hpack_decoder, "huffman_decode", counting)
    return calls


def apns_blocks(count: int, seed: int = 10) -> tuple[list[bytes], list[str]]:
    rng = random.Random(seed)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(count)]
    encoder = hpack.Encoder()
    return [encoder.encode([(":status", "200"), ("apns-id", apns_id)]) for apns_id in ids], ids


def test_huffman_values_nobody_reads_are_never_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_huffman_decodes(monkeypatch)
    blocks, _ = apns_blocks(200)
    assert blocks[-1][:2] == b"\x88\x7e"  # :status 200, then apns-id indexed by name...
    assert blocks[-1][2] & 0x80  # ...with a Huffman-coded value
    decoder = HpackDecoder()

    for block in blocks:
        decoder.decode(block)

    assert calls == []


def test_a_huffman_value_is_decoded_once_when_read_and_matches_hpack(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_huffman_decodes(monkeypatch)
    blocks, ids = apns_blocks(200)
    decoder, reference = HpackDecoder(), hpack.Decoder()
    decoded = [decoder.decode(block) for block in blocks]
    expected = [theirs(reference, block) for block in blocks]

    # Read in reverse: the early values left the table long ago, and still decode.
    texts = [[(name, text_of(value)) for name, value in fields] for fields in reversed(decoded)]
    again = [[(name, text_of(value)) for name, value in fields] for fields in decoded]

    assert texts[::-1] == again == expected
    assert [fields[1] for fields in expected] == [("apns-id", apns_id) for apns_id in ids]
    assert len(calls) == 200


def test_a_huffman_value_referenced_from_the_table_is_decoded_once_for_all_its_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = count_huffman_decodes(monkeypatch)
    encoder = hpack.Encoder()
    decoder = HpackDecoder()
    blocks = [encoder.encode([("content-type", "application/json; charset=utf-8")]) for _ in range(5)]
    assert blocks[1:] == [b"\xbe"] * 4  # inserted once, then indexed

    values = [text_of(decoder.decode(block)[0][1]) for block in blocks]

    assert values == ["application/json; charset=utf-8"] * 5
    assert len(calls) == 1


def test_unread_values_are_still_counted_in_table_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_huffman_decodes(monkeypatch)
    blocks, _ = apns_blocks(300)
    decoder, reference = HpackDecoder(), hpack.Decoder()
    for block in blocks:
        decoder.decode(block)
        reference.decode(block)
        entries = reference.header_table.dynamic_entries
        assert decoder.table_size == sum(32 + len(name) + len(value) for name, value in entries)
    assert calls == []


def test_decoded_fields_keep_the_order_and_repeats_of_the_block() -> None:
    fields: Sequence[tuple[str, str]] = [("x-a", "1"), ("x-b", "2"), ("x-a", "3"), ("set-cookie", "a"), ("x-a", "")]

    assert ours(HpackDecoder(), hpack.Encoder().encode(fields)) == fields
