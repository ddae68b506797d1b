"""Send and receive flow control: tiny windows, a closed-fisted server, settings that change mid-flight."""

import asyncio
import hashlib
import json

import pytest
from hyperframe.frame import WindowUpdateFrame

from push_core.http2 import ConnectionLost, Http2Client, StreamReset
from push_core.http2.errors import ProtocolViolation
from push_core.http2.frames import FLOW_CONTROL_ERROR
from tests.http2.certificates import LoopbackPki
from tests.http2.h2_server import H2TestServer, ServerConnection, ServerRequest
from tests.http2.polling import eventually
from tests.http2.test_requests import digest_handler

INITIAL_WINDOW_SIZE = 0x4
MAX_CONCURRENT_STREAMS = 0x3
MAX_FRAME_SIZE = 0x5
HEADER_TABLE_SIZE = 0x1


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def test_bodies_flow_through_a_16_byte_stream_window(pki: LoopbackPki) -> None:
    bodies = [bytes([i]) * (200 + i * 37) for i in range(20)]
    async with H2TestServer(pki.server_context(), digest_handler, settings={INITIAL_WINDOW_SIZE: 16}) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        post = client.template("POST")

        responses = await asyncio.gather(*(client.send(post, "/", body=body) for body in bodies))

        assert [json.loads(r.body)["sha256"] for r in responses] == [sha(body) for body in bodies]
        assert server.stats.errors == []  # h2 would have flagged any DATA beyond a window
        await client.close()


async def test_bodies_wait_for_the_servers_connection_window(pki: LoopbackPki) -> None:
    # 60 x 20 KB is 18x the 65,535-byte connection window the server never enlarges.
    bodies = [bytes([i]) * 20_000 for i in range(60)]
    async with H2TestServer(pki.server_context(), digest_handler) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        post = client.template("POST")

        responses = await asyncio.gather(*(client.send(post, "/", body=body) for body in bodies))

        assert [json.loads(r.body)["sha256"] for r in responses] == [sha(body) for body in bodies]
        assert server.stats.errors == []
        await client.close()


async def test_a_stalled_stream_does_not_hold_back_others(pki: LoopbackPki) -> None:
    # The server stops granting credit for a while: bodies queue, then all flow once it resumes.
    async with H2TestServer(pki.server_context(), digest_handler, acknowledge_data=False) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        post = client.template("POST")
        bodies = [bytes([i]) * 30_000 for i in range(6)]  # 180 KB against a 64 KiB connection window

        sends = asyncio.gather(*(client.send(post, "/", body=body) for body in bodies))
        await eventually(lambda: len(server.stats.requests) == 2)
        await asyncio.sleep(0.05)
        assert len(server.stats.requests) == 2  # the client waits instead of overrunning the window
        server.acknowledge_data = True
        connection = server.connections[0]
        connection.h2.increment_flow_control_window(1 << 20)
        for stream_id in connection.h2.streams:
            if not connection.h2.streams[stream_id].closed:
                connection.h2.increment_flow_control_window(1 << 20, stream_id=stream_id)
        connection.flush()
        responses = await sends

        assert [json.loads(r.body)["sha256"] for r in responses] == [sha(body) for body in bodies]
        await client.close()


async def test_settings_changed_mid_connection_are_applied(pki: LoopbackPki) -> None:
    seen = 0

    def changing(request: ServerRequest) -> None:
        nonlocal seen
        seen += 1
        if seen == 5:
            # Shrink every stream window below zero for streams mid-upload, cap concurrency, allow
            # bigger frames, and stop the client's encoder from assuming any table at all.
            request.connection.update_settings(
                {INITIAL_WINDOW_SIZE: 10, MAX_CONCURRENT_STREAMS: 3, MAX_FRAME_SIZE: 40_000, HEADER_TABLE_SIZE: 0}
            )
        elif seen == 30:
            request.connection.update_settings({INITIAL_WINDOW_SIZE: 1 << 20, MAX_CONCURRENT_STREAMS: 50})
        digest_handler(request)

    bodies = [bytes([i]) * 5_000 for i in range(80)]
    async with H2TestServer(pki.server_context(), changing, settings={INITIAL_WINDOW_SIZE: 4_000}) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        post = client.template("POST", [("x-static", "s")])

        responses = await asyncio.gather(
            *(client.send(post, "/", [("x-index", str(i))], body=body) for i, body in enumerate(bodies))
        )

        assert [json.loads(r.body)["sha256"] for r in responses] == [sha(body) for body in bodies]
        # h2 raises on a stream beyond MAX_CONCURRENT_STREAMS, DATA beyond a window, or a header
        # block that ignores HEADER_TABLE_SIZE 0.
        assert server.stats.errors == []
        assert server.stats.settings_acks == 3  # the initial SETTINGS and both changes
        assert sorted(int(request.headers["x-index"]) for request in server.stats.requests) == list(range(80))
        await client.close()


async def test_a_stream_window_pushed_past_2_31_minus_1_resets_only_that_stream(pki: LoopbackPki) -> None:
    def overflow_the_upload(connection: ServerConnection, stream_id: int) -> None:
        if stream_id == 1:
            # h2 opens the window to the legal maximum (the body flows up to the connection
            # window); a raw update then takes it beyond 2^31-1.
            connection.h2.increment_flow_control_window(2**31 - 1 - 16, stream_id=stream_id)
            connection.write_raw(WindowUpdateFrame(stream_id, window_increment=2**31 - 1))

    async with H2TestServer(
        pki.server_context(),
        digest_handler,
        settings={INITIAL_WINDOW_SIZE: 16},
        on_request_headers=overflow_the_upload,
    ) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        post = client.template("POST")

        with pytest.raises(StreamReset) as reset:
            await client.send(post, "/", body=b"x" * 100_000)
        after = await client.send(post, "/", body=b"y" * 100)

        assert reset.value.error_code == FLOW_CONTROL_ERROR
        assert json.loads(after.body)["sha256"] == sha(b"y" * 100)
        await eventually(lambda: (1, FLOW_CONTROL_ERROR) in server.stats.resets)
        await client.close()


async def test_a_window_pushed_past_2_31_minus_1_ends_the_connection(pki: LoopbackPki) -> None:
    async def overflow(request: ServerRequest) -> None:
        request.connection.write_raw(WindowUpdateFrame(0, window_increment=2**31 - 1))

    async with H2TestServer(pki.server_context(), overflow) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        with pytest.raises(ConnectionLost) as lost:
            await client.send(client.template("GET"), "/")

        assert isinstance(lost.value.__cause__, ProtocolViolation)
        assert lost.value.__cause__.error_code == FLOW_CONTROL_ERROR
        await eventually(lambda: server.stats.goaways == [FLOW_CONTROL_ERROR])
        await client.close()
