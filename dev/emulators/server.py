"""One asyncio TLS server per emulator, serving HTTP/2 (h2) and HTTP/1.1 (h11) through one async request handler.

The server runs its own event loop in a background thread, so tests and the CLI drive it with plain calls:
`start()` returns once it listens, `stop()` sends GOAWAY, closes every connection and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import json
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h11
import hpack.hpack
from cryptography import x509

logger = logging.getLogger(__name__)

DEFAULT_MAX_CONCURRENT_STREAMS = 1000
# RFC 7540's default per-stream window: clients depend on our WINDOW_UPDATEs, which keeps that path exercised.
DEFAULT_STREAM_WINDOW = 65_535
# A large connection window lets 1,000 concurrent small bodies arrive without waiting for a round trip.
DEFAULT_CONNECTION_WINDOW = 16 * 1024 * 1024
# Far above any provider's limit; a bound so a runaway client cannot exhaust memory.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
_RFC_DEFAULT_WINDOW = 65_535
# How long stop() lets connections flush GOAWAY and close_notify before aborting them.
_CLOSE_GRACE_S = 0.5
_LINGER_RESET = struct.pack("ii", 1, 0)


@dataclass(slots=True)
class EmulatorRequest:
    """One HTTP request as every emulator sees it, whichever protocol carried it."""

    method: str
    path: str
    query: str
    header_list: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    protocol: str
    peer_certificate: x509.Certificate | None = None
    client: tuple[str, int] | None = None

    def header_count(self, name: str) -> int:
        """How many times the (lowercase) header `name` was sent."""
        return sum(1 for key, _ in self.header_list if key == name)

    def query_params(self) -> dict[str, list[str]]:
        """The query string, parsed."""
        return parse_qs(self.query, keep_blank_values=True)


@dataclass(slots=True)
class EmulatorResponse:
    """What a handler answers. `reason` labels the answer in the ledger's counts and is never sent."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    reason: str = ""
    reset_connection: bool = False

    @classmethod
    def json(
        cls, status: int, document: Any, headers: Iterable[tuple[str, str]] = (), reason: str = ""
    ) -> EmulatorResponse:
        """A JSON answer."""
        body = json.dumps(document, separators=(",", ":")).encode()
        return cls(status, [("content-type", "application/json"), *headers], body, reason)

    @classmethod
    def connection_reset(cls) -> EmulatorResponse:
        """No answer at all: the server resets the TCP connection the request came on."""
        return cls(0, reason="reset", reset_connection=True)


RequestHandler = Callable[[EmulatorRequest], Awaitable[EmulatorResponse]]


def _internal_error() -> EmulatorResponse:
    return EmulatorResponse.json(500, {"error": "emulator handler failed"}, reason="EmulatorFailure")


class _Engine(asyncio.Protocol):
    """What the two protocol engines share: the transport, the handler tasks, abrupt and graceful closing."""

    def __init__(self, server: EmulatorServer, peer_certificate: x509.Certificate | None) -> None:
        self._server = server
        self._loop = server.loop
        self._peer_certificate = peer_certificate
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._closed = False
        self._client: tuple[str, int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self._client = (str(peer[0]), int(peer[1])) if peer else None
        self._server.connections.add(self)

    @property
    def closed_streams_remembered(self) -> int:
        """How many closed streams the protocol engine still remembers (HTTP/1.1 has no streams)."""
        return 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.connections.discard(self)
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    async def _call_handler(self, request: EmulatorRequest) -> EmulatorResponse:
        try:
            return await self._server.handler(request)
        except asyncio.CancelledError:
            raise
        # The server must outlive a handler bug; the bug is logged with its traceback, the client sees a 500.
        except Exception:
            logger.exception("emulator handler failed on %s %s", request.method, request.path)
            return _internal_error()

    def reset(self) -> None:
        """Close the TCP connection abruptly: RST, no TLS close_notify, no GOAWAY.

        Like a reset on the wire between two packets: answers already made go out first, and requests
        not yet handled never will be (a real provider never saw them).
        """
        if self.transport is None or self._closed:
            return
        self.flush_pending()
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0 turns close() into a RST, which clients see as "connection reset by peer".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.transport.abort()
        self._closed = True

    def flush_pending(self) -> None:
        """Write out answers made but not yet sent (protocols that batch their writes override this)."""
        return

    def shutdown(self) -> None:
        """Graceful close for server stop."""
        if self.transport is not None and not self._closed:
            self.transport.close()

    def abort(self) -> None:
        """Close at once (after the grace period)."""
        if self.transport is not None:
            self.transport.abort()


class _LeanH2Connection(h2.connection.H2Connection):
    """h2's connection with a cheap open-stream count.

    h2 counts open inbound streams by walking every stream it knows for each new stream, O(n) per stream and
    a fifth of the server's CPU at 1,000 concurrent streams. The engine knows exactly which streams are open
    (receiving, being answered, or sending a body), so h2 asks it; every 128 new streams h2's own walk still
    runs, because that walk is also what prunes h2's table of closed streams (h2 is pinned to 4.4.x).
    """

    _PRUNE_EVERY = 128

    def __init__(self, config: h2.config.H2Configuration, count_open: Callable[[], int], max_streams: int) -> None:
        # h2 remembers how its last 65,536 closed streams closed (an OrderedDict entry each), so a server
        # grew ~8 MB per connection over its first 60,000 requests. RFC 9113 5.1 asks only that frames racing
        # a stream's close be ignored; twice the streams that can be open at once covers those.
        self.MAX_CLOSED_STREAMS = 2 * max_streams  # read by h2's __init__
        super().__init__(config)
        self._count_open = count_open
        self._until_prune = self._PRUNE_EVERY

    @property
    def open_inbound_streams(self) -> int:
        self._until_prune -= 1
        if self._until_prune <= 0:
            self._until_prune = self._PRUNE_EVERY
            return self._open_streams(1)  # server side: clients open the odd-numbered streams
        return self._count_open()


def _memoize_huffman_decoding() -> None:
    """Decode each distinct Huffman string once per process.

    hpack decodes Huffman bit by bit in Python. APNs clients send the same provider JWT on every request as
    a never-indexed literal (h2 never indexes `authorization`), which cost ~100 us per request to decode
    again. The decoder is a pure function of its bytes, so memoizing it cannot change any result.
    """
    module: Any = hpack.hpack  # the name hpack looks up at call time; not part of its typed API
    if not hasattr(module.decode_huffman, "cache_info"):
        module.decode_huffman = functools.lru_cache(maxsize=4096)(module.decode_huffman)


class _H2Engine(_Engine):
    """HTTP/2 over one connection: many concurrent streams, each answered by its own task."""

    def __init__(self, server: EmulatorServer, peer_certificate: x509.Certificate | None) -> None:
        super().__init__(server, peer_certificate)
        self._conn = _LeanH2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8"),
            self._count_open,
            server.max_concurrent_streams,
        )
        self._conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: server.max_concurrent_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: server.stream_window,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 64 * 1024,
            },
        )
        self._requests: dict[int, tuple[list[tuple[str, str]], bytearray]] = {}
        self._too_large: set[int] = set()
        self._outbound: dict[int, memoryview] = {}
        self._flush_scheduled = False
        self._dispatch: dict[type, Callable[[Any], None]] = {
            h2.events.RequestReceived: self._on_request,
            h2.events.DataReceived: self._on_data,
            h2.events.StreamEnded: self._on_stream_ended,
            h2.events.StreamReset: self._on_stream_reset,
            h2.events.WindowUpdated: self._on_window_updated,
            h2.events.RemoteSettingsChanged: self._on_settings_changed,
            h2.events.ConnectionTerminated: self._on_terminated,
        }

    def _count_open(self) -> int:
        return len(self._requests) + len(self._tasks) + len(self._outbound)

    @property
    def closed_streams_remembered(self) -> int:
        """h2's record of closed streams on this connection (bounded: see _LeanH2Connection)."""
        return len(self._conn._closed_streams)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._conn.initiate_connection()
        extra = self._server.connection_window - _RFC_DEFAULT_WINDOW
        if extra > 0:
            self._conn.increment_flow_control_window(extra)
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            # h2 has queued a GOAWAY with the right error code; send it and hang up.
            self._flush()
            self.shutdown()
            return
        except UnicodeDecodeError:
            # A header that is not UTF-8 leaves h2 mid-frame: the connection cannot go on.
            self.shutdown(h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        dispatch = self._dispatch
        for event in events:
            handler = dispatch.get(type(event))
            if handler is not None:
                handler(event)
        self._flush()

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        headers = [(str(name), str(value)) for name, value in event.headers or ()]
        self._requests[event.stream_id or 0] = (headers, bytearray())

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id or 0
        # Hand the window back at once: the emulator buffers bodies itself, so a client never stalls on us.
        self._conn.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
        pending = self._requests.get(stream_id)
        if pending is None or stream_id in self._too_large:
            return
        body = pending[1]
        body += event.data or b""
        if len(body) > self._server.max_body_bytes:
            self._too_large.add(stream_id)
            body.clear()

    def _on_stream_ended(self, event: h2.events.StreamEnded) -> None:
        stream_id = event.stream_id or 0
        pending = self._requests.pop(stream_id, None)
        if pending is None:
            return
        if stream_id in self._too_large:
            self._too_large.discard(stream_id)
            self._answer_now(stream_id, EmulatorResponse.json(413, {"error": "body too large"}))
            return
        header_list, body = pending
        pseudo: dict[str, str] = {}
        regular: list[tuple[str, str]] = []
        for name, value in header_list:
            if name[0] == ":":
                pseudo[name] = value
            else:
                regular.append((name, value))
        headers: dict[str, str] = {}
        for name, value in regular:
            headers.setdefault(name, value)
        path, _, query = pseudo.get(":path", "/").partition("?")
        request = EmulatorRequest(
            pseudo.get(":method", "GET"),
            path,
            query,
            regular,
            headers,
            bytes(body),
            "h2",
            self._peer_certificate,
            self._client,
        )
        self._tasks[stream_id] = self._loop.create_task(self._answer(stream_id, request))

    def _on_stream_reset(self, event: h2.events.StreamReset) -> None:
        stream_id = event.stream_id or 0
        self._requests.pop(stream_id, None)
        self._outbound.pop(stream_id, None)
        self._too_large.discard(stream_id)
        task = self._tasks.pop(stream_id, None)
        if task is not None:
            task.cancel()

    def _on_window_updated(self, event: h2.events.WindowUpdated) -> None:
        if event.stream_id:
            self._pump(event.stream_id)
        else:
            for stream_id in list(self._outbound):
                self._pump(stream_id)

    def _on_settings_changed(self, event: h2.events.RemoteSettingsChanged) -> None:
        if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
            for stream_id in list(self._outbound):
                self._pump(stream_id)

    def _on_terminated(self, event: h2.events.ConnectionTerminated) -> None:
        self.shutdown()

    def flush_pending(self) -> None:
        self._flush()

    async def _answer(self, stream_id: int, request: EmulatorRequest) -> None:
        if self._closed:
            return  # the connection was reset before this request was handled
        response = await self._call_handler(request)
        self._tasks.pop(stream_id, None)
        if self._closed:
            return
        if response.reset_connection:
            self.reset()
            return
        self._answer_now(stream_id, response)
        self._schedule_flush()

    def _answer_now(self, stream_id: int, response: EmulatorResponse) -> None:
        headers = [(":status", str(response.status))]
        headers.extend((name.lower(), value) for name, value in response.headers)
        body = response.body
        try:
            if body:
                headers.append(("content-length", str(len(body))))
                self._conn.send_headers(stream_id, headers)
                self._outbound[stream_id] = memoryview(body)
                self._pump(stream_id)
            else:
                self._conn.send_headers(stream_id, headers, end_stream=True)
        except h2.exceptions.StreamClosedError:
            # The client reset or closed the stream while we were answering; nothing to deliver.
            self._outbound.pop(stream_id, None)

    def _pump(self, stream_id: int) -> None:
        """Send as much of a response body as the peer's stream and connection windows allow."""
        remaining = self._outbound.get(stream_id)
        if remaining is None:
            return
        conn = self._conn
        try:
            while remaining:
                window = conn.local_flow_control_window(stream_id)
                if window <= 0:
                    break
                size = min(window, conn.max_outbound_frame_size, len(remaining))
                chunk, remaining = remaining[:size], remaining[size:]
                conn.send_data(stream_id, chunk.tobytes(), end_stream=not remaining)
        except h2.exceptions.StreamClosedError:
            remaining = memoryview(b"")
        if remaining:
            self._outbound[stream_id] = remaining
        else:
            del self._outbound[stream_id]
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        # Answers finishing in the same loop iteration go out in one write (one TLS record, one syscall).
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.transport is None or self._closed:
            return
        data = self._conn.data_to_send()
        if data:
            self.transport.write(data)

    def shutdown(self, error_code: int = h2.errors.ErrorCodes.NO_ERROR) -> None:
        """GOAWAY (no new streams), then close once written."""
        if self._closed or self.transport is None:
            return
        # A connection h2 already considers closed needs no second GOAWAY.
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._conn.close_connection(error_code)
        self._flush()
        super().shutdown()


class _H11Engine(_Engine):
    """HTTP/1.1 keep-alive: one request at a time per connection, pipelined requests answered in order."""

    def __init__(self, server: EmulatorServer, peer_certificate: x509.Certificate | None) -> None:
        super().__init__(server, peer_certificate)
        self._conn = h11.Connection(h11.SERVER)
        self._busy = False
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._too_large = False

    def data_received(self, data: bytes) -> None:
        try:
            self._conn.receive_data(data)
        except h11.RemoteProtocolError:
            self._bad_request()
            return
        self._advance()

    def eof_received(self) -> bool | None:
        self._conn.receive_data(b"")
        self._advance()
        return None

    def _advance(self) -> None:
        while not self._busy and not self._closed:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError:
                self._bad_request()
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._request = event
                self._body = bytearray()
                self._too_large = False
                if self._conn.client_is_waiting_for_100_continue:
                    self._send(h11.InformationalResponse(status_code=100, headers=[]))
            elif isinstance(event, h11.Data):
                if not self._too_large:
                    self._body += event.data
                    if len(self._body) > self._server.max_body_bytes:
                        self._too_large = True
                        self._body.clear()
            elif isinstance(event, h11.EndOfMessage):
                self._busy = True
                self._tasks[0] = self._loop.create_task(self._answer())
            elif isinstance(event, h11.ConnectionClosed):
                self.shutdown()
                return

    def _build_request(self) -> EmulatorRequest:
        assert self._request is not None
        header_list = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in self._request.headers]
        headers: dict[str, str] = {}
        for name, value in header_list:
            headers.setdefault(name, value)
        path, _, query = self._request.target.decode("latin-1").partition("?")
        return EmulatorRequest(
            self._request.method.decode("ascii"),
            path,
            query,
            header_list,
            headers,
            bytes(self._body),
            "http/1.1",
            self._peer_certificate,
            self._client,
        )

    async def _answer(self) -> None:
        if self._too_large:
            response = EmulatorResponse.json(413, {"error": "body too large"})
        else:
            response = await self._call_handler(self._build_request())
        self._tasks.pop(0, None)
        if self._closed:
            return
        if response.reset_connection:
            self.reset()
            return
        headers = [(name, value) for name, value in response.headers]
        headers.append(("content-length", str(len(response.body))))
        phrase = http.HTTPStatus(response.status).phrase if response.status in _KNOWN_STATUSES else ""
        try:
            self._send(h11.Response(status_code=response.status, headers=headers, reason=phrase.encode()))
            if response.body:
                self._send(h11.Data(data=response.body))
            self._send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            self.shutdown()
            return
        if self._conn.our_state is h11.MUST_CLOSE or self._conn.their_state is not h11.DONE:
            self.shutdown()
            return
        self._conn.start_next_cycle()
        self._busy = False
        self._advance()

    def _send(self, event: h11.Event) -> None:
        data = self._conn.send(event)
        if data and self.transport is not None and not self._closed:
            self.transport.write(data)

    def _bad_request(self) -> None:
        if self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            body = b'{"error":"malformed HTTP/1.1 request"}'
            try:
                self._send(
                    h11.Response(
                        status_code=400,
                        headers=[("content-type", "application/json"), ("content-length", str(len(body)))],
                    )
                )
                self._send(h11.Data(data=body))
                self._send(h11.EndOfMessage())
            except h11.LocalProtocolError:
                pass  # cannot answer in this state; closing is the answer
        self.shutdown()


_KNOWN_STATUSES = frozenset(status.value for status in http.HTTPStatus)


_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class _Negotiator(asyncio.Protocol):
    """Picks the engine once TLS is up, then steps out of the data path.

    ALPN decides when the client offered it. Without ALPN the first bytes decide: the HTTP/2 connection
    preface means h2 with prior knowledge (aioapns, for one, offers no ALPN and Apple still speaks h2 to
    it), anything else HTTP/1.1.
    """

    def __init__(self, server: EmulatorServer) -> None:
        self._server = server
        self._transport: asyncio.BaseTransport | None = None
        self._certificate: x509.Certificate | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self._certificate = x509.load_der_x509_certificate(der) if der else None
        self._transport = transport
        if alpn == "h2":
            self._switch(_H2Engine(self._server, self._certificate))
        elif alpn == "http/1.1":
            self._switch(_H11Engine(self._server, self._certificate))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) < len(_H2_PREFACE) and _H2_PREFACE.startswith(self._buffer):
            return  # could still be the preface
        prior_knowledge = self._buffer.startswith(_H2_PREFACE)
        engine: _Engine = (
            _H2Engine(self._server, self._certificate)
            if prior_knowledge
            else _H11Engine(self._server, self._certificate)
        )
        self._switch(engine)
        engine.data_received(self._buffer)

    def _switch(self, engine: _Engine) -> None:
        assert self._transport is not None
        self._transport.set_protocol(engine)
        engine.connection_made(self._transport)


class EmulatorServer:
    """An asyncio TLS server in its own thread; `port=0` picks a free port (see `port` after start)."""

    def __init__(
        self,
        handler: RequestHandler,
        ssl_context: ssl.SSLContext,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_concurrent_streams: int = DEFAULT_MAX_CONCURRENT_STREAMS,
        stream_window: int = DEFAULT_STREAM_WINDOW,
        connection_window: int = DEFAULT_CONNECTION_WINDOW,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        name: str = "emulator",
    ) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.host = host
        self._requested_port = port
        self.max_concurrent_streams = max_concurrent_streams
        self.stream_window = stream_window
        self.connection_window = connection_window
        self.max_body_bytes = max_body_bytes
        self.name = name
        self.connections: set[_Engine] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._port: int | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The server's event loop (only while running)."""
        if self._loop is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._loop

    @property
    def port(self) -> int:
        """The port it listens on (only after start)."""
        if self._port is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._port

    @property
    def running(self) -> bool:
        """Whether the server thread is up."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start listening; returns once the socket accepts connections (raises what binding raised)."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already started")
        _memoize_huffman_decoding()
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    loop.create_server(
                        lambda: _Negotiator(self),
                        self.host,
                        self._requested_port,
                        ssl=self.ssl_context,
                        backlog=1024,
                        ssl_handshake_timeout=10.0,
                        ssl_shutdown_timeout=_CLOSE_GRACE_S,
                    )
                )
            except OSError as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self._port = int(self._server.sockets[0].getsockname()[1])
            ready.set()
            try:
                loop.run_forever()
            finally:
                self._drain(loop)

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"{self.name}-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            self._loop = None
            raise failure[0]

    def stop(self, timeout: float = 5.0) -> None:
        """GOAWAY and close every connection, stop listening, join the thread. Safe to call twice."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                future.result(timeout)
            finally:
                loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None
        self._loop = None
        self._port = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shutdown()
        # Let GOAWAY and close_notify go out, but never wait on a client that does not answer.
        deadline = asyncio.get_running_loop().time() + _CLOSE_GRACE_S
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self.connections):
            connection.abort()
        await asyncio.sleep(0)

    @staticmethod
    def _drain(loop: asyncio.AbstractEventLoop) -> None:
        """Cancel what is left (hanging answers, transports closing) and close the loop."""
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
