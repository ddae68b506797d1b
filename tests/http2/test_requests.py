"""Requests and responses through push_core.http2 against an h2 server: the everyday paths."""

import asyncio
import gc
import hashlib
import json
import warnings

import pytest

from push_core.http2 import Http2Client, Response
from tests.http2.certificates import LoopbackPki
from tests.http2.h2_server import H2TestServer, ServerRequest
from tests.http2.polling import eventually


def digest_handler(request: ServerRequest) -> None:
    """Answer with what arrived, so the client can check the body byte for byte."""
    body = json.dumps({"length": len(request.body), "sha256": hashlib.sha256(request.body).hexdigest()}).encode()
    request.respond(200, [("content-type", "application/json")], body)


async def test_get_and_post_return_status_headers_and_body(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context(), digest_handler) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")
        post = client.template("POST", [("content-type", "application/json")])

        fetched = await client.send(get, "/status")
        posted = await client.send(post, "/3/device/abc", body=b'{"aps":{}}')

        assert fetched == Response(200, {"content-type": "application/json"}, fetched.body)
        assert json.loads(fetched.body) == {"length": 0, "sha256": hashlib.sha256(b"").hexdigest()}
        assert json.loads(posted.body)["sha256"] == hashlib.sha256(b'{"aps":{}}').hexdigest()
        await client.close()


async def test_request_fields_reach_the_server_as_sent(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context()) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        post = client.template("POST", [("apns-topic", "com.example.app"), ("accept-encoding", "gzip, deflate")])

        await client.send(
            post,
            "/3/device/0123?x=1",
            [("apns-id", "2b7c3e1a-6f0e-4a9e-9d1b-000000000001"), ("authorization", "bearer " + "t" * 300)],
            body=b"payload",
        )

        (request,) = server.stats.requests
        assert request.headers == {
            ":method": "POST",
            ":scheme": "https",
            ":authority": f"127.0.0.1:{server.port}",
            ":path": "/3/device/0123?x=1",
            "apns-topic": "com.example.app",
            "accept-encoding": "gzip, deflate",
            "apns-id": "2b7c3e1a-6f0e-4a9e-9d1b-000000000001",
            "authorization": "bearer " + "t" * 300,
            "content-length": "7",
        }
        assert request.body == b"payload"
        await client.close()


async def test_concurrent_sends_stay_within_the_servers_max_concurrent_streams(pki: LoopbackPki) -> None:
    async def slow(request: ServerRequest) -> None:
        await asyncio.sleep(0.001)
        request.respond(200, body=request.path.encode())

    async with H2TestServer(pki.server_context(), slow, settings={3: 5}) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context(), max_in_flight=1000)
        get = client.template("GET")

        responses = await asyncio.gather(*(client.send(get, f"/n/{i}") for i in range(300)))

        assert [response.body for response in responses] == [f"/n/{i}".encode() for i in range(300)]
        assert server.stats.max_open_streams == 5
        assert server.stats.errors == []
        await client.close()


async def test_max_in_flight_caps_open_streams_below_the_servers_limit(pki: LoopbackPki) -> None:
    async def slow(request: ServerRequest) -> None:
        await asyncio.sleep(0.001)
        request.respond(200)

    async with H2TestServer(pki.server_context(), slow) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context(), max_in_flight=3)
        get = client.template("GET")

        responses = await asyncio.gather(*(client.send(get, "/") for _ in range(60)))

        assert {response.status for response in responses} == {200}
        assert server.stats.max_open_streams == 3
        await client.close()


async def test_queued_requests_are_sent_in_the_order_they_were_made(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context()) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context(), max_in_flight=2)
        get = client.template("GET")

        await asyncio.gather(*(client.send(get, f"/{i}") for i in range(50)))

        assert [request.path for request in server.stats.requests] == [f"/{i}" for i in range(50)]
        await client.close()


async def test_large_request_bodies_arrive_whole(pki: LoopbackPki) -> None:
    bodies = [bytes([i]) * size for i, size in enumerate((16_383, 16_384, 16_385, 100_000, 1_000_000))]
    async with H2TestServer(pki.server_context(), digest_handler) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        post = client.template("POST")

        responses = await asyncio.gather(*(client.send(post, "/upload", body=body) for body in bodies))

        assert [json.loads(r.body)["sha256"] for r in responses] == [hashlib.sha256(b).hexdigest() for b in bodies]
        await client.close()


async def test_large_response_bodies_arrive_whole_beyond_both_receive_windows(pki: LoopbackPki) -> None:
    # 8 x 3 MiB: each body is 3x the client's 1 MiB stream window, the total 1.5x its 16 MiB
    # connection window, so the server stalls unless the client returns credit on both levels.
    bodies = {f"/big/{i}": bytes([65 + i]) * (3 << 20) for i in range(8)}

    def big(request: ServerRequest) -> None:
        request.respond(200, body=bodies[request.path])

    async with H2TestServer(pki.server_context(), big) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        get = client.template("GET")

        responses = await asyncio.gather(*(client.send(get, path) for path in bodies))

        assert [response.body for response in responses] == list(bodies.values())
        await client.close()


async def test_five_thousand_error_responses_with_bodies_all_complete(pki: LoopbackPki) -> None:
    # aioapns 4.0 stalls after ~2,500 of these: it never returns connection credit. 5,000 bodies
    # of 4 KiB are 20 MiB, more than the client's 16 MiB connection window.
    error = json.dumps({"reason": "BadDeviceToken", "padding": "x" * 4_000}).encode()

    def reject(request: ServerRequest) -> None:
        request.respond(400, [("content-type", "application/json")], error)

    async with H2TestServer(pki.server_context(), reject) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        post = client.template("POST")

        responses = await asyncio.gather(*(client.send(post, f"/3/device/{i}", body=b"{}") for i in range(5_000)))

        assert len(responses) == 5_000
        assert all(response.status == 400 and response.body == error for response in responses)
        await client.close()


async def test_trailers_are_merged_into_the_response_headers(pki: LoopbackPki) -> None:
    def with_trailers(request: ServerRequest) -> None:
        request.respond(200, [("x-head", "1")], b"body", trailers=[("x-checksum", "abc"), ("x-head", "2")])

    async with H2TestServer(pki.server_context(), with_trailers) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        response = await client.send(client.template("GET"), "/")

        assert response == Response(200, {"x-head": "1, 2", "x-checksum": "abc"}, b"body")
        await client.close()


async def test_repeated_response_fields_are_combined_with_commas(pki: LoopbackPki) -> None:
    def repeated(request: ServerRequest) -> None:
        request.respond(200, [("vary", "accept"), ("x-other", "1"), ("vary", "origin")])

    async with H2TestServer(pki.server_context(), repeated) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        response = await client.send(client.template("GET"), "/")

        assert response.headers == {"vary": "accept, origin", "x-other": "1"}
        await client.close()


async def test_informational_responses_are_skipped_for_the_final_one(pki: LoopbackPki) -> None:
    def early_hints(request: ServerRequest) -> None:
        request.connection.h2.send_headers(request.stream_id, [(":status", "103"), ("link", "</style.css>")])
        request.respond(201, [("location", "/m/1")])

    async with H2TestServer(pki.server_context(), early_hints) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        response = await client.send(client.template("POST"), "/push", body=b"x")

        assert response == Response(201, {"location": "/m/1"}, b"")
        await client.close()


async def test_ping_reports_the_round_trip_and_connects_if_needed(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context()) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        rtt = await client.ping()

        assert 0 < rtt < 1
        assert len(server.connections) == 1
        await client.close()


async def test_request_headers_larger_than_a_frame_go_out_in_continuation_frames(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context()) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())
        value = "v" * 40_000  # above the server's 16 KiB MAX_FRAME_SIZE

        for body in (b"", b"with a body"):
            response = await client.send(client.template("POST"), "/", [("x-large", value)], body=body)
            assert response.status == 200

        assert [request.headers["x-large"] for request in server.stats.requests] == [value, value]
        assert [request.body for request in server.stats.requests] == [b"", b"with a body"]
        await client.close()


async def _invoke(client: Http2Client, *, last: bool) -> int:
    response = await client.send(client.template("GET"), "/")
    if last:
        await client.close()
    return response.status


def _two_invocations(client: Http2Client) -> list[int]:
    return [asyncio.run(_invoke(client, last=False)), asyncio.run(_invoke(client, last=True))]


async def test_one_client_serves_successive_event_loops_like_lambda_invocations(pki: LoopbackPki) -> None:
    # Each Lambda invocation may run its own asyncio.run; the client built once must follow.
    async with H2TestServer(pki.server_context()) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        first, second = await asyncio.to_thread(_two_invocations, client)

        assert (first, second) == (200, 200)
        assert len(server.connections) == 2
        # The first loop's connection was shut down when the second loop took over.
        await eventually(lambda: server.connections[0].closed)
        # Its socket, left behind by a closed loop, is released by the garbage collector.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("relative", ()),
        ("/with space", ()),
        ("/line\nbreak", ()),
        ("/ünïcode", ()),
        ("/", [("Upper", "x")]),
        ("/", [(":path", "/x")]),
        ("/", [("connection", "close")]),
        ("/", [("content-length", "3")]),
        ("/", [("x-header", "line\r\nbreak")]),
    ],
)
async def test_invalid_paths_and_fields_are_refused_before_anything_is_sent(
    pki: LoopbackPki, path: str, headers: list[tuple[str, str]]
) -> None:
    async with H2TestServer(pki.server_context()) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context())

        with pytest.raises(ValueError, match=r"."):
            await client.send(client.template("GET"), path, headers)

        assert server.connections == []
