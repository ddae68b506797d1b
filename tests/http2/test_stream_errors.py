"""Errors that end one stream and leave the connection and the other requests alone."""

import asyncio

import pytest

from push_core.http2 import Http2Client, RequestTimeout, StreamReset
from push_core.http2.frames import CANCEL, INTERNAL_ERROR, PROTOCOL_ERROR
from tests.http2.certificates import LoopbackPki
from tests.http2.h2_server import H2TestServer, ServerRequest
from tests.http2.polling import eventually


def answer_unless_told_otherwise(request: ServerRequest) -> None:
    if request.path == "/reset":
        request.connection.reset(request.stream_id, INTERNAL_ERROR)
    elif request.path == "/no-status":
        # Decodes fine but is no response head: a stream error, not a connection error.
        frame = request.connection.raw_headers_frame(
            request.stream_id, [("x-no-status", "1")], ["END_HEADERS", "END_STREAM"]
        )
        request.connection.write_raw(frame)
    elif request.path != "/hang":
        request.respond(200, body=request.path.encode())


async def test_rst_stream_fails_only_that_request_with_its_error_code(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context(), answer_unless_told_otherwise) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")

        outcomes = await asyncio.gather(
            *(client.send(get, path) for path in ("/a", "/reset", "/b")), return_exceptions=True
        )

        assert isinstance(outcomes[1], StreamReset)
        assert outcomes[1].error_code == INTERNAL_ERROR
        assert [outcome.body for outcome in (outcomes[0], outcomes[2])] == [b"/a", b"/b"]  # type: ignore[union-attr]
        assert len(server.connections) == 1
        await client.close()


async def test_unanswered_request_times_out_and_is_cancelled_while_others_complete(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context(), answer_unless_told_otherwise) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context(), request_timeout=0.3)
        get = client.template("GET")

        hang = asyncio.ensure_future(client.send(get, "/hang"))
        answered = [await client.send(get, f"/{i}") for i in range(5)]
        with pytest.raises(RequestTimeout):
            await hang

        assert [response.status for response in answered] == [200] * 5
        hang_stream = next(r.stream_id for r in server.stats.requests if r.path == "/hang")
        await eventually(lambda: server.stats.resets == [(hang_stream, CANCEL)])
        assert (await client.send(get, "/after")).status == 200  # same connection, still healthy
        assert len(server.connections) == 1
        await client.close()


async def test_requests_queued_behind_a_hung_stream_time_out_too(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context(), answer_unless_told_otherwise) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context(), max_in_flight=1, request_timeout=0.3)
        get = client.template("GET")

        outcomes = await asyncio.gather(client.send(get, "/hang"), client.send(get, "/queued"), return_exceptions=True)

        # The queued request was never sent: the hung one held the only slot until both expired.
        assert [type(outcome) for outcome in outcomes] == [RequestTimeout, RequestTimeout]
        assert [request.path for request in server.stats.requests] == ["/hang"]
        await client.close()


async def test_a_cancelled_caller_resets_its_stream(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context(), answer_unless_told_otherwise) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")
        hang = asyncio.ensure_future(client.send(get, "/hang"))
        await eventually(lambda: len(server.stats.requests) == 1)

        hang.cancel()

        hang_stream = server.stats.requests[0].stream_id
        await eventually(lambda: server.stats.resets == [(hang_stream, CANCEL)])
        assert (await client.send(get, "/next")).body == b"/next"
        await client.close()


async def test_response_without_status_resets_only_its_stream(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context(), answer_unless_told_otherwise) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")

        with pytest.raises(StreamReset) as reset:
            await client.send(get, "/no-status")

        assert reset.value.error_code == PROTOCOL_ERROR
        assert (await client.send(get, "/fine")).body == b"/fine"
        assert len(server.connections) == 1
        await client.close()
