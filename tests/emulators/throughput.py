"""Emulator throughput: `python -m tests.emulators.throughput [--count N]`.

Starts `python -m dev.emulators` as a subprocess and drives it from this process, so the two share no GIL, then
reports wall-clock requests/s and requests per CPU-second of the emulator process (its capacity on one core,
whatever the client costs). APNs: HTTP/2, one connection, 1,000 concurrent streams. FCM: HTTP/1.1, one
keep-alive connection, 1,000 requests pipelined at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import h11
import hpack
import jwt

from tests.emulators.h2_client import H2Client

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _context(ca_path: str, alpn: tuple[str, ...]) -> Any:
    import ssl

    context = ssl.create_default_context(cafile=ca_path)
    context.set_alpn_protocols(list(alpn))
    return context


def _apns(line: dict[str, Any], pid: int, count: int) -> tuple[float, float]:
    key = line["apns"]["key"]
    token = jwt.encode(
        {"iss": key["team_id"], "iat": int(time.time())},
        key["private_key_pem"],
        algorithm="ES256",
        headers={"kid": key["key_id"]},
    )
    url = urlsplit(line["apns"]["url"])
    headers = [
        ("authorization", f"bearer {token}"),
        ("apns-topic", key["topics"][0]),
        ("apns-push-type", "alert"),
        ("apns-priority", "10"),
    ]
    body = json.dumps({"aps": {"alert": {"title": "Hello", "body": "from the benchmark"}}}).encode()
    client = H2Client(url.hostname or "127.0.0.1", url.port or 443, _context(line["ca_path"], ("h2",)))
    batch = [("POST", "/3/device/" + "ab" * 32, headers, body)] * 1000
    client.requests(batch[:100])  # warm up
    cpu, wall = _cpu_seconds(pid), time.perf_counter()
    for _ in range(count // 1000):
        answers = client.requests(batch)
        assert all(answer.status == 200 for answer in answers), {answer.status for answer in answers}
    wall, cpu = time.perf_counter() - wall, _cpu_seconds(pid) - cpu
    client.close()
    return count / wall, count / cpu


def _apns_raw_frames(line: dict[str, Any], pid: int, count: int) -> tuple[float, float]:
    """APNs again, with a client that costs almost nothing: pre-built frames, responses counted, not decoded.

    Headers are HPACK literals that are never indexed, so every request's header block is the same bytes
    (only the stream id in the frame header changes) and the server's decoder table never changes.
    """
    key = line["apns"]["key"]
    token = jwt.encode(
        {"iss": key["team_id"], "iat": int(time.time())},
        key["private_key_pem"],
        algorithm="ES256",
        headers={"kid": key["key_id"]},
    )
    url = urlsplit(line["apns"]["url"])
    client = H2Client(url.hostname or "127.0.0.1", url.port or 443, _context(line["ca_path"], ("h2",)))
    # The h2 client did the preface and the SETTINGS exchange; from here on the socket is driven by hand.
    client.request("GET", "/_emulator/health")
    headers = [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", client.authority),
        (":path", "/3/device/" + "ab" * 32),
        ("authorization", f"bearer {token}"),
        ("apns-topic", key["topics"][0]),
        ("apns-push-type", "alert"),
        ("apns-priority", "10"),
    ]
    block = hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(k, v) for k, v in headers], huffman=False)
    body = json.dumps({"aps": {"alert": {"title": "Hello", "body": "from the benchmark"}}}).encode()
    headers_frame = struct.pack(">I", len(block))[1:] + bytes([0x1, 0x4])  # HEADERS, END_HEADERS
    data_frame = struct.pack(">I", len(body))[1:] + bytes([0x0, 0x1])  # DATA, END_STREAM
    sock = client.sock
    next_stream = max(client.stream_ids) + 2
    received = b""

    def run(batch: int) -> None:
        nonlocal next_stream, received
        chunks = []
        for stream_id in range(next_stream, next_stream + 2 * batch, 2):
            sid = struct.pack(">I", stream_id)
            chunks += [headers_frame, sid, block, data_frame, sid, body]
        next_stream += 2 * batch
        sock.sendall(b"".join(chunks))
        answered = 0
        while answered < batch:
            received += sock.recv(262144)
            offset = 0
            while len(received) - offset >= 9:
                length = int.from_bytes(received[offset : offset + 3], "big")
                if len(received) - offset < 9 + length:
                    break
                frame_type, flags = received[offset + 3], received[offset + 4]
                if frame_type == 0x1 and flags & 0x1:  # a response's HEADERS with END_STREAM
                    # 0x88 is HPACK's indexed ":status: 200"; anything else is a failure.
                    assert received[offset + 9] == 0x88, received[offset + 9 : offset + 9 + length]
                    answered += 1
                offset += 9 + length
            received = received[offset:]

    run(100)  # warm up
    cpu, wall = _cpu_seconds(pid), time.perf_counter()
    for _ in range(count // 1000):
        run(1000)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds(pid) - cpu
    sock.close()
    return count / wall, count / cpu


def _fcm_http11(line: dict[str, Any], pid: int, count: int) -> tuple[float, float]:
    import requests

    account = line["fcm"]["service_account"]
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": account["client_email"],
            "aud": account["token_uri"],
            "scope": "https://www.googleapis.com/auth/firebase.messaging",
            "iat": now,
            "exp": now + 3600,
        },
        account["private_key"],
        algorithm="RS256",
        headers={"kid": account["private_key_id"]},
    )
    session = requests.Session()
    session.trust_env = False
    answer = session.post(
        account["token_uri"],
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
        verify=line["ca_path"],
        timeout=10,
    )
    access_token = answer.json()["access_token"]
    url = urlsplit(line["fcm"]["url"])
    host, port = url.hostname or "127.0.0.1", url.port or 443
    body = json.dumps({"message": {"token": "fcm-token-1", "data": {"k": "v"}}}).encode()
    path = f"/v1/projects/{account['project_id']}/messages:send"
    raw = (
        f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\nauthorization: Bearer {access_token}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    sock = _context(line["ca_path"], ("http/1.1",)).wrap_socket(
        socket.create_connection((host, port)), server_hostname=host
    )
    parser = h11.Connection(h11.CLIENT)

    def run(n: int) -> None:
        sock.sendall(raw * n)
        answered = 0
        while answered < n:
            # h11 parses responses only after it has seen a request; the raw bytes already went out.
            parser.send(h11.Request(method="POST", target=path, headers=[("host", host)]))
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    parser.receive_data(sock.recv(65536))
                    continue
                if isinstance(event, h11.Response):
                    assert event.status_code == 200, event.status_code
                if isinstance(event, h11.EndOfMessage):
                    break
            parser.send(h11.EndOfMessage())
            parser.start_next_cycle()
            answered += 1

    run(100)  # warm up
    cpu, wall = _cpu_seconds(pid), time.perf_counter()
    for _ in range(count // 1000):
        run(1000)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds(pid) - cpu
    sock.close()
    return count / wall, count / cpu


def main() -> int:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    process = subprocess.Popen([sys.executable, "-m", "dev.emulators"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = json.loads(process.stdout.readline())
        for name, measure in (
            ("APNs h2, h2-library client", _apns),
            ("APNs h2, raw-frame client", _apns_raw_frames),
            ("FCM http/1.1, pipelined", _fcm_http11),
        ):
            wall_rate, cpu_rate = measure(line, process.pid, args.count)
            print(f"{name}: {wall_rate:,.0f} req/s wall, {cpu_rate:,.0f} req per emulator CPU-second")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
