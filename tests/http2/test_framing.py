"""Frames and header blocks the server may legally (or illegally) send, read correctly."""

import asyncio
import random
import string

import pytest
from hyperframe.frame import DataFrame, PushPromiseFrame

from push_core.http2 import ConnectionLost, Http2Client, Response
from push_core.http2.errors import ProtocolViolation
from push_core.http2.frames import FRAME_SIZE_ERROR, PROTOCOL_ERROR, frame_header
from tests.http2.certificates import LoopbackPki
from tests.http2.h2_server import H2TestServer, ServerRequest
from tests.http2.polling import eventually

HEADER_TABLE_SIZE = 0x1


def noise(length: int, seed: int) -> str:
    # Random letters and digits: Huffman coding shrinks them by only a quarter.
    rng = random.Random(seed)
    return "".join(rng.choices(string.ascii_letters + string.digits, k=length))


async def test_response_headers_split_over_continuation_frames_are_joined(pki: LoopbackPki) -> None:
    big = [(f"x-big-{i}", noise(10_000, i)) for i in range(3)]  # ~22 KB encoded, over 16 KiB

    def large_head(request: ServerRequest) -> None:
        request.respond(200, big, b"after the headers")

    async with H2TestServer(pki.server_context(), large_head) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        responses = [await client.send(client.template("GET"), "/") for _ in range(2)]

        assert responses == [Response(200, dict(big), b"after the headers")] * 2
        await client.close()


async def test_padded_data_and_padded_headers_with_priority_are_read(pki: LoopbackPki) -> None:
    def padded(request: ServerRequest) -> None:
        if request.path == "/h2-padded-data":
            request.respond(200, [("x-kind", "data")], b"padded body", pad_length=40)
            return
        connection = request.connection
        headers = connection.raw_headers_frame(
            request.stream_id,
            [(":status", "202"), ("x-kind", "headers")],
            ["END_HEADERS", "PADDED", "PRIORITY"],
            pad_length=13,
            depends_on=0,
            stream_weight=200,
        )
        body = DataFrame(request.stream_id, data=b"raw", flags={"END_STREAM", "PADDED"}, pad_length=255)
        connection.write_raw(headers, body)

    async with H2TestServer(pki.server_context(), padded) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")

        data_padded = await client.send(get, "/h2-padded-data")
        all_padded = await client.send(get, "/raw-padded-headers")

        assert data_padded == Response(200, {"x-kind": "data"}, b"padded body")
        assert all_padded == Response(202, {"x-kind": "headers"}, b"raw")
        await client.close()


async def test_dynamic_table_references_and_resizes_are_honoured(pki: LoopbackPki) -> None:
    count = 0

    def indexed(request: ServerRequest) -> None:
        # h2 indexes every field: repeats become one-byte references into the dynamic table,
        # and shrinking its table mid-connection evicts entries the client must drop too.
        nonlocal count
        count += 1
        encoder = request.connection.h2.encoder
        if count == 20:
            encoder.header_table_size = 120
        elif count == 40:
            encoder.header_table_size = 4096
        request.respond(200, [("x-tenant", "alpha"), ("x-parity", str(count % 2)), ("x-count", str(count))])

    async with H2TestServer(pki.server_context(), indexed) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")

        responses = [await client.send(get, "/") for _ in range(60)]

        assert [response.headers for response in responses] == [
            {"x-tenant": "alpha", "x-parity": str(n % 2), "x-count": str(n)} for n in range(1, 61)
        ]
        await client.close()


async def test_servers_header_table_size_setting_leaves_our_decoder_alone(pki: LoopbackPki) -> None:
    # The server's HEADER_TABLE_SIZE limits *its* decoder. Its encoder still fills the 4 KiB
    # table our settings allow; a client that shrank its own decoder to 64 would fail here.
    def many_fields(request: ServerRequest) -> None:
        request.respond(200, [(f"x-field-{i}", noise(40, i)) for i in range(30)])

    async with H2TestServer(pki.server_context(), many_fields, settings={HEADER_TABLE_SIZE: 64}) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        responses = [await client.send(client.template("GET"), "/") for _ in range(3)]

        assert all(response.headers == {f"x-field-{i}": noise(40, i) for i in range(30)} for response in responses)
        assert server.stats.errors == []
        await client.close()


async def test_unknown_frame_types_are_ignored(pki: LoopbackPki) -> None:
    def with_unknown_frames(request: ServerRequest) -> None:
        request.connection.write_raw(frame_header(5, 0xFA, 0xFF, 0) + b"hello", frame_header(0, 0xFB, 0, 1))
        request.respond(200, body=b"ok")

    async with H2TestServer(pki.server_context(), with_unknown_frames) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        assert (await client.send(client.template("GET"), "/")).body == b"ok"
        await client.close()


async def test_response_trickling_in_byte_by_byte_is_reassembled(pki: LoopbackPki) -> None:
    async def trickle(request: ServerRequest) -> None:
        connection = request.connection
        head = connection.raw_headers_frame(request.stream_id, [(":status", "200"), ("x-a", "b")], ["END_HEADERS"])
        body = DataFrame(request.stream_id, data=b"0123456789", flags={"END_STREAM"})
        raw = head.serialize() + body.serialize()
        for i in range(len(raw)):
            connection.write_raw(raw[i : i + 1])  # one TLS record per byte
            await asyncio.sleep(0.002)

    async with H2TestServer(pki.server_context(), trickle) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        response = await client.send(client.template("GET"), "/")

        assert response == Response(200, {"x-a": "b"}, b"0123456789")
        await client.close()


async def test_push_promise_is_a_protocol_error_because_push_is_disabled(pki: LoopbackPki) -> None:
    def push(request: ServerRequest) -> None:
        block = request.connection.header_block([(":method", "GET"), (":path", "/pushed")])
        request.connection.write_raw(
            PushPromiseFrame(request.stream_id, promised_stream_id=2, data=block, flags={"END_HEADERS"})
        )

    async with H2TestServer(pki.server_context(), push) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        with pytest.raises(ConnectionLost) as lost:
            await client.send(client.template("GET"), "/")

        assert isinstance(lost.value.__cause__, ProtocolViolation)
        assert lost.value.__cause__.error_code == PROTOCOL_ERROR
        await eventually(lambda: server.stats.goaways == [PROTOCOL_ERROR])
        await client.close()


async def test_frame_larger_than_our_max_frame_size_is_a_frame_size_error(pki: LoopbackPki) -> None:
    def oversized(request: ServerRequest) -> None:
        request.connection.h2.send_headers(request.stream_id, [(":status", "200")])
        request.connection.write_raw(frame_header(20_000, 0x0, 0x1, request.stream_id) + b"x" * 20_000)

    async with H2TestServer(pki.server_context(), oversized) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        with pytest.raises(ConnectionLost) as lost:
            await client.send(client.template("GET"), "/")

        assert isinstance(lost.value.__cause__, ProtocolViolation)
        assert lost.value.__cause__.error_code == FRAME_SIZE_ERROR
        await client.close()
