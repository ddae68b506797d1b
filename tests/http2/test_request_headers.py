"""The stateless request encoder, checked by decoding its blocks with hpack (an independent decoder)."""

import hpack
import pytest

from push_core.http2.request_headers import RequestTemplate, encode_integer


def decode(block: bytes) -> list[tuple[str, str]]:
    return [(str(name), str(value)) for name, value in hpack.Decoder().decode(block)]


def test_a_request_block_decodes_to_pseudo_headers_first_then_fields_in_order() -> None:
    template = RequestTemplate("POST", "api.push.apple.com", [("apns-topic", "com.example"), ("x-static", "1")])

    fields = decode(template.header_block("/3/device/ab", [("apns-id", "42"), ("x-dynamic", "2")], 99))

    assert fields == [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "api.push.apple.com"),
        (":path", "/3/device/ab"),
        ("apns-topic", "com.example"),
        ("x-static", "1"),
        ("apns-id", "42"),
        ("x-dynamic", "2"),
        ("content-length", "99"),
    ]


def test_blocks_leave_the_servers_dynamic_table_empty() -> None:
    template = RequestTemplate("GET", "example.com:8443", [("accept", "application/json")])
    decoder = hpack.Decoder()

    for i in range(3):
        decoder.decode(template.header_block(f"/{i}", [("x-n", str(i))]))

    assert len(decoder.header_table.dynamic_entries) == 0


def test_long_paths_and_values_use_multi_byte_lengths() -> None:
    path = "/" + "p" * 5_000
    value = "v" * 20_000
    template = RequestTemplate("GET", "example.com")

    fields = decode(template.header_block(path, [("x-long", value)]))

    assert fields[3] == (":path", path)
    assert fields[4] == ("x-long", value)


def test_credentials_are_sent_never_indexed() -> None:
    template = RequestTemplate("POST", "example.com")
    decoder = hpack.Decoder()

    fields = list(decoder.decode(template.header_block("/", [("authorization", "bearer t"), ("x-other", "o")])))

    assert [type(field) for field in fields[4:]] == [hpack.NeverIndexedHeaderTuple, hpack.HeaderTuple]


def test_get_and_post_use_the_static_table_entries() -> None:
    # :method GET/POST and :scheme https are single bytes (static indexes 2, 3 and 7).
    assert RequestTemplate("GET", "h").header_block("/").startswith(b"\x82\x87")
    assert RequestTemplate("POST", "h").header_block("/").startswith(b"\x83\x87")


@pytest.mark.parametrize(
    ("value", "prefix_bits", "encoded"),
    [(10, 5, b"\x0a"), (1337, 5, b"\x1f\x9a\x0a"), (42, 8, b"\x2a"), (31, 5, b"\x1f\x00"), (127, 7, b"\x7f\x00")],
)
def test_integers_encode_as_rfc_7541_appendix_c1(value: int, prefix_bits: int, encoded: bytes) -> None:
    assert encode_integer(value, prefix_bits, 0) == encoded


@pytest.mark.parametrize("method", ["", "GET POST", "G\r\nET"])
def test_methods_must_be_http_tokens(method: str) -> None:
    with pytest.raises(ValueError, match="method"):
        RequestTemplate(method, "example.com")


@pytest.mark.parametrize(
    "field",
    [("Content-Type", "x"), ("x y", "1"), ("transfer-encoding", "chunked"), ("host", "h"), ("x", "a\x00b")],
)
def test_template_fields_http2_forbids_are_refused(field: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="header"):
        RequestTemplate("GET", "example.com", [field])
