"""Execution environments: one process per environment, one event at a time, warm starts, bounded concurrency.

Every test runs twice: with environments forked by the zygote, and started as plain subprocesses.
"""

import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from werkzeug.test import Client

from dev.local_stack.environment_factory import EnvironmentFactory
from dev.local_stack.environments import (
    EnvironmentConfig,
    EnvironmentsBusyError,
    ExecutionEnvironments,
    FunctionEnvironments,
    FunctionError,
    ThrottledError,
    environment_factory,
    environment_variables,
)
from dev.local_stack.gateway import Gateway, serve
from dev.local_stack.runtime import FunctionTimeoutError
from dev.local_stack.template import FunctionSpec, HttpRoute
from tests.local_stack.conftest import config_for, forked, write

# Counts its invocations in a module global and says which process it runs in.
COUNTER = """
import os
import time

INVOCATIONS = 0


def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    if "raise" in event:
        raise ValueError(event["raise"])
    started = time.time()
    time.sleep(event.get("sleep", 0))
    return {
        "pid": os.getpid(),
        "invocations": INVOCATIONS,
        "started": started,
        "ended": time.time(),
        "request_id": context.aws_request_id,
        "stream": context.log_stream_name,
        "function_name": context.function_name,
        "remaining": context.get_remaining_time_in_millis(),
        "variables": {name: os.environ.get(name) for name in event.get("variables", [])},
    }
"""
# Publishes one metric per invocation through Powertools, as pushlane's handlers do.
METRICS = """
from aws_lambda_powertools import Metrics

metrics = Metrics(namespace="Tests")


@metrics.log_metrics
def handler(event, context):
    metrics.add_metric(name="Widgets", unit="Count", value=event["widgets"])
    return "ok"
"""
# An HTTP handler that waits as a long-poll does.
LONG_POLL = """
import os
import time


def handler(event, context):
    time.sleep(float(event["queryStringParameters"]["wait"]))
    return {"statusCode": 200, "body": str(os.getpid())}
"""

PoolFactory = Callable[..., FunctionEnvironments]


@pytest.fixture(scope="module")
def zygotes() -> Iterator[list[EnvironmentFactory]]:
    """Holds the module's one zygote, as a stack has one for all its functions."""
    started: list[EnvironmentFactory] = []
    yield started
    for factory in started:
        factory.stop()


@pytest.fixture
def zygote(fake_aws: None, zygotes: list[EnvironmentFactory]) -> EnvironmentFactory:
    """The module's zygote, preloaded under the fake AWS variables the tests' functions get (botocore reads
    some when imported: a zygote started without them would fit none of these functions)."""
    if not zygotes:
        factory = environment_factory([], "zygote")
        if factory is None:
            pytest.skip("no fork on this platform")
        factory.start()
        assert factory.ready()
        zygotes.append(factory)
    return zygotes[0]


@pytest.fixture(params=["zygote", "subprocess"])
def pool_for(make_spec: Callable[..., FunctionSpec], request: pytest.FixtureRequest) -> Iterator[PoolFactory]:
    """Pools of environments for handlers written from source, forked by the zygote or started as plain
    subprocesses; every environment is ended afterwards."""
    pools: list[FunctionEnvironments] = []
    factory: EnvironmentFactory | None = request.getfixturevalue("zygote") if request.param == "zygote" else None
    fallbacks = factory.fallbacks if factory is not None else 0

    def make(
        name: str,
        source: str = COUNTER,
        *,
        timeout_s: int = 5,
        variables: dict[str, str] | None = None,
        **options: Any,
    ) -> FunctionEnvironments:
        config = EnvironmentConfig(
            spec=make_spec(name, source, timeout_s=timeout_s),
            function_name=f"stack-{name}",
            function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:stack-{name}",
            log_group_name=f"/aws/lambda/stack-{name}",
            variables=environment_variables(variables or {}, {}),
        )
        pool = FunctionEnvironments(config, factory=factory, **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.stop()
    if factory is not None:
        assert factory.fallbacks == fallbacks  # every environment was forked


def in_parallel(count: int, call: Callable[[], Any]) -> list[Any]:
    """Run ``call`` in ``count`` threads at once; their results (or exceptions) in order."""
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            results[index] = call()
        except Exception as error:  # noqa: BLE001 - handed back to the test to assert on
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def process_exists(pid: int) -> bool:
    """Whether ``pid`` is a process, a zombie included (an unreaped child answers signal 0 too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def ends_within(pid: int, seconds: float) -> bool:
    """Whether ``pid`` is gone, zombie and all, within ``seconds`` (an environment exiting gracefully
    finalises every module it imported first: ~50 ms with the libraries the zygote preloads)."""
    deadline = time.monotonic() + seconds
    while process_exists(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_one_environment_keeps_its_module_state_between_invocations(pool_for: PoolFactory) -> None:
    pool = pool_for("Warm")

    results = [pool.invoke({}) for _ in range(3)]

    assert [result["invocations"] for result in results] == [1, 2, 3]
    assert len({result["pid"] for result in results}) == 1
    assert results[0]["pid"] != os.getpid()
    assert len({result["request_id"] for result in results}) == 3  # a context per invocation
    assert len({result["stream"] for result in results}) == 1  # one log stream per environment
    assert results[0]["function_name"] == "stack-Warm"
    assert 4000 < results[0]["remaining"] <= 5000
    assert len(pool.cold_starts) == 1


def test_two_environments_share_no_module_state(pool_for: PoolFactory) -> None:
    pool = pool_for("Apart")

    first, second = in_parallel(2, lambda: pool.invoke({"sleep": 0.5}))

    assert first["pid"] != second["pid"]
    assert first["invocations"] == second["invocations"] == 1


def test_concurrent_invocations_never_exceed_the_limit_and_wait_for_a_free_environment(
    pool_for: PoolFactory,
) -> None:
    pool = pool_for("Bounded", limit=2)

    results = in_parallel(6, lambda: pool.invoke({"sleep": 0.3}))

    windows = sorted((result["started"], result["ended"]) for result in results)
    most_at_once = max(sum(1 for start, end in windows if start <= moment < end) for moment, _ in windows)
    assert most_at_once == 2
    assert len({result["pid"] for result in results}) == 2
    assert sum(result["invocations"] for result in results) == 1 + 2 + 3 + 1 + 2 + 3


def test_over_reserved_concurrency_an_invocation_is_throttled_at_once(pool_for: PoolFactory) -> None:
    pool = pool_for("Reserved", limit=1, reserved=True)
    holder = threading.Thread(target=pool.invoke, args=({"sleep": 1.0},))
    holder.start()
    while not pool.describe()["environments"] or pool.describe()["environments"][0]["state"] != "busy":
        time.sleep(0.02)

    started = time.monotonic()
    with pytest.raises(ThrottledError, match="reserved concurrency 1"):
        pool.invoke({})
    took = time.monotonic() - started
    holder.join()

    assert took < 0.5


def test_below_the_local_default_an_invocation_waits_its_queue_timeout_then_gives_up(pool_for: PoolFactory) -> None:
    pool = pool_for("Queued", limit=1, queue_timeout_s=0.3)
    holder = threading.Thread(target=pool.invoke, args=({"sleep": 1.5},))
    holder.start()
    while pool.describe()["cold_starts"] == 0:
        time.sleep(0.02)

    with pytest.raises(EnvironmentsBusyError, match=r"stayed busy for 0\.3 s"):
        pool.invoke({})
    holder.join()


def test_an_invocation_that_overruns_is_killed_with_its_environment_and_the_next_gets_a_new_one(
    pool_for: PoolFactory,
) -> None:
    pool = pool_for("Overrun", timeout_s=1)
    first = pool.invoke({})

    started = time.monotonic()
    with pytest.raises(FunctionTimeoutError, match=r"Task timed out after 1\.00 seconds"):
        pool.invoke({"sleep": 30})
    took = time.monotonic() - started
    after = pool.invoke({})

    assert took < 2
    assert not process_exists(first["pid"])
    assert after["pid"] != first["pid"]
    assert after["invocations"] == 1  # a cold start
    assert len(pool.cold_starts) == 2


def test_an_idle_environment_is_reaped_after_the_idle_timeout(pool_for: PoolFactory) -> None:
    pool = pool_for("Idle", idle_timeout_s=0.3)
    environments = ExecutionEnvironments(functions={"Idle": pool})
    environments.start()
    try:
        pid = pool.invoke({})["pid"]
        deadline = time.monotonic() + 5
        while pool.describe()["environments"] and time.monotonic() < deadline:
            time.sleep(0.05)

        assert pool.describe()["environments"] == []
        assert ends_within(pid, 2)  # the reaper forgets the environment, then waits for it to exit
        assert pool.invoke({})["invocations"] == 1  # a new environment, cold
    finally:
        environments.stop()


def test_an_unhandled_exception_is_reported_as_lambda_reports_it_and_the_environment_stays_warm(
    pool_for: PoolFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    pool = pool_for("Raises")
    pid = pool.invoke({})["pid"]

    with pytest.raises(FunctionError) as raised:
        pool.invoke({"raise": "boom"})

    assert (raised.value.error_type, raised.value.error_message) == ("ValueError", "boom")
    assert "[ERROR] ValueError: boom" in capfd.readouterr().err  # the environment's log, as CloudWatch shows
    again = pool.invoke({})
    assert (again["pid"], again["invocations"]) == (pid, 3)


def test_a_module_that_fails_to_import_is_an_init_error_and_is_retried_on_the_next_invocation(
    pool_for: PoolFactory,
) -> None:
    pool = pool_for("Flaky", "raise RuntimeError('not yet')\n")
    with pytest.raises(FunctionError) as raised:
        pool.invoke({})
    assert raised.value.error_type == "Runtime.ImportModuleError"
    assert raised.value.error_message == "Unable to import module 'app': not yet"

    write(pool.config.spec.code_dir / "app.py", "def handler(event, context):\n    return 'ready'\n")

    assert pool.invoke({}) == "ready"


def test_each_function_gets_its_own_variables_and_the_launchers_endpoints(
    pool_for: PoolFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8001")
    names = ["TABLE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"]
    first = pool_for("First", variables={"TABLE": "table-1"})
    second = pool_for("Second", variables={"TABLE": "table-2"})  # one process could not hold both

    assert first.invoke({"variables": names})["variables"] == {
        "TABLE": "table-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8001",
    }
    assert second.invoke({"variables": ["TABLE"]})["variables"] == {"TABLE": "table-2"}


def test_two_long_polls_on_one_function_overlap_in_time(pool_for: PoolFactory) -> None:
    # Given a gateway serving a long-poll route from a pool with two warm environments
    pool = pool_for("Poll", LONG_POLL)
    running = serve(Gateway([HttpRoute("GET", "/poll", "Poll")], {"Poll": pool}), "127.0.0.1", 0)
    try:
        in_parallel(2, lambda: requests.get(f"{running.url}/poll?wait=0.5", timeout=10))

        # When two devices long-poll for 1 s at once
        started = time.monotonic()
        answers = in_parallel(2, lambda: requests.get(f"{running.url}/poll?wait=1", timeout=10))
        took = time.monotonic() - started
    finally:
        running.shutdown()

    # Then both answer within about one wait, from two environments
    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[0].text != answers[1].text
    assert took < 1.6


def test_powertools_metrics_are_totalled_and_summed_up_in_one_console_line(
    pool_for: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dev.local_stack.environments")
    environments = ExecutionEnvironments(functions={})
    variables = {"POWERTOOLS_SERVICE_NAME": "tests", "POWERTOOLS_METRICS_DISABLED": "false"}
    pool = pool_for("Counts", METRICS, variables=variables, sink=environments.take_output)
    environments.functions["Counts"] = pool

    pool.invoke({"widgets": 2})
    pool.invoke({"widgets": 3})
    deadline = time.monotonic() + 5
    # The output is read beside the invocation's answer: give the reader a moment.
    while sum(row["samples"] for row in environments.metrics.snapshot()["metrics"]) < 2 or len(caplog.records) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client = Client(Gateway([], {}, local_endpoints={"/_local/metrics": environments.metrics.snapshot}))

    assert client.get("/_local/metrics").json == {
        "metrics": [
            {
                "namespace": "Tests",
                "name": "Widgets",
                "unit": "Count",
                "dimensions": {"service": "tests"},
                "total": 5,
                "samples": 2,
            }
        ]
    }
    assert [record.getMessage() for record in caplog.records] == [
        "Counts metrics: Widgets=2",
        "Counts metrics: Widgets=3",
    ]


def test_environments_report_their_memory_and_cold_start(pool_for: PoolFactory) -> None:
    pool = pool_for("Described")
    pool.invoke({})

    described = pool.describe()

    assert described["limit"] == 4
    assert described["reserved"] is False
    (environment,) = described["environments"]
    assert environment["state"] == "idle"
    assert environment["invocations"] == 1
    assert environment["cold_start_ms"] >= environment["init_ms"] >= 0
    assert environment["rss_kb"] > 1000


def test_the_gateway_answers_500_when_throttled_and_503_when_no_environment_frees_up_in_time(
    pool_for: PoolFactory,
) -> None:
    reserved = pool_for("Reserved", LONG_POLL, limit=1, reserved=True)
    queued = pool_for("Queued", LONG_POLL, limit=1, queue_timeout_s=0.2)
    routes = [HttpRoute("GET", "/reserved", "Reserved"), HttpRoute("GET", "/queued", "Queued")]
    client = Client(Gateway(routes, {"Reserved": reserved, "Queued": queued}))
    holders = [threading.Thread(target=client.get, args=(f"/{name}?wait=1",)) for name in ("reserved", "queued")]
    for holder in holders:
        holder.start()
    while sum(pool.describe()["cold_starts"] for pool in (reserved, queued)) < 2:
        time.sleep(0.02)

    throttled, unavailable = client.get("/reserved?wait=0"), client.get("/queued?wait=0")
    for holder in holders:
        holder.join()

    assert (throttled.status_code, throttled.json) == (500, {"message": "Internal Server Error"})
    assert (unavailable.status_code, unavailable.json) == (503, {"message": "Service Unavailable"})


# The zygote: environments forked from one process that imported the shared libraries once.

# What a worker's process looks like from the inside, which a forked environment must match. It imports
# the X-Ray SDK, as Powertools' Tracer does, whose emitter opens a UDP socket when imported.
PROFILE = """
import gc
import os
import signal
import stat
import sys
import threading

import aws_xray_sdk.core


def sockets():
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the listing's own descriptor
            continue
        if target.startswith("socket:"):
            found.append(target)
    return found


def handler(event, context):
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "cwd": os.getcwd(),
        "path": sys.path,
        "argv": len(sys.argv),
        "environ": dict(os.environ),
        "descriptors": len(os.listdir("/proc/self/fd")),
        "sockets": sockets(),
        "xray_emitter_works": aws_xray_sdk.core.xray_recorder.emitter._socket.sendto(b"{}", ("127.0.0.1", 9)) == 2,
        "stdout_is_a_pipe": stat.S_ISFIFO(os.fstat(1).st_mode),
        "gc_enabled": gc.isenabled(),
        "frozen": gc.get_freeze_count(),
        "threads": len(os.listdir("/proc/self/task")),
        "sigint_ignored": signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
        "modules": sorted(name for name in sys.modules if name.startswith("app")),
    }
"""
# Powertools' service, which Logger() reads from the function's POWERTOOLS_SERVICE_NAME.
SERVICE = """
import os

from aws_lambda_powertools import Logger

logger = Logger()


def handler(event, context):
    return {"service": logger.service, "only_alpha": os.environ.get("ONLY_ALPHA")}
"""
# Marks a preloaded library's module (botocore), a stdlib one and its own, and says what it found there.
MARKS = """
import json
import os
import time

import botocore

MINE = None


def handler(event, context):
    global MINE
    found = {"botocore": getattr(botocore, "MARK", None), "json": getattr(json, "MARK", None), "mine": MINE}
    botocore.MARK = json.MARK = MINE = os.environ["MARK"]
    time.sleep(event.get("sleep", 0))
    return found
"""
# Ends its own process when asked to.
EXITS = """
import os


def handler(event, context):
    if "status" in event:
        os._exit(event["status"])
    return os.getpid()
"""
# Imports jwt, which the zygote preloaded and this function ships its own copy of.
VENDORED = """
import jwt


def handler(event, context):
    return getattr(jwt, "VENDORED", False)
"""


@pytest.fixture
def forked_pool_for(make_spec: Callable[..., FunctionSpec], zygote: EnvironmentFactory) -> Iterator[PoolFactory]:
    """Pools whose environments the module's zygote forks."""
    pools: list[FunctionEnvironments] = []

    def make(name: str, source: str, variables: dict[str, str] | None = None, **options: Any) -> FunctionEnvironments:
        timeout_s = options.pop("timeout_s", 5)
        pool = FunctionEnvironments(
            config_for(make_spec(name, source, timeout_s=timeout_s), variables), factory=zygote, **options
        )
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.stop()


def children() -> set[int]:
    """This process's children, zombies included."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    fields = stat.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                found.add(int(entry))
    return found


def test_a_forked_environment_is_what_a_fresh_worker_is(
    make_spec: Callable[..., FunctionSpec], zygote: EnvironmentFactory
) -> None:
    config = config_for(make_spec("Profile", PROFILE), {"FUNCTION_ONLY": "yes"})
    # One the zygote has, and no library read when preloaded: the fork must not keep it either.
    assert "PATH" in config.variables
    config = dataclasses.replace(config, variables={k: v for k, v in config.variables.items() if k != "PATH"})
    pools = [FunctionEnvironments(config, factory=zygote), FunctionEnvironments(config)]
    try:
        fork, fresh = (pool.invoke({}) for pool in pools)
        assert [forked(pool) for pool in pools] == [[True], [False]]
    finally:
        for pool in pools:
            pool.stop()

    assert fork.pop("frozen") > 10_000  # the preloaded libraries, out of the collector's reach
    assert fresh.pop("frozen") == 0
    zygote_sockets = {os.readlink(f"/proc/{zygote.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{zygote.pid}/fd")}
    fork_sockets, fresh_sockets = fork.pop("sockets"), fresh.pop("sockets")
    assert len(fork_sockets) == len(fresh_sockets) == 1  # X-Ray's emitter: the preload's, renewed in the fork
    assert not zygote_sockets & set(fork_sockets)  # its own, not the zygote's (nor, so, a sibling's)
    assert fork.pop("ppid") == fresh.pop("ppid") == os.getpid()  # both this process's own children
    assert fork.pop("pid") != fresh.pop("pid")
    for profile in (fork, fresh):  # set by Python's locale coercion at start-up under a C locale
        profile["environ"].pop("LC_CTYPE", None)
    assert fork == fresh
    assert fork["environ"]["FUNCTION_ONLY"] == "yes"
    assert "PATH" not in fork["environ"]
    assert fork["cwd"] == str(config.spec.code_dir)
    assert fork["path"][0] == str(config.spec.code_dir)
    assert (fork["threads"], fork["descriptors"], fork["gc_enabled"], fork["sigint_ignored"]) == (1, 7, True, True)


def test_each_forked_environment_has_its_own_functions_variables(forked_pool_for: PoolFactory) -> None:
    alpha = forked_pool_for("Alpha", SERVICE, {"POWERTOOLS_SERVICE_NAME": "alpha", "ONLY_ALPHA": "1"})
    beta = forked_pool_for("Beta", SERVICE, {"POWERTOOLS_SERVICE_NAME": "beta"})

    assert alpha.invoke({}) == {"service": "alpha", "only_alpha": "1"}
    assert beta.invoke({}) == {"service": "beta", "only_alpha": None}
    assert forked(alpha) == forked(beta) == [True]


def test_each_forked_environment_has_its_own_module_state(forked_pool_for: PoolFactory) -> None:
    first = forked_pool_for("First", MARKS, {"MARK": "first"})
    second = forked_pool_for("Second", MARKS, {"MARK": "second"})
    nothing = {"botocore": None, "json": None, "mine": None}

    assert first.invoke({}) == nothing
    assert first.invoke({}) == {"botocore": "first", "json": "first", "mine": "first"}  # warm: its own state
    assert second.invoke({}) == nothing  # neither the zygote nor a sibling holds the first one's marks
    # Two environments of one function at once: the new one starts from the zygote, not from its sibling.
    assert nothing in in_parallel(2, lambda: first.invoke({"sleep": 0.3}))
    assert forked(first) == [True, True]


def test_a_timed_out_forked_environment_is_killed_reaped_and_replaced(forked_pool_for: PoolFactory) -> None:
    pool = forked_pool_for("Stuck", COUNTER, timeout_s=1)
    first = pool.invoke({})

    with pytest.raises(FunctionTimeoutError):
        pool.invoke({"sleep": 30})
    after = pool.invoke({})

    assert not process_exists(first["pid"])  # killed by its pid, and reaped: no zombie
    assert (after["invocations"], forked(pool)) == (1, [True])
    assert after["pid"] != first["pid"]


def test_a_forked_environment_that_exits_is_reported_with_its_status_and_reaped(
    forked_pool_for: PoolFactory,
) -> None:
    pool = forked_pool_for("Exits", EXITS)
    pid = pool.invoke({})

    with pytest.raises(FunctionError) as raised:
        pool.invoke({"status": 3})

    assert (raised.value.error_type, raised.value.error_message) == (
        "Runtime.ExitError",
        "RequestId: exited with status 3",  # this process is its parent, so it knows
    )
    assert not process_exists(pid)
    assert pool.invoke({}) != pid


def test_a_function_the_preload_does_not_fit_gets_a_plain_environment(
    forked_pool_for: PoolFactory, zygote: EnvironmentFactory
) -> None:
    fallbacks = zygote.fallbacks
    # Powertools reads POWERTOOLS_DEBUG when imported, and the zygote imported it without.
    debug = forked_pool_for("Debug", COUNTER, {"POWERTOOLS_DEBUG": "true"})
    # A function that ships its own jwt must import that, not the zygote's.
    vendored = forked_pool_for("Vendored", VENDORED)
    write(vendored.config.spec.code_dir / "jwt.py", "VENDORED = True\n")

    assert debug.invoke({"variables": ["POWERTOOLS_DEBUG"]})["variables"] == {"POWERTOOLS_DEBUG": "true"}
    assert vendored.invoke({}) is True
    assert forked(debug) == forked(vendored) == [False]
    assert zygote.fallbacks == fallbacks + 2


def test_the_zygotes_death_stops_neither_its_environments_nor_new_ones(make_spec: Callable[..., FunctionSpec]) -> None:
    factory = environment_factory([], "zygote")
    assert factory is not None
    pool = FunctionEnvironments(config_for(make_spec("Survivor", COUNTER)), factory=factory)
    try:
        warm = pool.invoke({})
        dead = factory.pid
        assert dead is not None
        os.kill(dead, signal.SIGKILL)
        while process_state(dead) not in ("Z", None):  # dead, not yet reaped by the factory
            time.sleep(0.01)

        # The warm environment answers one call; the other needs a new environment, hence a new zygote.
        results = in_parallel(2, lambda: pool.invoke({"sleep": 0.3}))

        assert sorted(result["invocations"] for result in results) == [1, 2]
        assert warm["pid"] in {result["pid"] for result in results}
        assert forked(pool) == [True, True]
        assert factory.pid not in (None, dead)
        assert not process_exists(dead)  # the dead zygote was reaped
    finally:
        pool.stop()
        factory.stop()


def process_state(pid: int) -> str | None:
    """The process's state letter (R, S, Z...), None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return None


def test_stopping_the_environments_leaves_no_process_behind(make_spec: Callable[..., FunctionSpec]) -> None:
    before = children()
    factory = environment_factory([], "zygote")
    assert factory is not None
    pool = FunctionEnvironments(config_for(make_spec("Stopped", COUNTER)), factory=factory)
    environments = ExecutionEnvironments(functions={"Stopped": pool}, factory=factory)
    environments.start()
    busy = threading.Thread(target=in_parallel, args=(1, lambda: pool.invoke({"sleep": 30})))
    busy.start()
    deadline = time.monotonic() + 30
    while [env["state"] for env in pool.describe()["environments"]] != ["busy"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    idle = pool.invoke({})["pid"]  # a second environment, the first being busy
    assert [env["state"] for env in pool.describe()["environments"]] == ["idle", "busy"]
    zygote = factory.pid
    assert zygote is not None
    pids = {env["pid"] for env in pool.describe()["environments"]} | {zygote}
    assert environments.describe()["factory"]["mode"] == "zygote"
    assert idle in pids

    environments.stop()
    busy.join(timeout=5)

    assert [pid for pid in pids if process_exists(pid)] == []  # ended and reaped, zygote included
    assert children() <= before


def test_without_a_zygote_environments_start_as_plain_subprocesses(make_spec: Callable[..., FunctionSpec]) -> None:
    # A zygote that never finishes its preload in time: replaced, then given up on.
    factory = environment_factory([], "zygote", ready_timeout_s=0.01)
    assert factory is not None
    pool = FunctionEnvironments(config_for(make_spec("Plain", COUNTER)), factory=factory)
    try:
        results = in_parallel(3, lambda: pool.invoke({"sleep": 0.3}))

        assert sorted(result["invocations"] for result in results) == [1, 1, 1]
        assert forked(pool) == [False, False, False]
        assert factory.describe()["disabled"].startswith("gave up after 3 failed zygotes")
        assert factory.pid is None
    finally:
        pool.stop()
        factory.stop()


def test_the_start_mode_is_chosen_by_option_or_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert environment_factory([], "subprocess") is None
    monkeypatch.setenv("LOCAL_STACK_ENVIRONMENT_START", "subprocess")
    assert environment_factory([]) is None
    monkeypatch.setenv("LOCAL_STACK_ENVIRONMENT_START", "fork")
    with pytest.raises(ValueError, match="LOCAL_STACK_ENVIRONMENT_START must be one of zygote, subprocess"):
        environment_factory([])
