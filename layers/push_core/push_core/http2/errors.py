"""The exceptions `Http2Client.send` raises, one per thing a caller decides differently about.

Whether the server may have processed the request is the distinction that matters for push:
ConnectError means it was never sent; ConnectionLost means it may have been delivered.
"""

from push_core.http2.frames import error_name


class Http2Error(Exception):
    """Base of every error the HTTP/2 client raises."""


class ConnectError(Http2Error):
    """No usable connection: TCP, TLS (including an untrusted certificate) or ALPN failed, or timed out.

    The request was not sent. Also raised for sends on a closed client.
    """


class ConnectionLost(Http2Error):
    """The connection dropped while the request was in flight; the server may have processed it."""


class StreamReset(Http2Error):
    """The request's stream was reset: by the server's RST_STREAM, or by the client because the
    server broke the protocol on that stream only. `error_code` is the HTTP/2 error code."""

    def __init__(self, error_code: int, message: str | None = None) -> None:
        self.error_code = error_code
        super().__init__(message or f"stream reset: {error_name(error_code)}")


class RequestTimeout(Http2Error):
    """No complete response within the request timeout; the stream was cancelled (RST_STREAM CANCEL)."""


class ProtocolViolation(Http2Error):
    """The server broke HTTP/2 on the connection; the client ends the connection with `error_code`.

    Not raised to callers directly: it is the cause (`__cause__`) of their ConnectionLost.
    """

    def __init__(self, error_code: int, message: str) -> None:
        self.error_code = error_code
        super().__init__(f"{error_name(error_code)}: {message}")
