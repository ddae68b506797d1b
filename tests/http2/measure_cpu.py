"""Client CPU per request of push_core.http2 (a micro-benchmark to run by hand, not a test).

    .venv/bin/python tests/http2/measure_cpu.py [--requests 20000] [--in-flight 1000]

The h2 test server runs in a separate process, so only the client's CPU is counted
(time.process_time of this process). Each request is a POST with a ~200-byte JSON body on one
TLS connection. Two response shapes: "bare" (:status 200 only) and "apns" (200 plus a fresh
apns-id, which the server's HPACK encoder indexes and Huffman-codes, as APNs does). Two ways of
driving: "workers" (in-flight coroutines each awaiting sends in turn) and "gather" (one
asyncio.gather over every request, which adds a Task per request).
"""

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[2] / "layers/push_core")]

from push_core.http2 import Http2Client, RequestTemplate  # noqa: E402
from tests.http2.certificates import LoopbackPki, make_pki  # noqa: E402

_BODY = json.dumps({"aps": {"alert": {"title": "Hello", "body": "x" * 120}, "badge": 1}}).encode()


async def _workers(client: Http2Client, post: RequestTemplate, requests: int, in_flight: int) -> None:
    async def worker(count: int) -> None:
        for _ in range(count):
            response = await client.send(post, "/3/device/" + "ab" * 32, body=_BODY)
            assert response.status == 200

    share, extra = divmod(requests, in_flight)
    await asyncio.gather(*(worker(share + (i < extra)) for i in range(in_flight)))


async def _gather(client: Http2Client, post: RequestTemplate, requests: int, in_flight: int) -> None:
    responses = await asyncio.gather(
        *(client.send(post, "/3/device/" + "ab" * 32, body=_BODY) for _ in range(requests))
    )
    assert all(response.status == 200 for response in responses)


async def _measure(origin: str, pki: LoopbackPki, mode: str, requests: int, in_flight: int) -> float:
    client = Http2Client(origin, ssl_context=pki.client_context(), max_in_flight=in_flight)
    post = client.template("POST", [("apns-topic", "com.example.app"), ("apns-push-type", "alert")])
    drive = _workers if mode == "workers" else _gather
    await drive(client, post, in_flight, in_flight)  # connect and warm up
    started = time.process_time()
    await drive(client, post, requests, in_flight)
    spent = time.process_time() - started
    await client.close()
    return spent / requests * 1e6


def main() -> None:
    """Print client CPU microseconds per request for each response shape and driving mode."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    print(f"{sys.implementation.name} {sys.version.split()[0]}, {len(_BODY)}-byte bodies, {args.in_flight} in flight")
    with tempfile.TemporaryDirectory() as directory:
        pki = make_pki(Path(directory))
        for shape in ("bare", "apns"):
            server = subprocess.Popen(
                [
                    *(sys.executable, "-m", "tests.http2.h2_server"),
                    *("--cert", str(pki.server_cert), "--key", str(pki.server_key), "--shape", shape),
                ],
                stdout=subprocess.PIPE,
                cwd=Path(__file__).resolve().parents[2],
                text=True,
            )
            try:
                assert server.stdout is not None
                origin = f"https://127.0.0.1:{server.stdout.readline().strip()}"
                for mode in ("workers", "gather"):
                    best = min(
                        asyncio.run(_measure(origin, pki, mode, args.requests, args.in_flight))
                        for _ in range(args.rounds)
                    )
                    print(f"response {shape:5} driven by {mode:7}: {best:6.1f} µs client CPU per request")
            finally:
                server.terminate()
                server.wait()


if __name__ == "__main__":
    main()
