"""pushlane's lean HTTP/2 client for the push hot path (APNs, FCM HTTP v1, Web Push).

Why our own: measured client CPU per request on one TLS connection is ~0.2 ms for aioapns and
0.12-0.18 ms for any client on the h2 library (its state machine alone ~0.10 ms); this client
does the same work in a fraction of that. It decodes response headers with its own HPACK decoder
(hpack_decoder.py: the server's dynamic table honoured, Huffman values decoded only when read; the
hpack package's pure-Python decoder cost more than the rest of a request) and encodes request
headers itself, statelessly, so that each template's block is built once.

    client = Http2Client("https://api.push.apple.com")
    post = client.template("POST", [("apns-topic", "com.example.app")])
    response = await client.send(post, f"/3/device/{token}", [("apns-id", id)], body=payload)
    futures = [client.submit(post, f"/3/device/{t}", (), payload) for t in tokens]  # thousands at once
"""

from push_core.http2.client import Http2Client
from push_core.http2.errors import ConnectError, ConnectionLost, Http2Error, RequestTimeout, StreamReset
from push_core.http2.request_headers import RequestTemplate
from push_core.http2.response import Response

__all__ = [
    "ConnectError",
    "ConnectionLost",
    "Http2Client",
    "Http2Error",
    "RequestTemplate",
    "RequestTimeout",
    "Response",
    "StreamReset",
]
