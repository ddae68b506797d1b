"""Response heads: our HPACK decoder behind a memo that must never outlive the dynamic table's state,
and headers whose Huffman-coded values decode when read, whichever way they are read."""

import asyncio
import copy
import json
import pickle
import uuid
from collections.abc import Callable, Iterator

import hpack
import pytest
from hyperframe.frame import HeadersFrame

from push_core.http2 import ConnectionLost, Http2Client, hpack_decoder, response
from push_core.http2.errors import ProtocolViolation
from push_core.http2.frames import COMPRESSION_ERROR
from push_core.http2.hpack_decoder import HpackDecodingError, HuffmanValue
from push_core.http2.response import HeaderBlockDecoder, MalformedHeaders, ResponseHeaders
from tests.http2.certificates import LoopbackPki
from tests.http2.h2_server import H2TestServer, ServerRequest
from tests.http2.polling import eventually


def test_identical_blocks_decode_differently_once_the_dynamic_table_changes() -> None:
    encoder = hpack.Encoder()
    decoder = HeaderBlockDecoder()
    blocks = [
        encoder.encode([(":status", "200"), ("x-a", "1")]),  # inserts x-a: 1 at index 62
        encoder.encode([(":status", "200"), ("x-a", "1")]),  # b"\x88\xbe"
        encoder.encode([(":status", "200"), ("x-b", "2")]),  # inserts x-b: 2 at index 62
        encoder.encode([(":status", "200"), ("x-b", "2")]),  # b"\x88\xbe" again, now meaning x-b
        encoder.encode([(":status", "200"), ("x-b", "2")]),
    ]
    assert blocks[1] == blocks[3] == blocks[4] == b"\x88\xbe"

    decoded = [decoder.decode(block) for block in blocks]

    assert decoded == [(200, {"x-a": "1"})] * 2 + [(200, {"x-b": "2"})] * 3


def test_a_decoded_block_can_be_changed_by_the_caller_without_touching_later_ones() -> None:
    decoder = HeaderBlockDecoder()
    _, first = decoder.decode(b"\x88")
    first["x-mutated"] = "yes"

    assert decoder.decode(b"\x88") == (200, {})


def test_a_table_size_update_that_evicts_entries_invalidates_repeats() -> None:
    encoder = hpack.Encoder()
    decoder = HeaderBlockDecoder()
    decoder.decode(encoder.encode([(":status", "200"), ("x-a", "1")]))
    repeat = encoder.encode([(":status", "200"), ("x-a", "1")])
    assert decoder.decode(repeat) == (200, {"x-a": "1"})
    encoder.header_table_size = 0
    decoder.decode(encoder.encode([(":status", "204")]))  # carries the size update that empties the table

    with pytest.raises(hpack.HPACKError):
        decoder.decode(repeat)  # index 62 no longer exists


@pytest.mark.parametrize(
    "fields",
    [
        [("x-a", "1"), (":status", "200")],
        [(":status", "200"), (":status", "200")],
        [(":status", "20")],
        [(":status", "abc")],
        [(":path", "/")],
    ],
)
def test_invalid_response_heads_are_malformed(fields: list[tuple[str, str]]) -> None:
    with pytest.raises(MalformedHeaders):
        HeaderBlockDecoder().decode(hpack.Encoder().encode(fields))


def test_a_table_size_update_above_our_setting_is_a_decoding_error() -> None:
    encoder = hpack.Encoder()
    encoder.header_table_size = 8192  # more than the 4,096 we advertise

    with pytest.raises(hpack.HPACKError):
        HeaderBlockDecoder().decode(encoder.encode([(":status", "200")]))


# --- Huffman-coded values, decoded when read ---------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_field_read_yet() -> Iterator[None]:
    """Each test starts with no names learnt from reads, so values arrive coded."""
    response.forget_read_names()
    yield
    response.forget_read_names()


_APNS_ID = "5c1a9a1e-5c6f-4e1a-9c4b-8f5f6a1e2d3c"


def coded_headers() -> dict[str, str]:
    """Headers whose apns-id and x-note values are still Huffman-coded, as a provider receives them."""
    block = hpack.Encoder().encode(
        [(":status", "200"), ("apns-id", _APNS_ID), hpack.NeverIndexedHeaderTuple("x-note", "never indexed")]
    )
    status, headers = HeaderBlockDecoder().decode(block)
    assert status == 200
    assert isinstance(headers, ResponseHeaders)
    assert all(isinstance(value, HuffmanValue) for value in dict.values(headers))
    return headers


_EXPECTED = {"apns-id": _APNS_ID, "x-note": "never indexed"}


_ITEMS = sorted(_EXPECTED.items())


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        pytest.param(
            lambda h: [h.get("apns-id"), h.get("x-note"), h.get("absent"), h.get("absent", "d")],
            [_APNS_ID, "never indexed", None, "d"],
            id="get",
        ),
        pytest.param(lambda h: [h["apns-id"], h["x-note"]], [_APNS_ID, "never indexed"], id="getitem"),
        pytest.param(lambda h: sorted(h.values()), sorted(_EXPECTED.values()), id="values"),
        pytest.param(lambda h: sorted(h.items()), _ITEMS, id="items"),
        pytest.param(lambda h: sorted(dict(h).items()), _ITEMS, id="dict"),
        pytest.param(lambda h: sorted({**h}.items()), _ITEMS, id="unpacking"),
        pytest.param(lambda h: sorted(h.copy().items()), _ITEMS, id="copy"),
        pytest.param(lambda h: sorted(copy.copy(h).items()), _ITEMS, id="copy.copy"),
        pytest.param(lambda h: sorted(copy.deepcopy(h).items()), _ITEMS, id="copy.deepcopy"),
        pytest.param(lambda h: sorted(pickle.loads(pickle.dumps(h)).items()), _ITEMS, id="pickle"),  # noqa: S301
        pytest.param(lambda h: sorted((h | {}).items()), _ITEMS, id="or"),
        pytest.param(lambda h: sorted(({} | h).items()), _ITEMS, id="ror"),
        pytest.param(lambda h: json.loads(json.dumps(h)), _EXPECTED, id="json"),
        pytest.param(lambda h: repr(h), repr(_EXPECTED), id="repr"),
        pytest.param(
            lambda h: [h.pop("apns-id"), h.pop("absent", None), h.popitem()],
            [_APNS_ID, None, ("x-note", "never indexed")],
            id="pop",
        ),
        pytest.param(
            lambda h: [h.setdefault("apns-id", "other"), h.setdefault("new", "v"), h["new"]],
            [_APNS_ID, "v", "v"],
            id="setdefault",
        ),
        pytest.param(
            # The plain dict on the left too: Python asks the subclass first.
            lambda h: [h == _EXPECTED, _EXPECTED == h, h != _EXPECTED, _EXPECTED != h, [h] == [_EXPECTED]],  # noqa: SIM300
            [True, True, False, False, True],
            id="equality",
        ),
    ],
)
def test_coded_values_read_through_any_dict_method_come_out_as_text(
    read: Callable[[dict[str, str]], object], expected: object
) -> None:
    assert read(coded_headers()) == expected


def test_coded_headers_behave_as_the_plain_dict_of_their_text() -> None:
    headers = coded_headers()

    assert "apns-id" in headers
    assert "absent" not in headers
    assert list(headers) == ["apns-id", "x-note"]
    assert len(headers) == 2
    assert headers == _EXPECTED
    other = {"x-other": "1"}
    other.update(headers)
    assert other == {"x-other": "1", **_EXPECTED}


def test_repeated_coded_fields_join_with_a_comma() -> None:
    block = hpack.Encoder().encode([(":status", "200"), ("vary", "accept"), ("vary", "origin"), ("vary", "x")])

    assert HeaderBlockDecoder().decode(block) == (200, {"vary": "accept, origin, x"})


def test_a_coded_status_is_read_to_check_it() -> None:
    # 0x48 is :status as a literal name index; 0x82 a 2-octet Huffman string: "200" is 3 x 5 bits.
    coded = hpack.Encoder().encode([(":status", "299")], huffman=True)

    assert HeaderBlockDecoder().decode(coded) == (299, {})


def test_repeats_of_a_block_with_coded_values_decode_each_value_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_huffman_decodes(monkeypatch)
    # Never-indexed fields leave the table alone, so the block repeats byte for byte and is memoised.
    encoder = hpack.Encoder()
    fields: list[hpack.HeaderTuple | tuple[str, str]] = [
        (":status", "200"),
        hpack.NeverIndexedHeaderTuple("x-note", "never indexed"),
    ]
    blocks = [encoder.encode(fields) for _ in range(5)]
    assert len(set(blocks)) == 1
    decoder = HeaderBlockDecoder()

    responses = [decoder.decode(block) for block in blocks]
    assert calls == []
    responses[0][1]["x-mutated"] = "yes"

    assert [headers.get("x-note") for _, headers in responses] == ["never indexed"] * 5
    assert len(calls) == 1
    assert [headers for _, headers in responses[1:]] == [{"x-note": "never indexed"}] * 4


def test_headers_without_coded_values_are_a_plain_dict() -> None:
    _, headers = HeaderBlockDecoder().decode(hpack.Encoder().encode([(":status", "200"), ("x-a", "1")], huffman=False))

    assert type(headers) is dict


async def test_an_undecodable_header_block_ends_the_connection_with_compression_error(pki: LoopbackPki) -> None:
    def index_zero(request: ServerRequest) -> None:
        request.connection.write_raw(HeadersFrame(request.stream_id, data=b"\x88\x80", flags={"END_HEADERS"}))

    async with H2TestServer(pki.server_context(), index_zero) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        with pytest.raises(ConnectionLost) as lost:
            await client.send(client.template("GET"), "/")

        assert isinstance(lost.value.__cause__, ProtocolViolation)
        assert lost.value.__cause__.error_code == COMPRESSION_ERROR
        assert isinstance(lost.value.__cause__.__cause__, HpackDecodingError)
        await eventually(lambda: server.stats.goaways == [COMPRESSION_ERROR])
        await client.close()


async def test_apns_ids_read_by_the_caller_match_what_the_server_sent(pki: LoopbackPki) -> None:
    def apns(request: ServerRequest) -> None:
        request.respond(200, [("apns-id", request.path.removeprefix("/"))])

    async with H2TestServer(pki.server_context(), apns) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        post = client.template("POST")
        ids = [str(uuid.UUID(int=n * 7919)) for n in range(1, 200)]

        responses = await asyncio.gather(*(client.send(post, f"/{apns_id}") for apns_id in ids))

        assert [response.headers.get("apns-id") for response in responses] == ids
        await client.close()


def stored_type(headers: dict[str, str], name: str) -> type:
    """The type of a value as the dict holds it, read without decoding it."""
    stored: object = dict.__getitem__(headers, name)
    return type(stored)


def count_huffman_decodes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record the codes that values decoded when read go through."""
    calls: list[bytes] = []
    real = hpack_decoder.huffman_decode

    def counting(code: bytes) -> str:
        calls.append(code)
        return real(code)

    monkeypatch.setattr(hpack_decoder, "huffman_decode", counting)
    return calls


def test_values_of_a_field_callers_read_are_decoded_as_they_arrive_from_then_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Counting a coded value's octets and decoding it later costs more than decoding it at once.
    calls = count_huffman_decodes(monkeypatch)
    encoder = hpack.Encoder()
    decoder = HeaderBlockDecoder()
    ids = [str(uuid.UUID(int=n * 104_729)) for n in range(1, 6)]
    _, first = decoder.decode(encoder.encode([(":status", "200"), ("apns-id", ids[0]), ("x-other", "unread")]))

    assert first.get("apns-id") == ids[0]
    later = [decoder.decode(encoder.encode([(":status", "200"), ("apns-id", i), ("x-other", "x")])) for i in ids[1:]]

    # As stored, before any read: decoded on arrival, and still coded.
    assert [stored_type(headers, "apns-id") for _, headers in later] == [str] * 4
    assert [stored_type(headers, "x-other") for _, headers in later] == [HuffmanValue] * 4
    assert [headers.get("apns-id") for _, headers in later] == ids[1:]
    assert len(calls) == 1  # only the first apns-id was decoded when read
