"""The TLS server under every emulator: trust, ALPN, concurrency, flow control, independence of streams, stop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import h2.config
import h2.connection
import h2.events
import pytest
import requests

from dev.emulators import CertificateAuthority, EmulatorRequest, EmulatorResponse, EmulatorServer
from dev.emulators.tls import topic_from_certificate
from tests.emulators.h2_client import H2Client


async def _handle(request: EmulatorRequest) -> EmulatorResponse:
    """A test handler: echo, sized bodies, slow answers, failures, resets, facts about the request."""
    parts = request.path.strip("/").split("/")
    if parts[0] == "echo":
        return EmulatorResponse(200, [("x-protocol", request.protocol)], request.body)
    if parts[0] == "bytes":
        size = int(parts[1])
        return EmulatorResponse(200, [], bytes(i % 251 for i in range(size)))
    if parts[0] == "slow":
        await asyncio.sleep(float(parts[1]))
        return EmulatorResponse(200, [], b"slow")
    if parts[0] == "boom":
        raise RuntimeError("handler bug")
    if parts[0] == "reset":
        return EmulatorResponse.connection_reset()
    topic = topic_from_certificate(request.peer_certificate) if request.peer_certificate else None
    return EmulatorResponse.json(
        200,
        {
            "protocol": request.protocol,
            "client_port": request.client[1] if request.client else None,
            "peer_topic": topic,
            "headers": request.header_list,
            "query": request.query_params(),
        },
    )


@pytest.fixture(scope="module")
def server(authority: CertificateAuthority) -> Iterator[EmulatorServer]:
    running = EmulatorServer(_handle, authority.server_context(), name="test-server")
    running.start()
    yield running
    running.stop()


def _client(server: EmulatorServer, authority: CertificateAuthority, **options: object) -> H2Client:
    return H2Client("127.0.0.1", server.port, authority.client_context(("h2",)), **options)  # type: ignore[arg-type]


def test_a_client_trusting_the_generated_ca_completes_tls_and_gets_answers(server, authority, session):
    answer = session.get(f"https://127.0.0.1:{server.port}/info", verify=authority.ca_path, timeout=5)
    assert answer.status_code == 200
    localhost = session.get(f"https://localhost:{server.port}/info", verify=authority.ca_path, timeout=5)
    assert localhost.status_code == 200


def test_a_client_not_trusting_the_ca_is_refused(server, session):
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"https://127.0.0.1:{server.port}/info", verify=True, timeout=5)
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")


def test_a_client_trusting_another_ca_is_refused(server):
    other = CertificateAuthority()
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            H2Client("127.0.0.1", server.port, other.client_context(("h2",)))
    finally:
        other.cleanup()


def test_alpn_h2_and_http11_reach_the_same_handler(server, authority, session):
    with _client(server, authority) as client:
        assert client.request("GET", "/info").json()["protocol"] == "h2"
    answer = session.get(f"https://127.0.0.1:{server.port}/info", verify=authority.ca_path, timeout=5)
    assert answer.json()["protocol"] == "http/1.1"


def test_headers_arrive_lowercase_in_order_with_the_query_parsed(server, authority):
    with _client(server, authority) as client:
        answer = client.request("GET", "/info?since=3&x=a", [("x-one", "1"), ("x-two", "2"), ("x-one", "3")]).json()
    assert [pair for pair in answer["headers"] if pair[0].startswith("x-")] == [
        ["x-one", "1"],
        ["x-two", "2"],
        ["x-one", "3"],
    ]
    assert answer["query"] == {"since": ["3"], "x": ["a"]}


def test_the_server_advertises_max_concurrent_streams(server, authority):
    with _client(server, authority) as client:
        assert client.remote_settings[0x3] == 1000
    smaller = EmulatorServer(_handle, authority.server_context(), max_concurrent_streams=50)
    smaller.start()
    try:
        with H2Client("127.0.0.1", smaller.port, authority.client_context(("h2",))) as client:
            assert client.remote_settings[0x3] == 50
    finally:
        smaller.stop()


def test_a_thousand_concurrent_streams_on_one_connection_all_complete(server, authority):
    with _client(server, authority) as client:
        answers = client.requests([("POST", "/echo", [], f"message {i}".encode()) for i in range(1000)])
    assert [answer.body for answer in answers] == [f"message {i}".encode() for i in range(1000)]
    assert {answer.status for answer in answers} == {200}


def test_a_long_lived_connection_remembers_a_bounded_number_of_closed_streams(authority):
    """h2 alone keeps 65,536 per connection: the local stack's emulators grew with every delivery."""
    small = EmulatorServer(_handle, authority.server_context(), max_concurrent_streams=10)
    small.start()
    try:
        with H2Client("127.0.0.1", small.port, authority.client_context(("h2",))) as client:
            for round_ in range(30):
                answers = client.requests([("POST", "/echo", [], f"{round_}.{i}".encode()) for i in range(10)])
                assert {answer.status for answer in answers} == {200}
            (engine,) = small.connections
            assert 0 < engine.closed_streams_remembered <= 20  # twice the streams open at once
    finally:
        small.stop()


def test_a_client_with_a_small_window_still_receives_a_large_response_whole(server, authority):
    with _client(server, authority, initial_window=1024) as client:
        answers = client.requests([("GET", "/bytes/300000", [], b""), ("GET", "/bytes/70000", [], b"")])
        # The server never sent more on a stream than the 1,024-byte window the client advertised.
        assert client.max_frame_seen <= 1024
    assert answers[0].body == bytes(i % 251 for i in range(300_000))
    assert answers[1].body == bytes(i % 251 for i in range(70_000))


def test_a_100_kb_request_body_sent_within_the_servers_windows_arrives_whole(server, authority):
    body = bytes(i % 256 for i in range(100 * 1024))
    # The server's stream window is 65,535: the body only gets through if the server hands window back.
    with _client(server, authority, timeout=5.0) as client:
        answers = client.requests([("POST", "/echo", [], body), ("POST", "/echo", [], body[::-1])])
    assert answers[0].body == body
    assert answers[1].body == body[::-1]


def test_a_slow_answer_does_not_hold_back_the_other_streams(server, authority):
    with _client(server, authority) as client:
        client.requests([("GET", "/slow/0.5", [], b""), *[("GET", "/info", [], b"")] * 20])
        slow_stream = client.stream_ids[0]
        assert client.completed[-1] == slow_stream
        assert len(client.completed) == 21


def test_a_failing_handler_answers_500_and_the_connection_keeps_serving(server, authority):
    with _client(server, authority) as client:
        failed, fine = client.requests([("GET", "/boom", [], b""), ("GET", "/info", [], b"")])
        assert failed.status == 500
        assert fine.status == 200
        assert client.request("GET", "/info").status == 200


def test_http11_keeps_the_connection_alive_across_requests(server, authority, session):
    url = f"https://127.0.0.1:{server.port}"
    ports = {
        session.post(url + "/info", data=b"x", verify=authority.ca_path, timeout=5).json()["client_port"]
        for _ in range(3)
    }
    assert len(ports) == 1


def test_http11_pipelined_requests_are_answered_in_order(server, authority):
    context = authority.client_context(("http/1.1",))
    with context.wrap_socket(
        socket.create_connection(("127.0.0.1", server.port), timeout=5), server_hostname="127.0.0.1"
    ) as tls:
        requests_bytes = b"".join(
            b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            for body in (b"first", b"second", b"third")
        )
        tls.sendall(requests_bytes)
        received = b""
        while received.count(b"HTTP/1.1 200") < 3 or not received.endswith(b"third"):
            received += tls.recv(65536)
    assert received.index(b"first") < received.index(b"second") < received.index(b"third")


def test_a_client_certificate_is_requested_not_required_and_reaches_the_handler(server, authority):
    certificate = authority.issue_client_certificate("com.example.cert")
    with H2Client("127.0.0.1", server.port, authority.client_context(("h2",), certificate)) as client:
        assert client.request("GET", "/info").json()["peer_topic"] == "com.example.cert"
    with _client(server, authority) as client:
        assert client.request("GET", "/info").json()["peer_topic"] is None


def test_a_reset_answer_resets_the_tcp_connection(server, authority, session):
    with _client(server, authority) as client, pytest.raises(ConnectionError):
        client.request("GET", "/reset")
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"https://127.0.0.1:{server.port}/reset", verify=authority.ca_path, timeout=5)


def test_stop_sends_goaway_closes_connections_and_returns_promptly(authority):
    running = EmulatorServer(_handle, authority.server_context())
    running.start()
    client = H2Client("127.0.0.1", running.port, authority.client_context(("h2",)))
    assert client.request("GET", "/info").status == 200
    hanging = threading.Thread(target=lambda: _ignore_errors(client, "/slow/30"), daemon=True)
    hanging.start()
    time.sleep(0.2)
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < 2.0
    hanging.join(5)
    assert client.goaway is not None
    assert client.goaway.error_code == 0
    assert not running.running
    client.sock.close()


def _ignore_errors(client: H2Client, path: str) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        client.request("GET", path)


def test_starting_on_a_busy_port_raises(server, authority):
    busy = EmulatorServer(_handle, authority.server_context(), port=server.port)
    with pytest.raises(OSError, match="in use"):
        busy.start()
    assert not busy.running


def test_a_header_that_is_not_utf8_ends_that_connection_with_a_protocol_error_only(server, authority):
    with _client(server, authority) as client:
        with pytest.raises(ConnectionError):
            client.request("GET", "/info", [("x-bad", b"\xff\xfe")])  # type: ignore[list-item]
        assert client.goaway is not None
        assert client.goaway.error_code == 1  # PROTOCOL_ERROR
    with _client(server, authority) as client:
        assert client.request("GET", "/info").status == 200


@pytest.mark.parametrize(("prior_knowledge", "protocol"), [(True, "h2"), (False, "http/1.1")])
def test_without_alpn_the_first_bytes_pick_the_protocol(server, authority, prior_knowledge, protocol):
    context = authority.client_context(())
    with context.wrap_socket(
        socket.create_connection(("127.0.0.1", server.port), timeout=5), server_hostname="127.0.0.1"
    ) as tls:
        assert tls.selected_alpn_protocol() is None
        if prior_knowledge:
            connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            connection.initiate_connection()
            connection.send_headers(
                1, [(":method", "GET"), (":scheme", "https"), (":authority", "x"), (":path", "/echo")], end_stream=True
            )
            tls.sendall(connection.data_to_send())
            answered = False
            while not answered:
                for event in connection.receive_data(tls.recv(65536)):
                    if isinstance(event, h2.events.ResponseReceived):
                        headers = dict(event.headers or [])
                        assert headers[b"x-protocol"] == protocol.encode()
                    answered = answered or isinstance(event, h2.events.StreamEnded)
                tls.sendall(connection.data_to_send())
        else:
            tls.sendall(b"GET /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            received = b""
            while chunk := tls.recv(65536):
                received += chunk
            assert b"HTTP/1.1 200" in received
            assert b"x-protocol: " + protocol.encode() in received
