"""Connecting: certificate verification, ALPN, client certificates, timeouts, bad origins."""

import asyncio
import socket
import ssl

import pytest

from push_core.http2 import ConnectError, Http2Client
from tests.http2.certificates import LoopbackPki
from tests.http2.h2_server import H2TestServer


async def test_a_server_certificate_from_an_untrusted_ca_is_refused(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context()) as server:
        client = Http2Client(server.origin, ssl_context=pki.client_context(trust_other_ca=True))

        with pytest.raises(ConnectError) as refused:
            await client.send(client.template("GET"), "/")

        assert isinstance(refused.value.__cause__, ConnectError)
        assert isinstance(refused.value.__cause__.__cause__, ssl.SSLCertVerificationError)
        assert server.stats.requests == []


async def test_the_system_trust_store_does_not_trust_a_private_ca(pki: LoopbackPki) -> None:
    async with H2TestServer(pki.server_context()) as server:
        client = Http2Client(server.origin)  # ssl.create_default_context()

        with pytest.raises(ConnectError):
            await client.send(client.template("GET"), "/")


async def test_a_server_that_does_not_offer_h2_over_alpn_is_refused(pki: LoopbackPki) -> None:
    for alpn in (["http/1.1"], []):
        async with H2TestServer(pki.server_context(alpn=alpn)) as server:
            client = Http2Client(server.origin, ssl_context=pki.client_context())

            with pytest.raises(ConnectError, match="ALPN"):
                await client.send(client.template("GET"), "/")

            assert server.stats.requests == []


async def test_a_client_certificate_is_presented_when_the_context_carries_one(pki: LoopbackPki) -> None:
    # APNs certificate authentication: the TLS server demands a client certificate.
    async with H2TestServer(pki.server_context(require_client_certificate=True)) as server:
        with_certificate = Http2Client(server.origin, ssl_context=pki.client_context(with_certificate=True))
        without_certificate = Http2Client(server.origin, ssl_context=pki.client_context())

        response = await with_certificate.send(with_certificate.template("GET"), "/")
        with pytest.raises(ConnectError):
            await without_certificate.send(without_certificate.template("GET"), "/")

        assert response.status == 200
        await with_certificate.close()


async def test_a_silent_server_times_out_as_a_connect_error() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Http2Client(f"https://127.0.0.1:{port}", connect_timeout=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(ConnectError, match=r"longer than 0\.2"):
        await client.send(client.template("GET"), "/")

    assert loop.time() - started < 1
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_closed_port_is_a_connect_error_and_the_next_send_tries_again() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Http2Client(f"https://127.0.0.1:{port}")
    get = client.template("GET")

    for _ in range(2):
        with pytest.raises(ConnectError) as refused:
            await client.send(get, "/")
        assert isinstance(refused.value.__cause__, ConnectError)
        assert isinstance(refused.value.__cause__.__cause__, ConnectionRefusedError)


@pytest.mark.parametrize(
    "origin",
    ["http://example.com", "https://", "https://example.com/path", "https://user@example.com", "example.com"],
)
def test_origins_other_than_https_host_and_port_are_refused(origin: str) -> None:
    with pytest.raises(ValueError, match="origin"):
        Http2Client(origin)


def test_the_authority_omits_the_default_port_and_brackets_ipv6() -> None:
    assert Http2Client("https://api.push.apple.com").authority == "api.push.apple.com"
    assert Http2Client("https://api.push.apple.com:2197").authority == "api.push.apple.com:2197"
    assert Http2Client("https://[::1]:8443").authority == "[::1]:8443"
