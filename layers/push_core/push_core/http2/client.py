"""Http2Client: one origin, one connection at a time, many concurrent streams, requests queued FIFO.

The client owns the connection's lifecycle: it connects lazily, opens a new connection when the
current one drains (GOAWAY, stream ids exhausted) or is lost, sends again the requests the server
did not process, and enforces per-request timeouts with a single timer.
"""

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from math import inf
from typing import Final
from urllib.parse import urlsplit

from push_core.http2.connection import Exchange, Http2Connection
from push_core.http2.errors import ConnectError, RequestTimeout, StreamReset
from push_core.http2.frames import MAX_STREAM_ID, REFUSED_STREAM
from push_core.http2.request_headers import RequestTemplate
from push_core.http2.response import Response

# How often a request the server refused (GOAWAY past its stream, RST_STREAM REFUSED_STREAM) is
# sent again before the caller hears about it.
MAX_ATTEMPTS: Final = 5
# How long close() lets in-flight requests finish (never longer than the request timeout).
CLOSE_GRACE_S: Final = 1.0
# asyncio waits up to 30 s for the server's TLS close_notify by default; a push sender should not.
_SSL_SHUTDOWN_TIMEOUT_S: Final = 2.0

# (host, port) -> the addresses to connect to, in order; may raise OSError or ConnectError to refuse.
AddressResolver = Callable[[str, int], Awaitable[Sequence[str]]]


class Http2Client:
    """An HTTP/2 client for one https origin, built for many small concurrent requests.

    One connection at a time (opened on first use, replaced when it drains or is lost), at most
    min(max_in_flight, the server's SETTINGS_MAX_CONCURRENT_STREAMS) streams open, the rest
    queued first in, first out.

    `origin` is "https://host[:port]". `ssl_context` may carry a client certificate (APNs
    certificate authentication) and extra CAs; the client sets its ALPN to h2 and its minimum
    version to TLS 1.2, and never turns verification off. `request_timeout` runs from `send`
    to the complete response, time spent queued included. `max_stream_id` caps the stream ids
    used on one connection before moving to a new one (small values are for tests). `resolve`, if
    given, is awaited once per new connection for the addresses to connect to (say, resolved once and
    checked against an outbound policy); TLS still names and verifies the origin's host.

    Use it from one event loop at a time. A new loop (asyncio.run per Lambda invocation) gets a
    new connection; keeping one loop per process keeps the connection warm between invocations.
    """

    def __init__(
        self,
        origin: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_in_flight: int = 1000,
        request_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_stream_id: int = MAX_STREAM_ID,
        resolve: AddressResolver | None = None,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"origin must look like https://host[:port], not {origin!r}")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"origin must look like https://host[:port], not {origin!r}")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if not 1 <= max_stream_id <= MAX_STREAM_ID:
            raise ValueError(f"max_stream_id must be between 1 and {MAX_STREAM_ID}")
        if request_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.origin = origin
        self._host = parts.hostname
        self._port = parts.port or 443
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.authority = host if self._port == 443 else f"{host}:{self._port}"
        context = ssl_context if ssl_context is not None else ssl.create_default_context()
        context.set_alpn_protocols(["h2"])
        if context.minimum_version < ssl.TLSVersion.TLSv1_2:
            context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 9113 §9.2
        self._ssl_context = context
        self._max_in_flight = max_in_flight
        self._request_timeout = request_timeout
        self._connect_timeout = connect_timeout
        self._max_stream_id = max_stream_id
        self._resolve = resolve
        # Requests waiting for a stream, oldest first. Connections hold this deque: never rebind it.
        self.pending: deque[Exchange] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: Http2Connection | None = None
        self._connections: set[Http2Connection] = set()
        self._connecting: asyncio.Task[Http2Connection | None] | None = None
        self._connect_error: ConnectError | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def template(self, method: str, headers: Sequence[tuple[str, str]] = ()) -> RequestTemplate:
        """Precompile a method and static fields for requests to this client's origin."""
        return RequestTemplate(method, self.authority, headers)

    async def send(
        self,
        template: RequestTemplate,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        """Send one request and return its response.

        Raises ConnectError (not sent), ConnectionLost (may have been processed), StreamReset,
        RequestTimeout, and ValueError for a path or field HTTP/2 forbids.
        """
        exchange = self._enqueue(template, path, headers, body)
        try:
            return await exchange.future
        except asyncio.CancelledError:
            self._forget(exchange)
            raise

    def submit(
        self,
        template: RequestTemplate,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> "asyncio.Future[Response]":
        """Queue one request and return the future of its response, without a coroutine or Task per request.

        For senders of thousands of requests: `await asyncio.gather(*futures, return_exceptions=True)`
        costs a callback per request where a Task per request costs several microseconds. The future
        fails with the same errors send() raises. A cancelled future keeps its stream until the
        response or the request timeout (send() frees it at once). Must be called from the running
        event loop; a path or field HTTP/2 forbids raises ValueError at once.
        """
        return self._enqueue(template, path, headers, body).future

    def _enqueue(
        self, template: RequestTemplate, path: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> Exchange:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        if self._closed:
            raise ConnectError("the client is closed")
        exchange = Exchange(
            loop.create_future(),
            template.header_block(path, headers, len(body)),
            body,
            loop.time() + self._request_timeout,
        )
        conn = self._conn
        if conn is not None and not self.pending and len(conn.streams) < conn.open_limit:
            conn.open(exchange)
        else:
            self.pending.append(exchange)
            self.pump()
        if self._timer is None:
            self._timer = loop.call_at(exchange.deadline, self._expire)
        return exchange

    async def ping(self) -> float:
        """Round-trip time of a PING in seconds, connecting first if needed (a health check after idle)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        if self._closed:
            raise ConnectError("the client is closed")
        conn = self._conn
        if conn is None:
            if self._connecting is None:
                self._connecting = loop.create_task(self._connect())
            conn = await asyncio.shield(self._connecting)
            if conn is None:
                raise ConnectError(f"could not connect to {self.origin}") from self._connect_error
        started = loop.time()
        try:
            async with asyncio.timeout(self._request_timeout):
                await conn.ping()
        except TimeoutError as exc:
            raise RequestTimeout(f"no PING ACK within {self._request_timeout} s") from exc
        return loop.time() - started

    async def close(self) -> None:
        """Close gracefully: fail queued requests (ConnectError, never sent), let in-flight ones
        finish for a short grace period, fail what is left (ConnectionLost), then GOAWAY and close."""
        if self._closed:
            return
        self._closed = True
        if self._loop is None:
            return
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        self._fail_pending(ConnectError("the client closed before the request was sent"))
        connections = list(self._connections)
        for conn in connections:
            conn.close_gracefully()
        if connections:
            await asyncio.wait([conn.lost for conn in connections], timeout=min(CLOSE_GRACE_S, self._request_timeout))
        for conn in connections:
            if not conn.lost.done():
                conn.abort()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- the connection's owner (see connection.ConnectionOwner) -----------------------------

    def pump(self) -> None:
        """Open streams for queued requests while the connection has room; connect when there is none."""
        conn = self._conn
        pending = self.pending
        if conn is None:
            if pending and self._connecting is None and not self._closed and self._loop is not None:
                self._connecting = self._loop.create_task(self._connect())
            return
        streams = conn.streams
        while pending and len(streams) < conn.open_limit:
            conn.open(pending.popleft())

    def retired(self, connection: Http2Connection) -> None:
        """The connection takes no new streams: the next request goes to a new one."""
        if self._conn is connection:
            self._conn = None
            if self.pending:
                self.pump()

    def retry(self, exchanges: list[Exchange]) -> None:
        """Queue requests the server did not process ahead of everything else, in their order."""
        again: list[Exchange] = []
        for exchange in exchanges:
            if exchange.future.done():
                continue
            exchange.rewind()
            if exchange.attempts >= MAX_ATTEMPTS:
                exchange.future.set_exception(
                    StreamReset(REFUSED_STREAM, f"the server refused the request {exchange.attempts} times")
                )
            else:
                again.append(exchange)
        if self._closed:
            for exchange in again:
                exchange.future.set_exception(ConnectError("the client closed before the request was sent"))
            return
        self.pending.extendleft(reversed(again))
        self.pump()

    def closed(self, connection: Http2Connection) -> None:
        """Forget a connection whose transport is gone."""
        self._connections.discard(connection)
        self.retired(connection)

    # --- internals --------------------------------------------------------------------------

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        # Transports belong to the loop that made them; on a new loop (asyncio.run per Lambda
        # invocation), start afresh. A closed loop can no longer close its sockets, so shut them
        # down to tell the server now; the descriptors go when the garbage collector takes them.
        for conn in self._connections:
            conn.abandon()
        self._loop = loop
        self._conn = None
        self._connections = set()
        self._connecting = None
        self._timer = None
        self.pending.clear()

    async def _connect(self) -> Http2Connection | None:
        try:
            conn = await self._open_connection()
        except ConnectError as exc:
            self._connecting = None
            self._connect_error = exc
            self._fail_pending(exc)
            return None
        self._connecting = None
        if self._closed:
            conn.close_gracefully()
            return None
        self._conn = conn
        self.pump()
        return conn

    async def _open_connection(self) -> Http2Connection:
        loop = asyncio.get_running_loop()
        conn = Http2Connection(self, loop, max_in_flight=self._max_in_flight, max_stream_id=self._max_stream_id)
        self._connections.add(conn)
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._resolve is None:
                    await self._create_connection(loop, conn, self._host)
                else:
                    await self._connect_first(loop, conn, await self._resolve(self._host, self._port))
                await conn.ready
            if conn.draining:
                raise ConnectError(f"{self.origin} sent GOAWAY as the connection opened")
        except ConnectError:
            self._connections.discard(conn)
            conn.drop()
            raise
        except TimeoutError as exc:
            self._connections.discard(conn)
            conn.ready.cancel()
            conn.drop()
            raise ConnectError(f"connecting to {self.origin} took longer than {self._connect_timeout} s") from exc
        except asyncio.CancelledError:  # close() while connecting
            self._connections.discard(conn)
            conn.ready.cancel()
            conn.drop()
            raise
        except OSError as exc:  # refused, unreachable, TLS failures (ssl.SSLError is an OSError)
            self._connections.discard(conn)
            conn.drop()
            raise ConnectError(f"could not connect to {self.origin}: {exc}") from exc
        return conn

    async def _create_connection(self, loop: asyncio.AbstractEventLoop, conn: Http2Connection, address: str) -> None:
        await loop.create_connection(
            lambda: conn,
            address,
            self._port,
            ssl=self._ssl_context,
            server_hostname=self._host,
            ssl_handshake_timeout=self._connect_timeout,
            ssl_shutdown_timeout=_SSL_SHUTDOWN_TIMEOUT_S,
        )

    async def _connect_first(
        self, loop: asyncio.AbstractEventLoop, conn: Http2Connection, addresses: Sequence[str]
    ) -> None:
        # In order, as create_connection tries a name's addresses; conn only sees the one that connects.
        error: Exception = ConnectError(f"no address to connect to for {self.origin}")
        for address in addresses:
            try:
                await self._create_connection(loop, conn, address)
            except OSError as exc:
                error = exc
            else:
                return
        raise error

    def _fail_pending(self, cause: Exception) -> None:
        pending = self.pending
        while pending:
            exchange = pending.popleft()
            if not exchange.future.done():
                error = ConnectError(str(cause))
                error.__cause__ = cause
                exchange.future.set_exception(error)

    def _forget(self, exchange: Exchange) -> None:
        # The caller was cancelled: free the request's queue place or stream.
        try:
            self.pending.remove(exchange)
        except ValueError:
            for conn in self._connections:
                if conn.cancel(exchange):
                    break

    def _expire(self) -> None:
        """Fail requests past their deadline with RequestTimeout, then re-arm for the next one.

        Requests are queued and opened in send order, so deadlines rise along the queue and along
        each connection's streams: only the fronts need looking at.
        """
        loop = self._loop
        self._timer = None
        if loop is None:
            return
        now = loop.time()
        following = inf
        pending = self.pending
        while pending and pending[0].deadline <= now:
            exchange = pending.popleft()
            if not exchange.future.done():
                exchange.future.set_exception(RequestTimeout(f"no response within {self._request_timeout} s"))
        if pending:
            following = pending[0].deadline
        for conn in list(self._connections):
            expired: list[Exchange] = []
            for exchange in conn.streams.values():
                if exchange.deadline > now:
                    following = min(following, exchange.deadline)
                    break
                expired.append(exchange)
            for exchange in expired:
                if not exchange.future.done():
                    exchange.future.set_exception(RequestTimeout(f"no response within {self._request_timeout} s"))
                conn.cancel(exchange)
        # Streams opened by the cancellations above have later deadlines than `following`.
        if following < inf:
            self._timer = loop.call_at(following, self._expire)
