"""The environment factory: a zygote that imports the heavy libraries once, then forks execution environments.

A fresh worker (``dev.local_stack.environment_worker``) spends ~1.1 s and ~85 MB importing the same
third-party libraries every pushlane function uses: boto3/botocore, Powertools and pydantic,
cryptography, jwt, requests. The zygote is one process per stack, started the way a worker is
(``python -I``), never forked from the stack itself, whose moto threads a fork would copy with
their locks held. It imports those libraries, ``gc.freeze()``-s them (a collection in a child then
never writes to their pages, so copy-on-write keeps them shared), and forks an environment per
request. The child becomes what a fresh worker is: the function's own variables in place of the
zygote's, the function's folder as cwd, the runtime's sys.path (the worker prepends the function's
folder and layers), the stack's log pipe as stdout and its stderr, the worker's pipes, SIGINT
ignored; the handler is imported after the fork, so module state is its own. A socket the preload
opened and left unused (X-Ray's UDP emitter) is replaced by a fresh one at the same descriptor;
anything else left open (a file, a connected or bound socket) stops the zygote being used at all.

Besides the third-party libraries, the zygote imports every module of the layers all the stack's
functions share (push_core: ~14 MB copied and ~70 ms of each cold start otherwise), and parses the AWS
SDK's data into boto3's default session (~65 ms a cold start), as a SnapStart snapshot holds them.
Nothing of a function's own code is preloaded, and nothing runs beyond the imports, so a module's
state in an environment is what a fresh import would make. The environment variables the preload read
are recorded; a function that sets any of them differently, ships a module of a preloaded name
before the layer that has it, or lacks a preloaded layer, gets a plain subprocess instead, so nothing
a library or layer captured at import leaks into another function.

Reaping: the stack process becomes a child subreaper and every environment is double-forked, so it
is the stack's own child, waited and killed by pid as a ``Popen`` is, and outlives the zygote's
death (which would otherwise leave it to an init that, in containers, may never reap it).

Protocol, over a SOCK_SEQPACKET Unix socket pair, one JSON object a packet: the zygote first sends
what it preloaded; then each request ``{"cwd", "variables"}`` carries the worker's request and
response pipe ends, its stdout and its stderr (``socket.send_fds``), answered ``{"pid"}`` or
``{"error"}``. End of the socket ends the zygote. Linux only: elsewhere environments start as
plain subprocesses (macOS's system frameworks are not fork-safe either).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import logging
import os
import pkgutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from dev.local_stack import malloc_settings

logger = logging.getLogger(__name__)

# What layers/push_core imports (its requirements.txt, boto3 from the runtime, and aws_xray_sdk,
# which Powertools' Tracer imports: ~20 MB and ~130 ms an environment, as it builds an X-Ray client).
PRELOAD: tuple[str, ...] = (
    "boto3",
    "boto3.dynamodb.conditions",
    "botocore.client",
    "botocore.httpsession",
    "aws_lambda_powertools",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.event_handler.middlewares.openapi_validation",
    "aws_lambda_powertools.event_handler.openapi.params",
    "aws_lambda_powertools.event_handler.openapi.swagger_ui",
    "aws_lambda_powertools.logging.correlation_paths",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.utilities.typing",
    "pydantic",
    "cryptography.x509",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "cryptography.hazmat.primitives.ciphers.aead",
    "cryptography.hazmat.primitives.kdf.hkdf",
    "cryptography.hazmat.primitives.serialization",
    "jwt",
    "requests",
    "urllib3",
    "hpack",
    "wrapt",
    "aws_xray_sdk.core",
)
# The AWS SDK data a function's first clients parse (~65 ms of JSON a cold start, endpoints.json alone
# ~50 ms): parsed once into the zygote's default boto3 session, shared as a SnapStart snapshot shares it.
SDK_SERVICES: tuple[str, ...] = ("dynamodb", "sqs", "secretsmanager")
_SDK_DATA = ("endpoints", "partitions", "sdk-default-configuration", "_retry")
_SDK_SERVICE_DATA = ("service-2", "endpoint-rule-set-1")
READY_TIMEOUT_S = 60.0  # the preload takes ~1 s alone; two shared cores starting a stack need more
FORK_TIMEOUT_S = 10.0
MAX_FAILURES = 3  # zygotes in a row that died or could not fork before falling back for good

# Read by C code at start-up or on first use, where the recording of os.environ cannot see them.
_READ_BY_C = ("LANG", "LC_ALL", "LC_CTYPE", "OPENSSL_CONF", "OPENSSL_MODULES")
_MAX_MESSAGE = 1 << 20
_LAYER_ARGUMENT = "layer="  # a zygote argument naming a layer folder, not a module
_FDS = 4  # requests (read end), responses (write end), stdout, stderr
_PR_SET_CHILD_SUBREAPER = 36
# urllib's proxy lookup reads every variable to find these; recorded as reading just these.
_PROXY_LOOKUPS = frozenset({"getproxies_environment", "proxy_bypass_environment"})
_BOOTSTRAP = (
    "import gc; gc.disable(); "  # from the start, so the preload leaves no freed holes for children to copy
    "import sys; sys.path.insert(0, {root!r}); "
    "from dev.local_stack.environment_factory import serve; sys.path.remove({root!r}); "
    "sys.exit(serve(sys.argv[1:]))"
)


class ZygoteUnavailable(Exception):
    """This environment must start as a plain subprocess; the message says why."""


class _ZygoteFailed(Exception):
    """The zygote died, hung or could not fork: start another."""


def supported() -> bool:
    """Whether environments can be forked here (Linux: fork, and prctl for the subreaper)."""
    return sys.platform == "linux" and hasattr(os, "fork")


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(error)}")


class ForkedProcess:
    """An environment the zygote forked and this process adopted (its subreaper): polled, waited and
    killed by pid as ``subprocess.Popen`` does; an unreaped child's pid cannot be reused meanwhile."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._lock = threading.Lock()  # reaping and killing never interleave
        reaped, status = os.waitpid(pid, os.WNOHANG)  # ChildProcessError: not adopted
        if reaped:
            self.returncode = os.waitstatus_to_exitcode(status)

    def poll(self) -> int | None:
        """The exit status once the process ended (reaping it), else None."""
        with self._lock:
            if self.returncode is None:
                try:
                    reaped, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:  # reaped elsewhere: its status is lost, as Popen assumes
                    self.returncode = 0
                else:
                    if reaped:
                        self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end (polling: a blocking waitpid would hold the lock ``kill`` needs)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"environment {self.pid}", timeout or 0)
            time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, 0.02)
        return code

    def kill(self) -> None:
        """SIGKILL, unless already reaped."""
        with self._lock:
            if self.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)


class EnvironmentFactory:
    """The stack's side of the zygote: starts it (again, after it died), asks it for environments, stops it.

    ``environment`` is the zygote's own environment while it preloads: what the stack's functions have
    in common, so the variables a library reads at import agree with as many functions as possible.
    """

    def __init__(
        self,
        root: str,
        environment: Mapping[str, str],
        interpreter_options: Sequence[str] = (),
        *,
        preload: Sequence[str] = PRELOAD,
        layers: Sequence[str] = (),
        ready_timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        self._root = root
        self._layers = list(layers)
        self._environment = dict(environment)
        self._options = list(interpreter_options)
        self._preload = list(preload)
        self._ready_timeout_s = ready_timeout_s
        self._lock = threading.Lock()  # one conversation with the zygote at a time
        self._zygote: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._ready: dict[str, Any] | None = None
        self._failures = 0
        self._disabled: str | None = None if supported() else f"no fork on {sys.platform}"
        self._stopped = False
        self._subreaper = False
        self.forks = 0
        self.fallbacks = 0
        self._refusals: set[str] = set()

    @property
    def pid(self) -> int | None:
        """The zygote's process id, while one runs."""
        zygote = self._zygote
        return zygote.pid if zygote is not None and zygote.poll() is None else None

    def start(self) -> None:
        """Start the zygote without waiting for its preload (the first ``fork`` does)."""
        with self._lock:
            if self._disabled is None and not self._stopped and self._zygote is None:
                try:
                    self._spawn()
                except OSError as error:
                    self._disable(f"the zygote did not start: {error}")
                except ZygoteUnavailable:
                    pass

    def ready(self) -> bool:
        """Wait for the zygote's preload; whether environments will be forked."""
        with self._lock:
            if self._disabled is not None or self._stopped:
                return False
            try:
                self._ensure_ready()
            except ZygoteUnavailable:
                return False
            except (_ZygoteFailed, OSError) as error:
                self._failed(error)
                return False
            return True

    def fork(
        self, *, cwd: str, search_path: Sequence[str], variables: Mapping[str, str], fds: Sequence[int]
    ) -> ForkedProcess:
        """A new environment for the function in ``cwd`` whose modules come from ``search_path``:
        ``fds`` are its request read end, response write end, stdout and stderr.

        Raises ZygoteUnavailable when it must start as a plain subprocess: unsupported, stopped, given
        up on, or a function a preloaded module does not fit. Restarts a dead zygote on the way.
        """
        with self._lock:
            try:
                return self._fork(cwd, search_path, variables, fds)
            except ZygoteUnavailable:
                self.fallbacks += 1
                raise

    def _fork(
        self, cwd: str, search_path: Sequence[str], variables: Mapping[str, str], fds: Sequence[int]
    ) -> ForkedProcess:
        for _ in range(2):  # a zygote found dead is replaced once per request
            if self._stopped:
                raise ZygoteUnavailable("the environment factory is stopped")
            if self._disabled is not None:
                raise ZygoteUnavailable(self._disabled)
            try:
                ready = self._ensure_ready()
                self._check_fits(ready, search_path, variables)
                pid = self._request({"cwd": cwd, "variables": dict(variables)}, fds)
            except (_ZygoteFailed, OSError) as error:
                self._failed(error)
                continue
            try:
                process = ForkedProcess(pid)
            except ChildProcessError:
                # Not adopted: some ancestor in between is a subreaper too. Forking cannot be relied on.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._disable(f"environment {pid} was not adopted by this process")
                raise ZygoteUnavailable(self._disabled or "") from None
            self._failures = 0
            self.forks += 1
            return process
        raise ZygoteUnavailable(self._disabled or "the zygote failed twice in a row")

    def _check_fits(self, ready: Mapping[str, Any], search_path: Sequence[str], variables: Mapping[str, str]) -> None:
        """Refuse what a fork would get wrong: a variable read at import set otherwise, a module shadowed."""
        read: dict[str, str | None] | None = ready["read"]
        if read is None:
            differing = set(variables.items()) ^ set(self._environment.items())
            names = sorted({name for name, _ in differing})
        else:
            names = [name for name, value in read.items() if variables.get(name) != value]
            if ready["proxies"]:  # a proxy variable the zygote did not have is a difference too
                names += [name for name in variables if _is_proxy_variable(name) and name not in read]
        if names:
            self._refuse(f"the preload read {', '.join(names)} with other values")
        from_layers: dict[str, str] = ready.get("layers", {})  # a layer's module -> the layer it came from
        missing = sorted({layer for layer in from_layers.values() if layer not in search_path})
        if missing:
            self._refuse(f"it does not use the preloaded layer {', '.join(missing)}")
        unresolved = set(ready["modules"])  # every preloaded name the function would not find first where it was
        for folder in search_path:
            with contextlib.suppress(OSError):
                found = unresolved & {entry.partition(".")[0] for entry in os.listdir(folder)}
                shadowing = {name for name in found if from_layers.get(name) != folder}
                if shadowing:
                    self._refuse(f"{folder} has its own {', '.join(sorted(shadowing))}")
                unresolved -= found

    def _refuse(self, reason: str) -> None:
        if reason not in self._refusals:  # once per reason, not once per environment
            self._refusals.add(reason)
            logger.info("starting plain environments where %s", reason)
        raise ZygoteUnavailable(reason)

    def _spawn(self) -> None:
        if not self._subreaper:
            try:
                _become_subreaper()  # before any fork: environments must be adopted by this process
            except (OSError, AttributeError) as error:  # AttributeError: a libc without prctl
                self._disable(str(error))
                raise ZygoteUnavailable(str(error)) from None
            self._subreaper = True
        control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._zygote = subprocess.Popen(  # noqa: S603 - our own interpreter and bootstrap
                [
                    sys.executable,
                    *self._options,
                    "-c",
                    _BOOTSTRAP.format(root=self._root),
                    str(theirs.fileno()),
                    *self._preload,
                    *(_LAYER_ARGUMENT + layer for layer in self._layers),
                ],
                env=self._environment,
                cwd="/",  # holds no folder (a test's temporary one, say); environments chdir
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # environments get their own; stderr is the stack's
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            control.close()
            raise
        finally:
            theirs.close()
        self._control = control
        self._ready = None

    def _ensure_ready(self) -> dict[str, Any]:
        if self._zygote is None:
            self._spawn()
        if self._ready is None:
            hello = self._receive(self._ready_timeout_s)
            if hello.get("refused"):  # another zygote would preload the same: no point retrying
                self._discard()
                self._disable(hello["refused"])
                raise ZygoteUnavailable(hello["refused"])
            if not hello.get("ready"):
                raise _ZygoteFailed(f"unexpected first message {hello!r}")
            self._ready = hello
            logger.debug("zygote %s preloaded in %s ms", hello.get("pid"), hello.get("preload_ms"))
        return self._ready

    def _request(self, request: Mapping[str, Any], fds: Sequence[int]) -> int:
        control = self._control
        assert control is not None
        control.settimeout(FORK_TIMEOUT_S)
        try:
            socket.send_fds(control, [json.dumps(request).encode()], list(fds))
        except OSError as error:
            raise _ZygoteFailed(f"the zygote is gone: {error}") from error
        reply = self._receive(FORK_TIMEOUT_S)
        if "pid" not in reply:
            raise _ZygoteFailed(str(reply.get("error", reply)))
        return int(reply["pid"])

    def _receive(self, timeout_s: float) -> dict[str, Any]:
        control = self._control
        assert control is not None
        control.settimeout(timeout_s)
        try:
            data = control.recv(_MAX_MESSAGE)
        except TimeoutError:
            raise _ZygoteFailed(f"the zygote did not answer within {timeout_s:g} s") from None
        except OSError as error:
            raise _ZygoteFailed(f"the zygote is gone: {error}") from error
        if not data:
            raise _ZygoteFailed("the zygote exited")
        message: dict[str, Any] = json.loads(data)
        return message

    def _failed(self, error: BaseException) -> None:
        code = self._discard()
        if self._stopped:  # stop() ended it under a fork in flight: no failure of the zygote's
            return
        self._failures += 1
        logger.warning("environment zygote failed (%s; exit status %s)", error, code)
        if self._failures >= MAX_FAILURES:
            self._disable(f"gave up after {self._failures} failed zygotes, the last: {error}")

    def _disable(self, reason: str) -> None:
        self._disabled = reason
        logger.warning("environments start as plain subprocesses from now on: %s", reason)

    def _discard(self, grace_s: float = 0.0) -> int | None:
        """End the zygote: closing the socket is its signal to exit; killed after ``grace_s``."""
        control, zygote = self._control, self._zygote
        self._control, self._zygote, self._ready = None, None, None
        if control is not None:
            control.close()
        if zygote is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return zygote.wait(timeout=grace_s)
        zygote.kill()
        return zygote.wait()

    def stop(self) -> None:
        """End the zygote for good (environments it forked are this process's children, ended by their pools)."""
        self._stopped = True
        control = self._control
        if control is not None:  # wakes a fork waiting on the zygote in another thread
            with contextlib.suppress(OSError):
                control.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self._discard(grace_s=5.0)

    def describe(self) -> dict[str, Any]:
        """The factory as ``GET /_local/environments`` shows it."""
        ready = self._ready or {}
        return {
            "mode": "zygote",
            "pid": self.pid,
            "preload_ms": ready.get("preload_ms"),
            "forks": self.forks,
            "fallbacks": self.fallbacks,
            "disabled": self._disabled,
        }


# The zygote's side: everything below runs in the zygote process or in an environment it forked.


def _is_proxy_variable(name: str) -> bool:
    return name.lower().endswith("_proxy") or name == "REQUEST_METHOD"  # what urllib's lookup uses


class _RecordingEnviron(MutableMapping[str, str]):
    """``os.environ`` while the preload runs: which variables did a library read at import?"""

    def __init__(self, real: MutableMapping[str, str]) -> None:
        self.real = real
        self.read: set[str] = set()
        self.iterated = False
        self.proxies = False  # urllib's proxy lookup ran: every *_proxy variable counts as read
        self.recording = True

    def __getitem__(self, name: str) -> str:
        self._note(name)
        return self.real[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self._note(name)
        return name in self.real

    def __iter__(self) -> Iterator[str]:
        if self.recording and not self._in_proxy_lookup():
            self.iterated = True  # a copy of everything: nothing may differ
        return iter(self.real)

    def __len__(self) -> int:
        return len(self.real)

    def __setitem__(self, name: str, value: str) -> None:
        self.real[name] = value

    def __delitem__(self, name: str) -> None:
        del self.real[name]

    def copy(self) -> dict[str, str]:
        """As ``os.environ.copy``."""
        return dict(self)

    def _note(self, name: str) -> None:
        if self.recording and not self._in_proxy_lookup():
            self.read.add(name)

    def _in_proxy_lookup(self) -> bool:
        """Whether urllib's proxy lookup is the reader (botocore's endpoints, at X-Ray's import)."""
        frame: FrameType | None = sys._getframe(2)
        for _ in range(4):  # the lookup, then os.environ.items()'s view, then this mapping
            if frame is None:
                return False
            if frame.f_code.co_name in _PROXY_LOOKUPS and frame.f_globals.get("__name__") == "urllib.request":
                self.proxies = True
                return True
            frame = frame.f_back
        return False


@dataclass(frozen=True)
class _Renewable:
    """A socket the preload created and left unused (X-Ray's UDP emitter): each environment gets its own."""

    fd: int
    family: int
    type: int
    proto: int

    def renew(self) -> None:
        """A fresh socket of the same kind at the same number, so the library's object keeps working."""
        inheritable = os.get_inheritable(self.fd)
        with socket.socket(self.family, self.type, self.proto) as fresh:
            os.dup2(fresh.fileno(), self.fd, inheritable=inheritable)


def _renewable_descriptors(kept: set[int]) -> list[_Renewable]:
    """What the preload left open besides ``kept``; raises ValueError for what a fork cannot renew."""
    renewable = []
    for entry in os.listdir("/proc/self/fd"):
        fd = int(entry)
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the listing's own descriptor, closed by now
            continue
        if fd in kept:
            continue
        if not target.startswith("socket:"):  # a file or pipe: a shared offset, or a shared peer
            raise ValueError(f"the preload left {target} open (descriptor {fd})")
        with socket.socket(fileno=os.dup(fd)) as probe:
            with contextlib.suppress(OSError):
                probe.getpeername()
                raise ValueError(f"the preload left a connected socket open (descriptor {fd})")
            address = probe.getsockname()
            if isinstance(address, tuple) and address[1] != 0:
                raise ValueError(f"the preload left a socket bound to {address} open (descriptor {fd})")
            renewable.append(_Renewable(fd, probe.family, probe.type, probe.proto))
    return renewable


@dataclass
class _NewEnvironment:
    """What a forked child must become: the function's worker."""

    cwd: str
    variables: dict[str, str]
    fds: list[int]
    renewable: list[_Renewable]

    def run(self) -> int:
        gc.enable()  # frozen objects stay out of reach; the function's own are collected as usual
        for descriptor in self.renewable:  # nothing shared with the zygote or a sibling but stdin
            descriptor.renew()
        requests, responses, stdout, stderr = self.fds
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        os.close(stdout)
        os.close(stderr)
        os.chdir(self.cwd)
        os.environ.clear()  # putenv/unsetenv too: C code sees the function's variables
        os.environ.update(self.variables)
        time.tzset()  # TZ may differ from the zygote's
        sys.argv[1:] = [str(requests), str(responses)]  # as a fresh worker's

        from dev.local_stack.environment_worker import main

        return main(sys.argv[1:])


class _Zygote:
    def __init__(self, control: socket.socket) -> None:
        self._control = control
        self._pid = os.getpid()
        self._renewable: list[_Renewable] = []

    def preload(self, modules: Sequence[str]) -> dict[str, Any]:
        """Import ``modules``, recording the environment variables they read; the first message."""
        started = time.monotonic()
        before = set(sys.modules)
        recording = _RecordingEnviron(os.environ)
        os.environ = recording  # type: ignore[assignment]  # noqa: B003 - swapped, not cleared; os.getenv reads it too
        skipped: list[str] = []
        layers = [module.removeprefix(_LAYER_ARGUMENT) for module in modules if module.startswith(_LAYER_ARGUMENT)]
        modules = [module for module in modules if not module.startswith(_LAYER_ARGUMENT)]
        from_layers: dict[str, str] = {}
        try:
            for name in modules:
                try:
                    importlib.import_module(name)
                except Exception as error:  # noqa: BLE001 - a missing library is simply not shared
                    skipped.append(f"{name}: {error}")
            if "boto3" in sys.modules:
                try:
                    _load_sdk_data(SDK_SERVICES)
                except Exception as error:  # noqa: BLE001 - environments then parse it themselves
                    skipped.append(f"AWS SDK data: {error}")
            for layer in layers:
                from_layers.update(_import_layer(layer, skipped))
        finally:
            os.environ = recording.real  # type: ignore[assignment]  # noqa: B003
            recording.recording = False  # a module that kept a reference still works, unrecorded
        gc.freeze()
        try:
            self._renewable = _renewable_descriptors({0, 1, 2, self._control.fileno()})
        except ValueError as error:
            return {"refused": f"environments cannot be forked: {error}"}
        names = recording.read | {*_READ_BY_C}
        if recording.proxies:
            names |= {name for name in os.environ if _is_proxy_variable(name)}
        read = None if recording.iterated else {name: os.environ.get(name) for name in names}
        return {
            "ready": True,
            "pid": self._pid,
            "read": read,
            "proxies": recording.proxies,
            "modules": sorted({name.partition(".")[0] for name in set(sys.modules) - before}),
            "layers": from_layers,
            "skipped": skipped,
            "preload_ms": round((time.monotonic() - started) * 1000),
        }

    def run(self, modules: Sequence[str]) -> _NewEnvironment | None:
        """Serve fork requests until the stack closes the socket; returns in a forked environment only."""
        ready = self.preload(modules)
        self._send(ready)
        if ready.get("refused"):
            return None
        while True:
            try:
                data, fds, flags, _ = socket.recv_fds(self._control, _MAX_MESSAGE, _FDS)
            except OSError:
                return None
            if not data:
                return None  # the stack stopped us, or ended
            environment = self._handle(data, fds, flags)
            if environment is not None:
                self._control.close()  # the zygote's death must read as end-of-file to the stack
                return environment

    def _handle(self, data: bytes, fds: list[int], flags: int) -> _NewEnvironment | None:
        try:
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(fds) != _FDS:
                raise ValueError(f"incomplete request ({len(fds)} descriptors, flags {flags})")
            request = json.loads(data)
            threads = len(os.listdir("/proc/self/task"))
            if threads != 1:  # a fork copies only the calling thread, and the others' locks as they are
                raise RuntimeError(f"the zygote has {threads} threads")
            pid_read, pid_write = os.pipe()
        except Exception as error:  # noqa: BLE001 - reported; the stack starts this one the plain way
            _close(fds)
            self._send({"error": f"{type(error).__name__}: {error}"})
            return None
        gc.freeze()  # whatever this loop allocated since, too
        try:
            intermediate = os.fork()
        except OSError as error:
            _close([*fds, pid_read, pid_write])
            self._send({"error": f"fork: {error}"})
            return None
        if intermediate == 0:
            environment = _NewEnvironment(request["cwd"], request["variables"], fds, self._renewable)
            return _fork_again(pid_read, pid_write, environment)
        os.close(pid_write)
        _close(fds)  # the environment's ends: kept here, the stack would never see it exit
        try:
            pid = _read_all(pid_read)
        finally:
            os.close(pid_read)
        os.waitpid(intermediate, 0)  # once it is reaped, the environment is the stack's child
        self._send({"pid": int(pid)} if pid else {"error": "the second fork failed"})
        return None

    def _send(self, message: Mapping[str, Any]) -> None:
        self._control.sendall(json.dumps(message).encode())


def _import_layer(layer: str, skipped: list[str]) -> dict[str, str]:
    """Import every module of a layer folder, as on Lambda's path; its top-level names -> the folder."""
    sys.path.insert(0, layer)
    try:
        names: dict[str, str] = {}
        for module in pkgutil.walk_packages([layer], onerror=lambda name: skipped.append(f"{layer}: {name}")):
            try:
                importlib.import_module(module.name)
            except Exception as error:  # noqa: BLE001 - an environment then imports it itself
                skipped.append(f"{module.name}: {error}")
                continue
            names[module.name.partition(".")[0]] = layer
        return names
    finally:
        sys.path.remove(layer)  # environments put their own layers on their path


def _load_sdk_data(services: Sequence[str]) -> None:
    """Parse the SDK's endpoint, retry and service data into the default boto3 session's loader."""
    import boto3

    boto3.setup_default_session()
    loader = boto3.DEFAULT_SESSION._loader  # type: ignore[union-attr]  # boto3's loader: botocore's plus its own data
    for name in _SDK_DATA:
        loader.load_data(name)
    for service in services:
        for kind in _SDK_SERVICE_DATA:
            loader.load_service_model(service, kind)
    loader.load_service_model("dynamodb", "resources-1")  # boto3.resource("dynamodb")


def _fork_again(pid_read: int, pid_write: int, environment: _NewEnvironment) -> _NewEnvironment:
    """In the intermediate child: fork the environment, tell the zygote its pid, exit (orphaning it to the stack)."""
    try:
        os.close(pid_read)
        pid = os.fork()
        if pid == 0:
            os.close(pid_write)
            return environment
        os.write(pid_write, str(pid).encode())
    except BaseException:  # noqa: BLE001 - neither this process nor the environment may return into the loop
        os._exit(1)
    os._exit(0)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 64):
        chunks.append(chunk)
    return b"".join(chunks)


def _close(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def serve(argv: Sequence[str]) -> int:
    """The zygote's main: ``argv`` is its socket's descriptor, then the modules to preload.

    Returns the zygote's exit status, or in a forked environment that environment's.
    """
    # Ctrl-C in a terminal reaches the whole process group; the stack decides when the zygote ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    malloc_settings.apply()  # before the preload allocates: environments inherit the setting with the heap
    control = socket.socket(fileno=int(argv[0]))
    environment = _Zygote(control).run(argv[1:])
    if environment is None:
        control.close()
        return 0
    return environment.run()
