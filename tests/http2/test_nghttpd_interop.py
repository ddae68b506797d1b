"""Interoperability with an independent HTTP/2 implementation: nghttp2's nghttpd server.

nghttpd comes from Debian's nghttp2-server package (`make test` installs it). Without it these
tests skip, saying so.
"""

import asyncio
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from push_core.http2 import Http2Client
from tests.http2.certificates import LoopbackPki

FILE_SIZES = {"empty": 0, "one": 1, "small": 1_000, "frame": 16_384, "medium": 100_000, "large": 2 << 20}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nghttpd exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nghttpd did not start listening")


@pytest.fixture(scope="module")
def htdocs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Files nghttpd serves, by path."""
    directory = tmp_path_factory.mktemp("htdocs")
    rng = random.Random(7)
    files = {}
    for name, size in FILE_SIZES.items():
        content = rng.randbytes(size)
        (directory / name).write_bytes(content)
        files[f"/{name}"] = content
    (directory / ".root").write_text(str(directory))
    return files


def _htdocs_directory(htdocs: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(next(tmp_path_factory.getbasetemp().glob("htdocs*/.root")).read_text())


def _nghttpd(pki: LoopbackPki, directory: Path, options: list[str]) -> Iterator[str]:
    binary = shutil.which("nghttpd") or shutil.which("nghttpd", path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        pytest.skip("nghttpd is not installed (Debian: apt-get install -y nghttp2-server)")
    port = _free_port()
    command = [binary, "-a", "127.0.0.1", "-d", str(directory), "--echo-upload", *options]
    process = subprocess.Popen(
        [*command, str(port), str(pki.server_key), str(pki.server_cert)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process)
        yield f"https://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=5)


@pytest.fixture(scope="module")
def plain_nghttpd(
    pki: LoopbackPki, htdocs: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """nghttpd with its defaults (100 concurrent streams, 64 KiB windows)."""
    yield from _nghttpd(pki, _htdocs_directory(htdocs, tmp_path_factory), [])


@pytest.fixture(scope="module")
def demanding_nghttpd(
    pki: LoopbackPki, htdocs: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """nghttpd padding every frame, with 1 KiB stream and 16 KiB connection windows, 7 concurrent
    streams, trailers on every body, and a decoder table of 0 (our blocks must say so)."""
    options = ["-b", "17", "-w", "10", "-W", "14", "-m", "7", "--trailer", "x-interop: yes", "-c", "0"]
    yield from _nghttpd(pki, _htdocs_directory(htdocs, tmp_path_factory), options)


async def _get_every_file(origin: str, pki: LoopbackPki, htdocs: dict[str, bytes], rounds: int) -> None:
    client = Http2Client(origin, ssl_context=pki.client_context())
    get = client.template("GET", [("accept", "*/*")])
    paths = list(htdocs) * rounds

    responses = await asyncio.gather(*(client.send(get, path) for path in paths))

    assert [response.status for response in responses] == [200] * len(paths)
    assert [response.body for response in responses] == [htdocs[path] for path in paths]
    await client.close()


async def _post_and_get_echoes(origin: str, pki: LoopbackPki, count: int) -> list[dict[str, str]]:
    client = Http2Client(origin, ssl_context=pki.client_context())
    post = client.template("POST", [("content-type", "application/octet-stream")])
    rng = random.Random(11)
    bodies = [rng.randbytes(rng.choice([1, 200, 4_096, 70_000])) for _ in range(count)]

    responses = await asyncio.gather(*(client.send(post, "/echo", body=body) for body in bodies))

    assert [response.body for response in responses] == bodies
    await client.close()
    return [response.headers for response in responses]


async def test_many_concurrent_gets_return_every_file_intact(
    plain_nghttpd: str, pki: LoopbackPki, htdocs: dict[str, bytes]
) -> None:
    await _get_every_file(plain_nghttpd, pki, htdocs, rounds=40)


async def test_posted_bodies_come_back_intact(plain_nghttpd: str, pki: LoopbackPki) -> None:
    await _post_and_get_echoes(plain_nghttpd, pki, count=200)


async def test_a_missing_file_is_a_404_and_the_connection_carries_on(plain_nghttpd: str, pki: LoopbackPki) -> None:
    client = Http2Client(plain_nghttpd, ssl_context=pki.client_context())
    get = client.template("GET")

    missing = await client.send(get, "/no-such-file")
    found = await client.send(get, "/one")

    assert (missing.status, found.status) == (404, 200)
    await client.close()


async def test_gets_survive_padding_tiny_windows_few_streams_and_trailers(
    demanding_nghttpd: str, pki: LoopbackPki, htdocs: dict[str, bytes]
) -> None:
    await _get_every_file(demanding_nghttpd, pki, htdocs, rounds=3)


async def test_posts_survive_padding_tiny_windows_few_streams_and_trailers(
    demanding_nghttpd: str, pki: LoopbackPki
) -> None:
    headers = await _post_and_get_echoes(demanding_nghttpd, pki, count=40)

    assert all(fields.get("x-interop") == "yes" for fields in headers)
