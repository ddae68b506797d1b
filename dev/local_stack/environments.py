"""Lambda's execution environments, locally: a pool of worker processes per function.

An environment is a separate process (``dev.local_stack.environment_worker``)
that imports its function's handler once (the cold start) and then runs one
event at a time, keeping its module state between events (warm starts), so
module globals, asyncio loops and Powertools' per-request state belong to one
environment, as on Lambda. Each runs with its own function's resolved
environment variables, ``AWS_ENDPOINT_URL`` (and any ``AWS_ENDPOINT_URL_*``)
taken from the launcher's environment.

Why workers of our own speaking JSON lines over two pipes, not
``multiprocessing``: spawn and forkserver children re-import the parent's
``__main__`` (``python -m dev.local_stack`` pulls in moto, ~100 MB each), and
fork copies moto's threads and locks; a worker of our own imports only what
its handler imports, and leaves stdout to the handler, where the parent reads
logs and Powertools' EMF metrics from it.

The stack's environments are forked by a zygote (``dev.local_stack.environment_factory``)
that imported the shared third-party libraries once, so they share those pages
and skip that part of the cold start; a function the zygote does not fit, a
platform without fork, or ``LOCAL_STACK_ENVIRONMENT_START=subprocess`` start
each worker as a fresh ``python -I`` subprocess instead. Both are the same
worker to the pool: a pid, the two pipes and stdout.

Per function, as Lambda scales:

- environments start on demand, up to the function's limit: its
  ``ReservedConcurrentExecutions`` as deployed, else ``concurrency`` (a local
  stand-in for the account's 1,000);
- an idle environment is reused (the most recently used first, so the others
  age out) and ended after ``idle_timeout_s`` without work, as Lambda
  reclaims idle environments;
- when all are busy, an invocation over reserved concurrency is throttled at
  once (``ThrottledError``, Lambda's TooManyRequestsException; API Gateway
  answers 500), while one over the local default waits up to
  ``queue_timeout_s`` for an environment (``EnvironmentsBusyError`` after: the
  gateway answers 503, as an HTTP API does when its integration does not
  answer in time) — AWS would not throttle there, so neither do we;
- an invocation that outlives the function's timeout is killed with its
  environment (``FunctionTimeoutError``); the next invocation starts a new one;
- a handler's exception comes back as Lambda reports it (``FunctionError``
  with errorType and errorMessage); the environment stays warm.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol

from dev.local_stack.environment_factory import EnvironmentFactory, ForkedProcess, ZygoteUnavailable, supported
from dev.local_stack.metrics import MetricsCollector
from dev.local_stack.runtime import FunctionTimeoutError, function_identity
from dev.local_stack.template import REPO_ROOT, FunctionSpec, SamApp

if TYPE_CHECKING:
    from dev.local_stack.stack import DeployedStack

logger = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4
# Batches an SQS poller runs side by side unless the event's ScalingConfig says: as many as there are cores.
# The queue-driven functions are CPU-bound here, so more environments only cost memory (~30 MB each):
# 2 instead of 4 on this 2-core machine ran the bench's publications as fast with 100 MB less.
DEFAULT_QUEUE_CONCURRENCY = max(2, os.cpu_count() or 2)
# Lambda keeps an idle environment for minutes because its cold start costs ~1 s; forked from the preloaded
# zygote one costs ~20-70 ms here, and an idle one ~30 MB of the developer's memory.
DEFAULT_IDLE_TIMEOUT_S = 30.0
# Lambda allows 10 s of init; two shared cores starting several environments at once need more.
INIT_TIMEOUT_S = 30.0
QUEUE_TIMEOUT_S = 30.0  # an HTTP API's longest integration timeout
# How the stack starts environments: "zygote" (forked from it, where possible) or "subprocess" (always fresh).
START_VARIABLE = "LOCAL_STACK_ENVIRONMENT_START"
START_MODES = ("zygote", "subprocess")

# The worker imports local_stack.* from the repo, then leaves sys.path to the function (Lambda's order).
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, {root!r}); "
    "from dev.local_stack.environment_worker import main; sys.path.remove({root!r}); "
    "sys.exit(main(sys.argv[1:]))"
)
# An API function that records nothing flushes an empty set; on AWS that warning goes nowhere.
_QUIET_WARNINGS = "ignore:No application metrics to publish:UserWarning"
# Workers and the zygote alike: no PYTHON* variables, user site or current folder (Lambda's sys.path only).
_INTERPRETER_OPTIONS = ("-I", "-u", "-W", _QUIET_WARNINGS)


class InvocationError(RuntimeError):
    """An invocation failed the way Lambda reports it (a message, no traceback of the caller's worth showing)."""


class FunctionError(InvocationError):
    """The invocation failed as Lambda reports it: the handler raised, or the runtime did."""

    def __init__(self, function: str, error_type: str, error_message: str) -> None:
        super().__init__(f"{function}: {error_type}: {error_message}")
        self.error_type = error_type
        self.error_message = error_message


class ThrottledError(InvocationError):
    """Every environment the function's reserved concurrency allows is busy (TooManyRequestsException)."""


class EnvironmentsBusyError(InvocationError):
    """No environment became free within the queue timeout (only below the local default limit)."""


class EnvironmentsStoppedError(InvocationError):
    """The local stack is stopping: no environment takes work any more."""


@dataclass(frozen=True)
class EnvironmentConfig:
    """What an environment needs to know about its function."""

    spec: FunctionSpec
    function_name: str
    function_arn: str
    log_group_name: str
    variables: Mapping[str, str]

    def init_request(self) -> dict[str, Any]:
        """The first message a worker reads."""
        return {
            "logical_id": self.spec.logical_id,
            "handler": self.spec.handler,
            "code_dir": str(self.spec.code_dir),
            "layer_dirs": [str(layer) for layer in self.spec.layer_dirs],
            "function_name": self.function_name,
            "function_arn": self.function_arn,
            "memory_mb": self.spec.memory_mb,
            "log_group_name": self.log_group_name,
            "timeout_s": self.spec.timeout_s,
        }


OutputSink = Callable[[str, str], None]
"""Receives (function logical id, one line an environment printed)."""


class _EnvironmentGone(Exception):
    """The worker process ended (or was killed) before answering."""


class WorkerProcess(Protocol):
    """A worker's process as the pool handles it: ``subprocess.Popen`` or a zygote's ``ForkedProcess``."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


def _start_worker(
    config: EnvironmentConfig, factory: EnvironmentFactory | None, requests: int, responses: int, stdout: int
) -> WorkerProcess:
    """A worker reading ``requests``, answering on ``responses``, printing to ``stdout``: forked if it can be."""
    if factory is not None:
        try:
            return factory.fork(
                cwd=str(config.spec.code_dir),
                search_path=[str(config.spec.code_dir), *(str(layer) for layer in config.spec.layer_dirs)],
                variables=config.variables,
                fds=(requests, responses, stdout, 2),  # fd 2 as it is now: pytest's capfd swaps it per test
            )
        except ZygoteUnavailable as error:
            logger.debug("%s: a plain environment: %s", config.spec.logical_id, error)
    return subprocess.Popen(  # noqa: S603 - our own interpreter and bootstrap
        [
            sys.executable,
            *_INTERPRETER_OPTIONS,
            "-c",
            _BOOTSTRAP.format(root=str(REPO_ROOT)),
            str(requests),
            str(responses),
        ],
        env=dict(config.variables),
        cwd=config.spec.code_dir,  # /var/task on Lambda
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        pass_fds=(requests, responses),
    )


class _Environment:
    """One worker process: started and initialised by the constructor, then invoked one event at a time."""

    def __init__(
        self,
        config: EnvironmentConfig,
        sink: OutputSink,
        init_timeout_s: float,
        factory: EnvironmentFactory | None = None,
    ) -> None:
        self.config = config
        self.invocations = 0
        self.last_used = time.monotonic()
        self._lock = threading.Lock()  # stop() may kill a busy environment from another thread
        self._closed = False
        request_read, self._requests = os.pipe()
        self._responses, response_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        started = time.monotonic()
        try:
            self.process = _start_worker(config, factory, request_read, response_write, stdout_write)
        except BaseException:
            for descriptor in (self._requests, self._responses, stdout_read):
                os.close(descriptor)
            raise
        finally:
            # Only the worker may hold these ends: its exit must read as end-of-file here.
            for descriptor in (request_read, response_write, stdout_write):
                os.close(descriptor)
        self.forked = isinstance(self.process, ForkedProcess)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._responses, selectors.EVENT_READ)
        self._pending = b""
        self._reader = threading.Thread(
            target=_pump,
            args=(os.fdopen(stdout_read, "rb"), config.spec.logical_id, sink),
            name=f"env-{self.pid}",
            daemon=True,
        )
        self._reader.start()
        try:
            self._send(config.init_request())
            ready = self._receive(time.monotonic() + init_timeout_s)
        except (TimeoutError, _EnvironmentGone) as error:
            self.kill()
            raise FunctionError(config.spec.logical_id, "Runtime.InitError", f"init did not finish: {error}") from None
        except BaseException:
            self.kill()
            raise
        if not ready.get("ready"):
            self.kill()
            raise _function_error(config.spec.logical_id, ready)
        self.cold_start_s = time.monotonic() - started
        self.init_ms = int(ready.get("init_ms", 0))

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    @property
    def alive(self) -> bool:
        """Whether the worker can take another event."""
        return self.process.poll() is None

    def invoke(self, event: Mapping[str, Any]) -> Any:
        """Run one event; kill the environment when it overruns the function's timeout."""
        self.invocations += 1
        timeout_s = self.config.spec.timeout_s
        try:
            self._send({"event": event})
            reply = self._receive(time.monotonic() + timeout_s)
        except TimeoutError:
            self.kill()
            raise FunctionTimeoutError(
                f"{self.config.spec.logical_id}: Task timed out after {timeout_s:.2f} seconds"
            ) from None
        except _EnvironmentGone:
            self.kill()
            code = self.process.returncode
            raise FunctionError(
                self.config.spec.logical_id, "Runtime.ExitError", f"RequestId: exited with status {code}"
            ) from None
        finally:
            self.last_used = time.monotonic()
        if "result" in reply:
            return reply["result"]
        raise _function_error(self.config.spec.logical_id, reply)

    def _send(self, message: Mapping[str, Any]) -> None:
        data = memoryview((json.dumps(message) + "\n").encode())
        try:
            while data:
                data = data[os.write(self._requests, data) :]
        except (BrokenPipeError, OSError) as error:
            raise _EnvironmentGone(str(error)) from error

    def _receive(self, deadline: float) -> dict[str, Any]:
        chunks = [self._pending]
        while b"\n" not in chunks[-1]:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                raise TimeoutError
            try:
                chunk = os.read(self._responses, 1 << 16)
            except OSError as error:
                raise _EnvironmentGone(str(error)) from error
            if not chunk:
                raise _EnvironmentGone("the worker closed its pipe")
            chunks.append(chunk)
        line, _, self._pending = b"".join(chunks).partition(b"\n")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def rss_kb(self) -> int | None:
        """The worker's resident memory (Linux), None when unknown."""
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def close(self) -> None:
        """End an idle worker gracefully: end of input makes it exit; kill it if it does not."""
        with self._lock:
            if not self._closed:
                os.close(self._requests)
                self._requests = -1
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)
        self.kill()

    def interrupt(self) -> None:
        """Kill the process only, from any thread: the thread invoking it sees it gone and cleans up."""
        if self.process.poll() is None:
            self.process.kill()

    def kill(self) -> None:
        """End the worker at once (Lambda's treatment of a timed-out or broken environment) and free its pipes."""
        self.interrupt()
        self.process.wait()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            # Each descriptor closed once: a number closed twice may by then belong to another thread's file.
            for descriptor in (self._requests, self._responses):
                if descriptor >= 0:
                    os.close(descriptor)
            self._selector.close()
        self._reader.join(timeout=2)


def _pump(stream: IO[bytes], function: str, sink: OutputSink) -> None:
    for raw in stream:
        sink(function, raw.decode("utf-8", errors="replace").rstrip("\n"))
    stream.close()


def _function_error(function: str, reply: Mapping[str, Any]) -> FunctionError:
    return FunctionError(function, str(reply.get("errorType", "Unknown")), str(reply.get("errorMessage", "")))


class FunctionEnvironments:
    """One function's pool of execution environments; ``invoke`` is the ``Invocable`` interface."""

    def __init__(
        self,
        config: EnvironmentConfig,
        *,
        limit: int = DEFAULT_CONCURRENCY,
        reserved: bool = False,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        queue_timeout_s: float = QUEUE_TIMEOUT_S,
        init_timeout_s: float = INIT_TIMEOUT_S,
        sink: OutputSink | None = None,
        factory: EnvironmentFactory | None = None,
    ) -> None:
        if limit < 0 or (limit == 0 and not reserved):
            raise ValueError(f"{config.spec.logical_id}: concurrency must be at least 1, got {limit}")
        self.config = config
        self.limit = limit
        self.reserved = reserved
        self.idle_timeout_s = idle_timeout_s
        self.queue_timeout_s = queue_timeout_s
        self.init_timeout_s = init_timeout_s
        self.sink: OutputSink = sink or _print_line
        self.factory = factory  # None: every environment a fresh subprocess
        self.cold_starts: list[float] = []
        self._condition = threading.Condition()
        self._idle: list[_Environment] = []  # most recently used last
        self._busy: set[_Environment] = set()
        self._starting = 0
        self._stopped = False

    @property
    def name(self) -> str:
        """The function's logical id."""
        return self.config.spec.logical_id

    def invoke(self, event: Mapping[str, Any]) -> Any:
        """Run ``event`` in a free environment (started if needed and allowed); its result, or raise."""
        environment = self._acquire()
        try:
            return environment.invoke(event)
        finally:
            self._release(environment)

    def _acquire(self) -> _Environment:
        deadline = time.monotonic() + self.queue_timeout_s
        with self._condition:
            while True:
                if self._stopped:
                    raise EnvironmentsStoppedError(f"{self.name}'s environments are stopped")
                if self._idle:
                    environment = self._idle.pop()
                    self._busy.add(environment)
                    return environment
                if len(self._busy) + self._starting < self.limit:
                    self._starting += 1
                    break
                if self.reserved:
                    raise ThrottledError(f"{self.name}: Rate Exceeded (reserved concurrency {self.limit} in use)")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise EnvironmentsBusyError(
                        f"{self.name}: all {self.limit} environments stayed busy for {self.queue_timeout_s:g} s"
                    )
                self._condition.wait(remaining)
        try:
            environment = _Environment(self.config, self.sink, self.init_timeout_s, self.factory)
        except BaseException:
            with self._condition:
                self._starting -= 1
                self._condition.notify()
            raise
        with self._condition:
            self._starting -= 1
            self.cold_starts.append(environment.cold_start_s)
            if self._stopped:
                environment.kill()
                raise EnvironmentsStoppedError(f"{self.name}'s environments are stopped")
            self._busy.add(environment)
        return environment

    def _release(self, environment: _Environment) -> None:
        with self._condition:
            self._busy.discard(environment)
            if environment.alive and not self._stopped:
                self._idle.append(environment)
            self._condition.notify()

    def reap_idle(self, now: float | None = None) -> int:
        """End environments idle for longer than the idle timeout; how many were ended."""
        now = time.monotonic() if now is None else now
        with self._condition:
            expired = [env for env in self._idle if now - env.last_used >= self.idle_timeout_s]
            self._idle = [env for env in self._idle if env not in expired]
        for environment in expired:
            environment.close()
        return len(expired)

    def stop(self) -> None:
        """End every environment, busy ones included (their invocations fail)."""
        with self._condition:
            self._stopped = True
            idle, busy = list(self._idle), list(self._busy)
            self._idle.clear()
            self._condition.notify_all()
        for environment in idle:
            environment.kill()
        for environment in busy:
            environment.interrupt()
        for environment in busy:  # reaped here too: the stack may exit before their invoking threads clean up
            with contextlib.suppress(subprocess.TimeoutExpired):
                environment.process.wait(timeout=2)

    def describe(self) -> dict[str, Any]:
        """The pool as ``GET /_local/environments`` shows it: limits and every live environment."""
        now = time.monotonic()
        with self._condition:
            states = [(env, "idle") for env in self._idle] + [(env, "busy") for env in self._busy]
            starting = self._starting
        return {
            "limit": self.limit,
            "reserved": self.reserved,
            "starting": starting,
            "cold_starts": len(self.cold_starts),
            "environments": [
                {
                    "pid": env.pid,
                    "forked": env.forked,
                    "state": state,
                    "invocations": env.invocations,
                    "cold_start_ms": round(env.cold_start_s * 1000),
                    "init_ms": env.init_ms,
                    "idle_s": round(now - env.last_used, 1) if state == "idle" else 0,
                    "rss_kb": env.rss_kb(),
                }
                for env, state in states
            ],
        }


def _print_line(function: str, line: str) -> None:
    print(line, flush=True)


@dataclass
class ExecutionEnvironments:
    """Every function's pool, the reaper that ends idle environments, and the metrics their output carries."""

    functions: dict[str, FunctionEnvironments]
    metrics: MetricsCollector = field(default_factory=MetricsCollector)
    factory: EnvironmentFactory | None = None  # the pools' zygote, stopped with them
    _stop: threading.Event = field(default_factory=threading.Event)
    _reaper: threading.Thread | None = None

    def start(self) -> None:
        """Start the zygote preloading, and reap idle environments in the background until ``stop``."""
        if self.factory is not None:
            self.factory.start()
        if self._reaper is None and self.functions:
            shortest = min(pool.idle_timeout_s for pool in self.functions.values())
            interval = max(0.05, min(1.0, shortest / 4))
            self._reaper = threading.Thread(target=self._reap, args=(interval,), name="env-reaper", daemon=True)
            self._reaper.start()

    def _reap(self, interval: float) -> None:
        while not self._stop.wait(interval):
            for pool in self.functions.values():
                pool.reap_idle()

    def stop(self) -> None:
        """Stop reaping and end every environment, then the zygote."""
        self._stop.set()
        if self._reaper is not None:
            self._reaper.join()
        for pool in self.functions.values():
            pool.stop()
        if self.factory is not None:
            self.factory.stop()

    def take_output(self, function: str, line: str) -> None:
        """An environment's line of output: metrics are counted and summed up in one line, logs printed."""
        blob = self.metrics.take(line)
        if blob is None:
            _print_line(function, line)
        else:
            logger.info("%s metrics: %s", function, blob.summary())

    def describe(self) -> dict[str, Any]:
        """Every function's pool and how environments start (``GET /_local/environments``)."""
        return {
            "functions": {name: pool.describe() for name, pool in sorted(self.functions.items())},
            "factory": self.factory.describe() if self.factory is not None else {"mode": "subprocess"},
        }


def environment_variables(
    function_variables: Mapping[str, str], overrides: Mapping[str, str], base: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """An environment's variables: the launcher's (fake credentials, AWS_ENDPOINT_URL and any
    AWS_ENDPOINT_URL_<SERVICE>), then the function's own resolved values, then the local overrides."""
    return {**base, **function_variables, **overrides}


def environments_for_stack(
    app: SamApp,
    stack: DeployedStack,
    overrides: Mapping[str, str] = {},
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    queue_timeout_s: float = QUEUE_TIMEOUT_S,
) -> ExecutionEnvironments:
    """A pool per function of the deployed stack; none started until invoked (``start`` starts the zygote
    and the reaper). ``LOCAL_STACK_ENVIRONMENT_START`` (``START_MODES``) says how environments start."""
    reserved = stack.reserved_concurrency
    configs = {}
    for logical_id, spec in app.functions.items():
        identity = function_identity(app, stack, logical_id)
        configs[logical_id] = EnvironmentConfig(
            spec=spec,
            function_name=identity.name,
            function_arn=identity.arn,
            log_group_name=identity.log_group_name,
            variables=environment_variables(stack.function_environments.get(logical_id, {}), overrides),
        )
    environments = ExecutionEnvironments(functions={}, factory=environment_factory(configs.values()))
    for logical_id, config in configs.items():
        environments.functions[logical_id] = FunctionEnvironments(
            config,
            limit=reserved.get(logical_id, concurrency),
            reserved=logical_id in reserved,
            idle_timeout_s=idle_timeout_s,
            queue_timeout_s=queue_timeout_s,
            sink=environments.take_output,
            factory=environments.factory,
        )
    return environments


def environment_factory(
    configs: Iterable[EnvironmentConfig], mode: str | None = None, **options: Any
) -> EnvironmentFactory | None:
    """The zygote for these functions' environments, or None where they start as plain subprocesses.

    ``mode`` defaults to ``LOCAL_STACK_ENVIRONMENT_START``, else "zygote". The zygote preloads with
    the variables every function agrees on, so what a library reads at import fits them all, and the
    layers every function uses.
    """
    mode = mode or os.environ.get(START_VARIABLE) or "zygote"
    if mode not in START_MODES:
        raise ValueError(f"{START_VARIABLE} must be one of {', '.join(START_MODES)}, got {mode!r}")
    if mode == "subprocess" or not supported():
        return None
    configs = list(configs)
    variables = [config.variables for config in configs] or [os.environ]
    common = {name: value for name, value in variables[0].items() if all(v.get(name) == value for v in variables)}
    layers = [str(layer) for layer in configs[0].spec.layer_dirs] if configs else []
    shared = [layer for layer in layers if all(layer in map(str, config.spec.layer_dirs) for config in configs)]
    return EnvironmentFactory(str(REPO_ROOT), common, _INTERPRETER_OPTIONS, layers=shared, **options)
