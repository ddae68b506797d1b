"""A loopback HTTP/2 server on the h2 library, with the knobs the client tests turn.

It is deliberately an independent implementation of the other side: h2 validates every frame and
header block our client sends. Tests that need frames h2 will not produce (padded HEADERS, a
PUSH_PROMISE, a GOAWAY while streams keep going) write raw frames built with hyperframe,
encoding headers with h2's own HPACK encoder so its dynamic table stays in step.

Run as a script (`python -m tests.http2.h2_server --cert C --key K`) it serves benchmark responses
in its own process; see measure_cpu.py.
"""

import argparse
import asyncio
import inspect
import json
import ssl
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import Frame, GoAwayFrame, HeadersFrame

Headers = Sequence[tuple[str, str]]
Handler = Callable[["ServerRequest"], Awaitable[None] | None]


@dataclass
class ServerRequest:
    """One complete request as the server saw it."""

    connection: "ServerConnection"
    stream_id: int
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.headers[":path"]

    def respond(
        self,
        status: int = 200,
        headers: Headers = (),
        body: bytes = b"",
        *,
        trailers: Headers | None = None,
        pad_length: int | None = None,
    ) -> None:
        self.connection.respond(self.stream_id, status, headers, body, trailers=trailers, pad_length=pad_length)


def echo_handler(request: ServerRequest) -> None:
    """200 with a JSON body naming the path and the request body's length."""
    body = json.dumps({"path": request.path, "length": len(request.body)}).encode()
    request.respond(200, [("content-type", "application/json")], body)


@dataclass
class _Outgoing:
    body: memoryview
    trailers: Headers | None
    pad_length: int | None
    offset: int = 0


@dataclass
class ServerStats:
    """What every connection of one server saw, for tests to assert on."""

    requests: list[ServerRequest] = field(default_factory=list)
    resets: list[tuple[int, int]] = field(default_factory=list)  # (stream id, error code) from the client
    goaways: list[int] = field(default_factory=list)  # error codes of the client's GOAWAYs
    errors: list[Exception] = field(default_factory=list)  # h2 protocol errors: the client broke HTTP/2
    ping_acks: int = 0
    settings_acks: int = 0
    max_open_streams: int = 0


class ServerConnection(asyncio.Protocol):
    """One client connection, driven by h2 in server mode."""

    def __init__(self, server: "H2TestServer") -> None:
        self.server = server
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.transport: asyncio.Transport | None = None
        self._partial: dict[int, tuple[dict[str, str], list[bytes]]] = {}
        self._outgoing: dict[int, _Outgoing] = {}
        self._dispatching = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.append(self)
        settings = h2.settings.Settings(client=False, initial_values=self.server.initial_settings())
        self.h2.local_settings = settings
        self.h2.initiate_connection()
        if self.server.connection_window is not None:
            self.h2.increment_flow_control_window(self.server.connection_window - 65_535)
        if self.server.on_connection_made is not None:
            self.server.on_connection_made(self)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.server.stats.errors.append(exc)
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        # Responses produced while handling one read go out in one write, as a busy server's would.
        self._dispatching = True
        try:
            for event in events:
                self._dispatch(event)
        finally:
            self._dispatching = False
        self.flush()

    def _dispatch(self, event: h2.events.Event) -> None:
        stats = self.server.stats
        if isinstance(event, h2.events.RequestReceived):
            assert event.stream_id is not None
            assert event.headers is not None
            self._partial[event.stream_id] = ({str(k): str(v) for k, v in event.headers}, [])
            stats.max_open_streams = max(stats.max_open_streams, self.h2.open_inbound_streams)
            if self.server.on_request_headers is not None:
                self.server.on_request_headers(self, event.stream_id)
        elif isinstance(event, h2.events.DataReceived):
            assert event.stream_id is not None
            assert event.data is not None
            self._partial[event.stream_id][1].append(event.data)
            if self.server.acknowledge_data:
                self.h2.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            assert event.stream_id is not None
            headers, parts = self._partial.pop(event.stream_id)
            request = ServerRequest(self, event.stream_id, headers, b"".join(parts))
            stats.requests.append(request)
            result = self.server.handler(request)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self.server.tasks.add(task)
                task.add_done_callback(self.server.tasks.discard)
        elif isinstance(event, h2.events.StreamReset):
            assert event.stream_id is not None
            stats.resets.append((event.stream_id, int(event.error_code or 0)))
            self._partial.pop(event.stream_id, None)
            self._outgoing.pop(event.stream_id, None)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            for stream_id in list(self._outgoing):
                self._send_body(stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated):
            stats.goaways.append(int(event.error_code or 0))
        elif isinstance(event, h2.events.PingAckReceived):
            stats.ping_acks += 1
        elif isinstance(event, h2.events.SettingsAcknowledged):
            stats.settings_acks += 1

    def flush(self) -> None:
        if self._dispatching:
            return
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def respond(
        self,
        stream_id: int,
        status: int = 200,
        headers: Headers = (),
        body: bytes = b"",
        *,
        trailers: Headers | None = None,
        pad_length: int | None = None,
    ) -> None:
        """Send a response, body and trailers as flow control allows (the rest as windows open)."""
        if self.closed or stream_id not in self.h2.streams or self.h2.streams[stream_id].closed:
            return
        has_more = bool(body) or trailers is not None
        self.h2.send_headers(stream_id, [(":status", str(status)), *headers], end_stream=not has_more)
        if has_more:
            self._outgoing[stream_id] = _Outgoing(memoryview(body), trailers, pad_length)
            self._send_body(stream_id)
        self.flush()

    def _send_body(self, stream_id: int) -> None:
        out = self._outgoing[stream_id]
        overhead = 0 if out.pad_length is None else out.pad_length + 1
        while out.offset < len(out.body):
            window = self.h2.local_flow_control_window(stream_id)
            n = min(len(out.body) - out.offset, window - overhead, self.h2.max_outbound_frame_size - overhead)
            if n <= 0:
                return
            end = out.offset + n
            last = end == len(out.body) and out.trailers is None
            self.h2.send_data(
                stream_id, out.body[out.offset : end].tobytes(), end_stream=last, pad_length=out.pad_length
            )
            out.offset = end
        if out.trailers is not None:
            self.h2.send_headers(stream_id, list(out.trailers), end_stream=True)
        del self._outgoing[stream_id]

    def reset(self, stream_id: int, error_code: int) -> None:
        """RST_STREAM one stream."""
        self.h2.reset_stream(stream_id, error_code)
        self.flush()

    def update_settings(self, settings: dict[int, int]) -> None:
        """Send a new SETTINGS frame mid-connection."""
        self.h2.update_settings(settings)
        self.flush()

    def ping(self, opaque: bytes = b"pinging!") -> None:
        """Send a PING; ServerStats.ping_acks counts the ACKs."""
        self.h2.ping(opaque)
        self.flush()

    def write_raw(self, *frames: Frame | bytes) -> None:
        """Write frames h2 would not send, right after anything h2 has queued."""
        assert self.transport is not None
        raw = b"".join(f if isinstance(f, bytes) else f.serialize() for f in frames)
        self.transport.write(self.h2.data_to_send() + raw)

    def header_block(self, headers: Headers) -> bytes:
        """Encode headers with h2's own encoder, so its dynamic table stays in step with the client's."""
        return bytes(self.h2.encoder.encode(list(headers)))

    def raw_headers_frame(self, stream_id: int, headers: Headers, flags: Sequence[str], **options: Any) -> HeadersFrame:
        """A HEADERS frame built by hand (padding, priority) with h2's encoder."""
        return HeadersFrame(stream_id, data=self.header_block(headers), flags=set(flags), **options)

    def goaway(self, last_stream_id: int, error_code: int = 0) -> None:
        """A raw GOAWAY: h2's own would stop us answering the streams it lets finish."""
        self.write_raw(GoAwayFrame(0, last_stream_id=last_stream_id, error_code=error_code))

    def close(self) -> None:
        """Close politely, as a server ending an idle connection does: GOAWAY, then close."""
        self.h2.close_connection()
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the TCP connection without a GOAWAY."""
        if self.transport is not None:
            self.transport.abort()


class H2TestServer:
    """An HTTP/2 server over TLS on 127.0.0.1 with per-test knobs; use it with `async with`."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        handler: Handler = echo_handler,
        *,
        settings: dict[int, int] | None = None,
        acknowledge_data: bool = True,
        connection_window: int | None = None,
        on_request_headers: Callable[[ServerConnection, int], None] | None = None,
        on_connection_made: Callable[[ServerConnection], None] | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.handler = handler
        self.settings = settings or {}
        self.acknowledge_data = acknowledge_data
        self.connection_window = connection_window
        # Called as a request's HEADERS arrive, before its body: for frames aimed at an upload.
        self.on_request_headers = on_request_headers
        # Called with the server's SETTINGS queued: raw frames it writes go out in the same record.
        self.on_connection_made = on_connection_made
        self.stats = ServerStats()
        self.connections: list[ServerConnection] = []
        self.tasks: set[asyncio.Future[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    def initial_settings(self) -> dict[h2.settings.SettingCodes, int]:
        values = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000}
        values.update({h2.settings.SettingCodes(key): value for key, value in self.settings.items()})
        return values

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def __aenter__(self) -> "H2TestServer":
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: ServerConnection(self), "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in list(self.tasks):
            task.cancel()
        for connection in self.connections:
            connection.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def _bench_handler(shape: str) -> Handler:
    def handler(request: ServerRequest) -> None:
        if shape == "apns":
            # What APNs answers: 200 and a fresh apns-id (h2 indexes it and Huffman-codes it).
            request.respond(200, [("apns-id", str(uuid.uuid4()))])
        else:
            request.respond(200)

    return handler


async def _serve_forever(cert: str, key: str, shape: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    # A large connection window, so that the server's flow control does not pace the benchmark.
    async with H2TestServer(context, _bench_handler(shape), connection_window=1 << 24) as server:
        print(server.port, flush=True)
        await asyncio.Event().wait()


def main() -> None:
    """Serve benchmark responses until killed; prints the port first."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--shape", choices=["bare", "apns"], default="apns")
    args = parser.parse_args()
    asyncio.run(_serve_forever(args.cert, args.key, args.shape))


if __name__ == "__main__":
    main()
