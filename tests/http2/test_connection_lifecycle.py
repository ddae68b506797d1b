"""Connections come and go: GOAWAY, abrupt loss, refused streams, stream-id exhaustion, close."""

import asyncio
from collections import Counter

import pytest

from push_core.http2 import ConnectError, ConnectionLost, Http2Client, StreamReset
from push_core.http2.frames import NO_ERROR, REFUSED_STREAM
from tests.http2.certificates import LoopbackPki
from tests.http2.h2_server import H2TestServer, ServerRequest, echo_handler
from tests.http2.polling import eventually


async def test_goaway_mid_flight_retries_the_unprocessed_streams_exactly_once(pki: LoopbackPki) -> None:
    processed: Counter[str] = Counter()
    held: list[ServerRequest] = []

    def goaway_after_twenty(request: ServerRequest) -> None:
        if request.connection is not request.connection.server.connections[0]:
            processed[request.headers["x-id"]] += 1
            request.respond(200)
            return
        held.append(request)
        if len(held) == 20:
            last = sorted(r.stream_id for r in held)[9]
            request.connection.goaway(last)  # the ten above `last` were never processed
            for waiting in held:
                if waiting.stream_id <= last:
                    processed[waiting.headers["x-id"]] += 1
                    waiting.respond(200)

    async with H2TestServer(pki.server_context(), goaway_after_twenty) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")

        responses = await asyncio.gather(*(client.send(get, "/", [("x-id", str(i))]) for i in range(20)))

        assert [response.status for response in responses] == [200] * 20
        assert processed == Counter({str(i): 1 for i in range(20)})
        assert len(server.connections) == 2
        # The drained connection is closed by the client with a GOAWAY of its own.
        await eventually(lambda: server.stats.goaways == [NO_ERROR])
        await client.close()


async def test_abrupt_close_fails_in_flight_requests_with_connection_lost(pki: LoopbackPki) -> None:
    arrived: list[ServerRequest] = []

    def drop_after_ten(request: ServerRequest) -> None:
        arrived.append(request)
        if request.path == "/later":
            request.respond(200)
        elif len(arrived) == 10:
            request.connection.abort()

    async with H2TestServer(pki.server_context(), drop_after_ten) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")

        outcomes = await asyncio.gather(*(client.send(get, "/") for _ in range(10)), return_exceptions=True)
        after = await client.send(get, "/later")

        assert all(isinstance(outcome, ConnectionLost) for outcome in outcomes)
        assert after.status == 200  # a new connection, opened for the next request
        assert len(server.connections) == 2
        await client.close()


async def test_requests_not_yet_written_when_the_connection_drops_are_sent_again(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context()) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")
        await client.send(get, "/first")
        connection = client._conn
        assert connection is not None
        assert connection._transport is not None

        # The stream is opened and its frames wait for the end of this loop turn; the transport
        # is gone before then, so nothing was sent and the request may safely go again.
        pending = asyncio.ensure_future(client.send(get, "/second"))
        await asyncio.sleep(0)
        assert len(connection.streams) == 1
        connection._transport.abort()
        response = await pending

        assert response.status == 200
        assert [request.path for request in server.stats.requests] == ["/first", "/second"]
        assert len(server.connections) == 2
        await client.close()


async def test_refused_streams_are_sent_again_transparently(pki: LoopbackPki) -> None:
    attempts: Counter[str] = Counter()

    def refuse_first_attempt(request: ServerRequest) -> None:
        attempts[request.path] += 1
        if attempts[request.path] == 1:
            request.connection.reset(request.stream_id, REFUSED_STREAM)
        else:
            request.respond(200)

    async with H2TestServer(pki.server_context(), refuse_first_attempt) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")

        responses = await asyncio.gather(*(client.send(get, f"/{i}") for i in range(10)))

        assert [response.status for response in responses] == [200] * 10
        assert attempts == Counter({f"/{i}": 2 for i in range(10)})
        assert len(server.connections) == 1
        await client.close()


async def test_a_request_refused_every_time_gives_up_with_refused_stream(pki: LoopbackPki) -> None:
    def always_refuse(request: ServerRequest) -> None:
        request.connection.reset(request.stream_id, REFUSED_STREAM)

    async with H2TestServer(pki.server_context(), always_refuse) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        with pytest.raises(StreamReset) as reset:
            await client.send(client.template("GET"), "/")

        assert reset.value.error_code == REFUSED_STREAM
        assert 1 < len(server.stats.requests) <= 5
        await client.close()


async def test_stream_id_exhaustion_moves_requests_to_a_new_connection(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context()) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context(), max_stream_id=7)
        get = client.template("GET")

        responses = await asyncio.gather(*(client.send(get, f"/{i}") for i in range(20)))

        assert [response.status for response in responses] == [200] * 20
        assert sorted(request.path for request in server.stats.requests) == sorted(f"/{i}" for i in range(20))
        assert max(request.stream_id for request in server.stats.requests) == 7
        assert len(server.connections) == 5  # stream ids 1, 3, 5, 7 on each
        await client.close()
        await eventually(lambda: server.stats.goaways == [NO_ERROR] * 5)


async def test_close_sends_goaway_and_lets_in_flight_requests_finish(pki: LoopbackPki) -> None:
    async def slow(request: ServerRequest) -> None:
        await asyncio.sleep(0.2)
        request.respond(200)

    async with H2TestServer(pki.server_context(), slow) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")
        sends = asyncio.gather(*(client.send(get, "/") for _ in range(5)))
        await eventually(lambda: len(server.stats.requests) == 5)

        await client.close()
        responses = await sends

        assert [response.status for response in responses] == [200] * 5
        assert server.stats.goaways == [NO_ERROR]
        with pytest.raises(ConnectError):
            await client.send(get, "/")


async def test_close_fails_requests_still_queued_as_not_sent(pki: LoopbackPki) -> None:
    async def never(request: ServerRequest) -> None:
        await asyncio.sleep(60)

    async with H2TestServer(pki.server_context(), never) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context(), max_in_flight=1, request_timeout=5)
        get = client.template("GET")
        sends = asyncio.gather(*(client.send(get, "/") for _ in range(3)), return_exceptions=True)
        await eventually(lambda: len(server.stats.requests) == 1)

        await client.close()
        outcomes = await sends

        # In flight past the grace period: may have been processed. Queued: never sent.
        assert [type(outcome) for outcome in outcomes] == [ConnectionLost, ConnectError, ConnectError]


async def test_a_server_that_sends_goaway_as_it_opens_is_a_connect_error(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context(), on_connection_made=lambda conn: conn.goaway(0)) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        with pytest.raises(ConnectError, match="GOAWAY"):
            await client.send(client.template("GET"), "/")

        assert server.stats.requests == []


async def test_server_ping_is_acknowledged(pki: LoopbackPki) -> None:
    def ping_then_answer(request: ServerRequest) -> None:
        request.connection.ping(b"12345678")
        request.respond(200)

    async with H2TestServer(pki.server_context(), ping_then_answer) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        await client.send(client.template("GET"), "/")

        await eventually(lambda: server.stats.ping_acks == 1)
        await client.close()


async def test_idle_connection_closed_by_the_server_is_replaced_on_next_send(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context(), echo_handler) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")
        await client.send(get, "/one")
        server.connections[0].close()
        await eventually(lambda: client._conn is None)  # the client has read the GOAWAY

        response = await client.send(get, "/two")

        assert response.status == 200
        assert len(server.connections) == 2
        await client.close()
