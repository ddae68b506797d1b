"""One HTTP/2 connection as an asyncio Protocol: frames in, frames out, streams and flow control.

Why our own and not h2: h2's state machine alone costs ~0.10 ms of CPU per request here, ten
times the budget of the push hot path. This class implements the client side of RFC 9113 that a
request/response client needs, and nothing more: no server push (disabled in our SETTINGS), no
priorities, no upgrade from HTTP/1.1.

Everything frames produce during one event-loop turn goes out with one transport.write; incoming
frames are parsed in place from the received bytes.
"""

import asyncio
import contextlib
import os
import socket
import ssl
from collections import deque
from typing import Final, Protocol, cast

import hpack

from push_core.http2.errors import ConnectError, ConnectionLost, ProtocolViolation, StreamReset
from push_core.http2.frames import (
    CANCEL,
    COMPRESSION_ERROR,
    CONNECTION_PREFACE,
    CONTINUATION,
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_WINDOW_SIZE,
    ENHANCE_YOUR_CALM,
    FLAG_ACK,
    FLAG_END_HEADERS,
    FLAG_END_STREAM,
    FLAG_PADDED,
    FLAG_PRIORITY,
    FLOW_CONTROL_ERROR,
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADERS,
    MAX_MAX_FRAME_SIZE,
    MAX_WINDOW_SIZE,
    NO_ERROR,
    PING,
    PRIORITY,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    REFUSED_STREAM,
    RST_STREAM,
    SETTINGS,
    SETTINGS_ACK_FRAME,
    SETTINGS_ENABLE_PUSH,
    SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    SETTINGS_MAX_FRAME_SIZE,
    SETTINGS_MAX_HEADER_LIST_SIZE,
    WINDOW_UPDATE,
    error_name,
    frame_header,
    goaway_frame,
    ping_frame,
    rst_stream_frame,
    settings_frame,
    unpack_setting,
    unpack_u32,
    window_update_frame,
)
from push_core.http2.response import HeaderBlockDecoder, MalformedHeaders, Response

# What we let the server send before it must wait for our WINDOW_UPDATE: 1 MiB per stream (push
# responses are small; a large window means no stream-level updates in practice) and 16 MiB for
# the connection. Credit is returned once half of a window is used.
STREAM_RECEIVE_WINDOW: Final = 1 << 20
CONNECTION_RECEIVE_WINDOW: Final = 1 << 24
_STREAM_REPLENISH_AT: Final = STREAM_RECEIVE_WINDOW // 2
_CONNECTION_REPLENISH_AT: Final = CONNECTION_RECEIVE_WINDOW // 2
# A header block split over CONTINUATION frames may not grow past this (a guard against a server
# that streams CONTINUATION forever).
_MAX_HEADER_BLOCK: Final = 1 << 20

CLIENT_SETTINGS: Final = {
    SETTINGS_ENABLE_PUSH: 0,
    SETTINGS_MAX_CONCURRENT_STREAMS: 0,  # for pushed streams, which we never accept
    SETTINGS_INITIAL_WINDOW_SIZE: STREAM_RECEIVE_WINDOW,
}
# Preface, SETTINGS and the connection WINDOW_UPDATE always go out together, so build them once.
_CLIENT_START: Final = (
    CONNECTION_PREFACE
    + settings_frame(CLIENT_SETTINGS)
    + window_update_frame(0, CONNECTION_RECEIVE_WINDOW - DEFAULT_WINDOW_SIZE)
)
# A dynamic table size update to 0 at the start of our first header block: our encoder never
# inserts, and telling the server so means no later SETTINGS_HEADER_TABLE_SIZE from it can
# require one (RFC 7541 §4.2).
_TABLE_SIZE_ZERO: Final = b"\x20"

_pack_header = FRAME_HEADER.pack
_unpack_header = FRAME_HEADER.unpack_from
_NOT_SENT_YET: Final = 1 << 32
# Response is a frozen dataclass, whose __init__ sets each field through object.__setattr__;
# setting its slots directly costs half as much, once per response.
_new_response = object.__new__
_set_status = Response.__dict__["status"].__set__
_set_headers = Response.__dict__["headers"].__set__
_set_body = Response.__dict__["body"].__set__


class Exchange:
    """One request through its attempts, and its response as it arrives on the current stream."""

    __slots__ = (
        "attempts",
        "block",
        "body",
        "data",
        "deadline",
        "future",
        "headers",
        "recv_unacked",
        "status",
        "stream_id",
    )

    def __init__(self, future: "asyncio.Future[Response]", block: bytes, body: bytes, deadline: float) -> None:
        self.future = future
        self.block = block
        self.body = body
        self.deadline = deadline
        self.attempts = 0
        self.stream_id = 0
        self.status = 0
        self.headers: dict[str, str] = {}
        self.data: bytes | bytearray = b""
        self.recv_unacked = 0

    def rewind(self) -> None:
        """Forget the stream of an attempt the server did not process, before sending it again."""
        self.attempts += 1
        self.stream_id = 0
        self.status = 0
        self.headers = {}
        self.data = b""
        self.recv_unacked = 0


class _Upload:
    """A request body still being sent under flow control."""

    __slots__ = ("exchange", "offset", "queued", "window")

    def __init__(self, exchange: Exchange, window: int) -> None:
        self.exchange = exchange
        self.offset = 0
        self.window = window
        self.queued = False


class ConnectionOwner(Protocol):
    """What a connection tells the client that owns it."""

    pending: deque[Exchange]

    def pump(self) -> None:
        """A stream slot freed up while requests wait."""

    def retired(self, connection: "Http2Connection") -> None:
        """The connection takes no new streams (GOAWAY, ids exhausted, closing or lost)."""

    def retry(self, exchanges: list[Exchange]) -> None:
        """These requests were not processed by the server: send them again."""

    def closed(self, connection: "Http2Connection") -> None:
        """The transport is gone."""


def _lost(cause: BaseException | None) -> ConnectionLost:
    error = ConnectionLost("connection lost while the request was in flight")
    error.__cause__ = cause
    return error


class Http2Connection(asyncio.Protocol):
    """The client side of one HTTP/2 connection over TLS.

    `open_limit` is how many streams may be open now (0 once the connection drains); the owner
    calls `open` only while `len(streams) < open_limit`.
    """

    def __init__(
        self,
        owner: ConnectionOwner,
        loop: asyncio.AbstractEventLoop,
        *,
        max_in_flight: int,
        max_stream_id: int,
    ) -> None:
        self._owner = owner
        self._owner_pending = owner.pending
        self._loop = loop
        self._max_in_flight = max_in_flight
        self._max_stream_id = max_stream_id
        self._transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.streams: dict[int, Exchange] = {}
        self.open_limit = 0  # nothing opens before the server's SETTINGS arrive
        self._next_sid = 1
        self._unsent_from = _NOT_SENT_YET
        self._draining = False
        self._closed = False
        self._goaway_sent = False
        self._settings_seen = False
        self._first_block = True
        # The server's settings as they apply to what we send.
        self._peer_max_streams = 2**31
        self._peer_initial_window = DEFAULT_WINDOW_SIZE
        self._peer_max_frame = DEFAULT_MAX_FRAME_SIZE
        self.peer_max_header_list_size: int | None = None
        self._send_window = DEFAULT_WINDOW_SIZE
        self._uploads: dict[int, _Upload] = {}
        self._blocked: deque[_Upload] = deque()
        # DATA bytes received on the connection that we have not yet returned as credit.
        self._recv_unacked = 0
        self._decoder = HeaderBlockDecoder()
        self._cont_sid = 0
        self._cont_flags = 0
        self._cont_parts: list[bytes] = []
        self._cont_size = 0
        self._pings: dict[bytes, asyncio.Future[None]] = {}
        self._out = bytearray()
        self._flush_scheduled = False
        self._rest = b""

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Check that TLS negotiated h2, then send the preface, SETTINGS and a connection WINDOW_UPDATE."""
        self._transport = cast("asyncio.Transport", transport)
        ssl_object = transport.get_extra_info("ssl_object")
        protocol = ssl_object.selected_alpn_protocol() if isinstance(ssl_object, ssl.SSLObject) else None
        if protocol != "h2":
            self._closed = True
            self._transport.close()
            if not self.ready.done():
                self.ready.set_exception(ConnectError(f"the server did not agree to h2 over ALPN ({protocol})"))
            return
        self._transport.write(_CLIENT_START)

    def data_received(self, data: bytes) -> None:
        """Parse every complete frame received; keep a partial one for the next call."""
        if self._closed:
            return
        if self._rest:
            data = self._rest + data
            self._rest = b""
        try:
            pos = self._parse(data)
        except ProtocolViolation as violation:
            self._fail(violation)
            return
        if pos < len(data):
            self._rest = data[pos:]
        if self._out:
            self._flush()

    def eof_received(self) -> bool | None:
        """Let the transport close; connection_lost settles the streams."""
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail in-flight requests (ConnectionLost), retry ones never sent, and tell the owner."""
        self._closed = True
        if not self.ready.done():
            error = ConnectError("the connection closed before the server's SETTINGS arrived")
            error.__cause__ = exc
            self.ready.set_exception(error)
        self._lose_streams(exc)
        for waiter in self._pings.values():
            if not waiter.done():
                waiter.set_exception(_lost(exc))
        self._pings.clear()
        if not self.lost.done():
            self.lost.set_result(None)
        self._owner.closed(self)

    # --- sending ----------------------------------------------------------------------------

    def open(self, exchange: Exchange) -> None:
        """Start a request on a new stream: HEADERS (and CONTINUATION) then as much body as windows allow."""
        sid = self._next_sid
        self._next_sid = sid + 2
        exchange.stream_id = sid
        self.streams[sid] = exchange
        block = exchange.block
        if self._first_block:
            self._first_block = False
            block = _TABLE_SIZE_ZERO + block
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        out = self._out
        body = exchange.body
        n = len(block)
        if n > self._peer_max_frame:
            self._write_split_headers(sid, block, end_stream=not body)
        elif body:
            out += _pack_header((n << 8) | HEADERS, FLAG_END_HEADERS, sid)
            out += block
        else:
            out += _pack_header((n << 8) | HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, sid)
            out += block
        if body:
            m = len(body)
            if (
                not self._blocked
                and m <= self._send_window
                and m <= self._peer_initial_window
                and m <= self._peer_max_frame
            ):
                out += _pack_header(m << 8, FLAG_END_STREAM, sid)
                out += body
                self._send_window -= m
            else:
                self._start_upload(sid, exchange)
        if self._next_sid > self._max_stream_id:
            self._retire()

    def cancel(self, exchange: Exchange, error_code: int = CANCEL) -> bool:
        """Close the exchange's stream with RST_STREAM; False when it is not open here."""
        sid = exchange.stream_id
        if self.streams.get(sid) is not exchange:
            return False
        del self.streams[sid]
        self._drop_upload(sid)
        if not self._closed:
            self._out += rst_stream_frame(sid, error_code)
            self._schedule_flush()
        self._stream_closed()
        return True

    def ping(self) -> "asyncio.Future[None]":
        """Send a PING; the future resolves when its ACK arrives."""
        opaque = os.urandom(8)
        waiter: asyncio.Future[None] = self._loop.create_future()
        if self._closed:
            waiter.set_exception(_lost(None))
            return waiter
        self._pings[opaque] = waiter
        self._out += ping_frame(opaque)
        self._schedule_flush()
        return waiter

    def close_gracefully(self) -> None:
        """Open no more streams; once the open ones finish, send GOAWAY and close.

        GOAWAY waits for the last response because some servers (those built on h2, for one)
        stop answering open streams as soon as a client's GOAWAY arrives.
        """
        self._retire()
        if not self.streams:
            self._shutdown()

    def abort(self) -> None:
        """Give up on the open streams (ConnectionLost), then send GOAWAY and close."""
        self._retire()
        self._lose_streams(None)
        self._shutdown()

    def abandon(self) -> None:
        """Let go of a connection whose event loop is gone: shut its socket down, settle nothing."""
        self._closed = True
        if self._transport is not None:
            sock = self._transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def drop(self) -> None:
        """Reset the transport of a connection that never became usable."""
        self._retire()
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    @property
    def draining(self) -> bool:
        """True once the connection takes no new streams."""
        return self._draining

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self._transport
        if self._closed or transport is None or transport.is_closing():
            # Nothing written: streams opened since the last write stay "not sent" for a retry.
            return
        out = self._out
        if out:
            # The transport keeps this bytearray; we start a new one rather than reuse it.
            self._out = bytearray()
            transport.write(out)
        self._unsent_from = self._next_sid

    def _write_split_headers(self, sid: int, block: bytes, *, end_stream: bool) -> None:
        size = self._peer_max_frame
        chunks = [block[i : i + size] for i in range(0, len(block), size)]
        out = self._out
        flags = FLAG_END_STREAM if end_stream else 0
        for index, chunk in enumerate(chunks):
            frame_type = HEADERS if index == 0 else CONTINUATION
            chunk_flags = (flags if index == 0 else 0) | (FLAG_END_HEADERS if index == len(chunks) - 1 else 0)
            out += frame_header(len(chunk), frame_type, chunk_flags, sid)
            out += chunk

    def _start_upload(self, sid: int, exchange: Exchange) -> None:
        upload = _Upload(exchange, self._peer_initial_window)
        self._uploads[sid] = upload
        if upload.window > 0:
            upload.queued = True
            self._blocked.append(upload)
            self._send_uploads()

    def _send_uploads(self) -> None:
        """Send queued bodies in order while the connection window lasts."""
        blocked = self._blocked
        out = self._out
        max_frame = self._peer_max_frame
        sent = False
        while blocked and self._send_window > 0:
            upload = blocked[0]
            body = upload.exchange.body
            sid = upload.exchange.stream_id
            total = len(body)
            view = memoryview(body)
            while upload.offset < total:
                n = min(total - upload.offset, self._send_window, upload.window, max_frame)
                if n <= 0:
                    break
                end = upload.offset + n
                out += _pack_header(n << 8, FLAG_END_STREAM if end == total else 0, sid)
                out += view[upload.offset : end]
                upload.offset = end
                upload.window -= n
                self._send_window -= n
                sent = True
            if upload.offset == total:
                blocked.popleft()
                upload.queued = False
                del self._uploads[sid]
            elif upload.window <= 0:
                # Waits for its own stream WINDOW_UPDATE; others may use the connection window.
                blocked.popleft()
                upload.queued = False
            else:
                break
        if sent:
            self._schedule_flush()

    def _drop_upload(self, sid: int) -> bool:
        upload = self._uploads.pop(sid, None) if self._uploads else None
        if upload is None:
            return False
        if upload.queued:
            self._blocked.remove(upload)
        return True

    # --- lifecycle --------------------------------------------------------------------------

    def _retire(self) -> None:
        self.open_limit = 0
        if not self._draining:
            self._draining = True
            self._owner.retired(self)

    def _stream_closed(self) -> None:
        if self._draining:
            if not self.streams:
                self._shutdown()
        elif self._owner_pending:
            self._owner.pump()

    def _shutdown(self) -> None:
        if self._closed:
            return
        if not self._goaway_sent:
            self._goaway_sent = True
            self._out += goaway_frame(0, NO_ERROR)
        self._flush()
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    def _fail(self, violation: ProtocolViolation) -> None:
        """The server broke the protocol: say why in a GOAWAY, close, settle every stream."""
        if not self._closed:
            self._out += goaway_frame(0, violation.error_code, str(violation).encode()[:256])
            self._flush()
            self._closed = True
            if self._transport is not None:
                self._transport.close()
        self._retire()
        self._lose_streams(violation)

    def _lose_streams(self, cause: BaseException | None) -> None:
        self._retire()
        if not self.streams:
            return
        unsent_from = self._unsent_from
        retry: list[Exchange] = []
        for sid, exchange in self.streams.items():
            if sid >= unsent_from:
                retry.append(exchange)
            elif not exchange.future.done():
                exchange.future.set_exception(_lost(cause))
        self.streams.clear()
        self._uploads.clear()
        self._blocked.clear()
        if retry:
            self._owner.retry(retry)

    def _reset_stream(self, sid: int, exchange: Exchange, error_code: int, error: Exception) -> None:
        """A stream error: RST_STREAM it, fail its request, keep the connection."""
        del self.streams[sid]
        self._drop_upload(sid)
        self._out += rst_stream_frame(sid, error_code)
        if not exchange.future.done():
            exchange.future.set_exception(error)
        self._stream_closed()

    # --- receiving --------------------------------------------------------------------------

    def _is_idle(self, sid: int) -> bool:
        # Server-initiated (even) streams never exist here: push is disabled.
        return not sid & 1 or sid >= self._next_sid

    def _parse(self, data: bytes) -> int:
        pos = 0
        end = len(data)
        if not self._settings_seen and end >= FRAME_HEADER_SIZE and data[3] != SETTINGS:
            raise ProtocolViolation(PROTOCOL_ERROR, "the server's first frame is not SETTINGS")
        streams = self.streams
        while end - pos >= 9:
            length_type, flags, sid = _unpack_header(data, pos)
            length = length_type >> 8
            if length > DEFAULT_MAX_FRAME_SIZE:
                raise ProtocolViolation(FRAME_SIZE_ERROR, f"frame of {length} bytes exceeds our maximum")
            start = pos + 9
            stop = start + length
            if stop > end:
                break
            pos = stop
            frame_type = length_type & 0xFF
            sid &= 0x7FFFFFFF
            if self._cont_sid and frame_type != CONTINUATION:
                raise ProtocolViolation(PROTOCOL_ERROR, "header block interrupted before END_HEADERS")
            if frame_type == 0:  # DATA
                if not sid:
                    raise ProtocolViolation(PROTOCOL_ERROR, "DATA on stream 0")
                # Credit goes back as soon as half a window is used: bodies are consumed on arrival.
                self._recv_unacked += length
                if self._recv_unacked >= _CONNECTION_REPLENISH_AT:
                    self._out += window_update_frame(0, self._recv_unacked)
                    self._recv_unacked = 0
                exchange = streams.get(sid)
                if exchange is None:
                    if self._is_idle(sid):
                        raise ProtocolViolation(PROTOCOL_ERROR, f"DATA on idle stream {sid}")
                    continue  # a stream we cancelled: the bytes still counted for the connection
                if flags & FLAG_PADDED:
                    if not length or data[start] >= length:
                        raise ProtocolViolation(PROTOCOL_ERROR, "DATA padding exceeds the payload")
                    payload = data[start + 1 : stop - data[start]]
                else:
                    payload = data[start:stop]
                if not exchange.status:
                    self._reset_stream(
                        sid, exchange, PROTOCOL_ERROR, StreamReset(PROTOCOL_ERROR, "DATA before response headers")
                    )
                    continue
                if payload:
                    body = exchange.data
                    if not body:
                        exchange.data = payload
                    elif type(body) is bytes:
                        exchange.data = bytearray(body) + payload
                    else:
                        body += payload
                if flags & FLAG_END_STREAM:
                    self._complete(sid, exchange)
                else:
                    exchange.recv_unacked += length
                    if exchange.recv_unacked >= _STREAM_REPLENISH_AT:
                        self._out += window_update_frame(sid, exchange.recv_unacked)
                        exchange.recv_unacked = 0
            elif frame_type == HEADERS:
                if not sid:
                    raise ProtocolViolation(PROTOCOL_ERROR, "HEADERS on stream 0")
                first = start
                last = stop
                if flags & FLAG_PADDED:
                    if not length:
                        raise ProtocolViolation(PROTOCOL_ERROR, "padded HEADERS without a pad length")
                    last -= data[start]
                    first += 1
                if flags & FLAG_PRIORITY:
                    first += 5
                if first > last:
                    raise ProtocolViolation(PROTOCOL_ERROR, "HEADERS padding exceeds the payload")
                if flags & FLAG_END_HEADERS:
                    self._header_block(sid, flags, data[first:last])
                else:
                    self._cont_sid = sid
                    self._cont_flags = flags
                    self._cont_parts = [data[first:last]]
                    self._cont_size = last - first
            else:
                self._control_frame(frame_type, flags, sid, data, start, stop)
        return pos

    def _complete(self, sid: int, exchange: Exchange) -> None:
        del self.streams[sid]
        if self._uploads and self._drop_upload(sid):
            # The server answered before taking the whole body: stop sending it (RFC 9113 §8.1).
            self._out += rst_stream_frame(sid, CANCEL)
        future = exchange.future
        if not future.done():
            body = exchange.data
            response = _new_response(Response)
            _set_status(response, exchange.status)
            _set_headers(response, exchange.headers)
            _set_body(response, body if type(body) is bytes else bytes(body))
            future.set_result(response)
        self._stream_closed()

    def _header_block(self, sid: int, flags: int, block: bytes) -> None:
        malformed: MalformedHeaders | None = None
        try:
            status, headers = self._decoder.decode(block)
        except hpack.HPACKError as exc:
            raise ProtocolViolation(COMPRESSION_ERROR, f"undecodable header block: {exc}") from exc
        except MalformedHeaders as exc:
            malformed, status, headers = exc, 0, {}
        exchange = self.streams.get(sid)
        if exchange is None:
            if self._is_idle(sid):
                raise ProtocolViolation(PROTOCOL_ERROR, f"HEADERS on idle stream {sid}")
            return  # decoded anyway: the server's dynamic table moved on
        if malformed is None:
            if not exchange.status:
                if not status:
                    malformed = MalformedHeaders("response without :status")
                elif status < 200:
                    if not flags & FLAG_END_STREAM:
                        return  # informational (1xx): the final response follows
                    malformed = MalformedHeaders("informational response ends the stream")
                else:
                    exchange.status = status
                    exchange.headers = headers
            elif status or not flags & FLAG_END_STREAM:
                malformed = MalformedHeaders("trailers with :status or without END_STREAM")
            else:
                merged = exchange.headers
                for name, value in headers.items():
                    merged[name] = merged[name] + ", " + value if name in merged else value
        if malformed is not None:
            error = StreamReset(PROTOCOL_ERROR, f"malformed response headers: {malformed}")
            error.__cause__ = malformed
            self._reset_stream(sid, exchange, PROTOCOL_ERROR, error)
        elif flags & FLAG_END_STREAM:
            self._complete(sid, exchange)

    def _control_frame(self, frame_type: int, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        length = stop - start
        if frame_type == CONTINUATION:
            if not self._cont_sid or sid != self._cont_sid:
                raise ProtocolViolation(PROTOCOL_ERROR, f"unexpected CONTINUATION on stream {sid}")
            self._cont_parts.append(data[start:stop])
            self._cont_size += length
            if self._cont_size > _MAX_HEADER_BLOCK:
                raise ProtocolViolation(ENHANCE_YOUR_CALM, "header block too large")
            if flags & FLAG_END_HEADERS:
                block = b"".join(self._cont_parts)
                self._cont_sid = 0
                self._cont_parts = []
                self._header_block(sid, self._cont_flags, block)
        elif frame_type == WINDOW_UPDATE:
            if length != 4:
                raise ProtocolViolation(FRAME_SIZE_ERROR, "WINDOW_UPDATE is not 4 bytes")
            increment = unpack_u32(data, start) & 0x7FFFFFFF
            if not sid:
                if not increment:
                    raise ProtocolViolation(PROTOCOL_ERROR, "connection WINDOW_UPDATE of 0")
                self._send_window += increment
                if self._send_window > MAX_WINDOW_SIZE:
                    raise ProtocolViolation(FLOW_CONTROL_ERROR, "connection window above 2^31-1")
                if self._blocked:
                    self._send_uploads()
                return
            self._stream_window_update(sid, increment)
        elif frame_type == SETTINGS:
            if sid:
                raise ProtocolViolation(PROTOCOL_ERROR, "SETTINGS on a stream")
            if flags & FLAG_ACK:
                if length:
                    raise ProtocolViolation(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
                return
            if length % 6:
                raise ProtocolViolation(FRAME_SIZE_ERROR, "SETTINGS length is not a multiple of 6")
            self._apply_settings(data, start, stop)
        elif frame_type == PING:
            if sid:
                raise ProtocolViolation(PROTOCOL_ERROR, "PING on a stream")
            if length != 8:
                raise ProtocolViolation(FRAME_SIZE_ERROR, "PING is not 8 bytes")
            opaque = data[start:stop]
            if flags & FLAG_ACK:
                waiter = self._pings.pop(opaque, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            else:
                self._out += ping_frame(opaque, ack=True)
        elif frame_type == RST_STREAM:
            if length != 4:
                raise ProtocolViolation(FRAME_SIZE_ERROR, "RST_STREAM is not 4 bytes")
            if not sid:
                raise ProtocolViolation(PROTOCOL_ERROR, "RST_STREAM on stream 0")
            self._stream_reset(sid, unpack_u32(data, start))
        elif frame_type == GOAWAY:
            if sid:
                raise ProtocolViolation(PROTOCOL_ERROR, "GOAWAY on a stream")
            if length < 8:
                raise ProtocolViolation(FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes")
            self._goaway(unpack_u32(data, start) & 0x7FFFFFFF)
        elif frame_type == PUSH_PROMISE:
            raise ProtocolViolation(PROTOCOL_ERROR, "PUSH_PROMISE although push is disabled")
        elif frame_type == PRIORITY and not sid:
            raise ProtocolViolation(PROTOCOL_ERROR, "PRIORITY on stream 0")
        # Unknown frame types are ignored (RFC 9113 §4.1).

    def _apply_settings(self, data: bytes, start: int, stop: int) -> None:
        entries = [unpack_setting(data, offset) for offset in range(start, stop, 6)]
        for key, value in entries:  # validate everything before acknowledging anything
            if key == SETTINGS_INITIAL_WINDOW_SIZE and value > MAX_WINDOW_SIZE:
                raise ProtocolViolation(FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE above 2^31-1")
            if key == SETTINGS_MAX_FRAME_SIZE and not DEFAULT_MAX_FRAME_SIZE <= value <= MAX_MAX_FRAME_SIZE:
                raise ProtocolViolation(PROTOCOL_ERROR, f"MAX_FRAME_SIZE {value} out of range")
            if key == SETTINGS_ENABLE_PUSH and value:
                raise ProtocolViolation(PROTOCOL_ERROR, "a server may not enable push")
        # The ACK goes out ahead of anything the new values let us send: the server holds us to
        # its old values until it reads the ACK.
        self._out += SETTINGS_ACK_FRAME
        delta = 0
        raised = False
        for key, value in entries:
            if key == SETTINGS_MAX_CONCURRENT_STREAMS:
                raised = value > self._peer_max_streams
                self._peer_max_streams = value
            elif key == SETTINGS_INITIAL_WINDOW_SIZE:
                delta += value - self._peer_initial_window
                self._peer_initial_window = value
            elif key == SETTINGS_MAX_FRAME_SIZE:
                self._peer_max_frame = value
            elif key == SETTINGS_MAX_HEADER_LIST_SIZE:
                self.peer_max_header_list_size = value
            # HEADER_TABLE_SIZE sizes the server's decoder table, which our encoder never fills.
        if not self._draining:
            self.open_limit = min(self._max_in_flight, self._peer_max_streams)
        if delta:
            self._shift_stream_windows(delta)
        if not self._settings_seen:
            self._settings_seen = True
            if not self.ready.done():
                self.ready.set_result(None)
        elif raised and self._owner_pending and not self._draining:
            self._owner.pump()

    def _shift_stream_windows(self, delta: int) -> None:
        # Only streams still sending a body care about their send window.
        for upload in self._uploads.values():
            upload.window += delta
            if upload.window > MAX_WINDOW_SIZE:
                raise ProtocolViolation(FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE change overflows a stream window")
            if upload.window > 0 and not upload.queued:
                upload.queued = True
                self._blocked.append(upload)
        if delta > 0 and self._blocked:
            self._send_uploads()

    def _stream_window_update(self, sid: int, increment: int) -> None:
        upload = self._uploads.get(sid)
        if upload is None:
            if self._is_idle(sid):
                raise ProtocolViolation(PROTOCOL_ERROR, f"WINDOW_UPDATE on idle stream {sid}")
            return  # the body is fully sent or the stream is gone: nothing waits for credit
        exchange = upload.exchange
        if not increment or upload.window + increment > MAX_WINDOW_SIZE:
            code = PROTOCOL_ERROR if not increment else FLOW_CONTROL_ERROR
            self._reset_stream(sid, exchange, code, StreamReset(code, f"invalid stream WINDOW_UPDATE ({increment})"))
            return
        upload.window += increment
        if upload.window > 0 and not upload.queued:
            upload.queued = True
            self._blocked.append(upload)
        if self._blocked:
            self._send_uploads()

    def _stream_reset(self, sid: int, error_code: int) -> None:
        exchange = self.streams.pop(sid, None)
        if exchange is None:
            if self._is_idle(sid):
                raise ProtocolViolation(PROTOCOL_ERROR, f"RST_STREAM on idle stream {sid}")
            return
        self._drop_upload(sid)
        if error_code == REFUSED_STREAM:
            # Not processed (RFC 9113 §8.7): safe to send again.
            self._owner.retry([exchange])
        elif not exchange.future.done():
            reason = f"stream reset by the server: {error_name(error_code)}"
            exchange.future.set_exception(StreamReset(error_code, reason))
        self._stream_closed()

    def _goaway(self, last_sid: int) -> None:
        unprocessed = [exchange for sid, exchange in self.streams.items() if sid > last_sid]
        for exchange in unprocessed:
            del self.streams[exchange.stream_id]
            self._drop_upload(exchange.stream_id)
        self._retire()
        if unprocessed:
            self._owner.retry(unprocessed)
        if not self.streams:
            self._shutdown()
