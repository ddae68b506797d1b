"""Response header decoding: hpack behind a memo that must never outlive the dynamic table's state."""

import hpack
import pytest

from push_core.http2.response import HeaderBlockDecoder, MalformedHeaders


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
