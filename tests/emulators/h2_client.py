"""A small blocking HTTP/2 client over an ssl socket (h2 in client mode), independent of the emulators' server code.

It sends many requests concurrently on one connection, honours the server's flow-control windows for request
bodies, and can advertise a small receive window of its own (acknowledging data as it reads, or not at all).
"""

from __future__ import annotations

import json
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings


@dataclass
class H2Response:
    """One answered stream."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    reset_code: int | None = None

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass
class _Stream:
    body: memoryview
    headers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    done: bool = False
    reset_code: int | None = None


Request = tuple[str, str, list[tuple[str, str]], bytes]


class H2Client:
    """One HTTP/2 connection to https://host:port."""

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        *,
        initial_window: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = context.wrap_socket(raw, server_hostname=host)
        self.authority = f"{host}:{port}"
        if self.sock.selected_alpn_protocol() != "h2":
            raise ConnectionError(f"ALPN chose {self.sock.selected_alpn_protocol()!r}, not h2")
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        if initial_window is not None:
            self.conn.local_settings = h2.settings.Settings(
                client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window}
            )
        self.conn.initiate_connection()
        self.max_frame_seen = 0
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.remote_settings: dict[int, int] = {}
        self.completed: list[int] = []
        self.stream_ids: list[int] = []
        self._flush()
        # Read the server's preface so its settings (MAX_CONCURRENT_STREAMS, windows) are known.
        while not self.remote_settings:
            self._read_once({})

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(
        self, method: str, path: str, headers: list[tuple[str, str]] | None = None, body: bytes = b""
    ) -> H2Response:
        """One request, one response."""
        return self.requests([(method, path, headers or [], body)])[0]

    def requests(self, batch: list[Request]) -> list[H2Response]:
        """Open one stream per request at once, then read until every stream is answered or reset."""
        streams: dict[int, _Stream] = {}
        order: list[int] = []
        self.stream_ids = order
        for method, path, headers, body in batch:
            stream_id = self.conn.get_next_available_stream_id()
            pseudo = [(":method", method), (":scheme", "https"), (":authority", self.authority), (":path", path)]
            self.conn.send_headers(stream_id, pseudo + headers, end_stream=not body)
            streams[stream_id] = _Stream(memoryview(body))
            order.append(stream_id)
        self._pump_all(streams)
        self._flush()
        while not all(stream.done for stream in streams.values()):
            self._read_once(streams)
        return [
            H2Response(
                int(streams[s].headers.get(":status", "0")),
                streams[s].headers,
                bytes(streams[s].data),
                streams[s].reset_code,
            )
            for s in order
        ]

    def _pump_all(self, streams: dict[int, _Stream]) -> None:
        for stream_id, stream in streams.items():
            while stream.body:
                window = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk, stream.body = stream.body[:window], stream.body[window:]
                self.conn.send_data(stream_id, chunk.tobytes(), end_stream=not stream.body)

    def _read_once(self, streams: dict[int, _Stream]) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                streams[event.stream_id or 0].headers = {str(k): str(v) for k, v in event.headers or []}
            elif isinstance(event, h2.events.DataReceived):
                stream = streams[event.stream_id or 0]
                stream.data += event.data or b""
                self.max_frame_seen = max(self.max_frame_seen, len(event.data or b""))
                self.conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id or 0)
            elif isinstance(event, h2.events.StreamEnded):
                streams[event.stream_id or 0].done = True
                self.completed.append(event.stream_id or 0)
            elif isinstance(event, h2.events.StreamReset):
                if event.stream_id in streams:
                    streams[event.stream_id].done = True
                    streams[event.stream_id].reset_code = int(event.error_code or 0)
            elif isinstance(event, h2.events.WindowUpdated):
                self._pump_all(streams)
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                self.remote_settings.update({int(k): v.new_value for k, v in event.changed_settings.items()})
                self._pump_all(streams)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = event
        self._flush()

    def wait_for_goaway(self) -> h2.events.ConnectionTerminated:
        """Read until the server sends GOAWAY (or closes)."""
        while self.goaway is None:
            self._read_once({})
        return self.goaway

    def close(self) -> None:
        """Say goodbye and close the socket."""
        try:
            self.conn.close_connection()
            self._flush()
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
