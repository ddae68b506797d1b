"""Run functions' handlers in this process, the way the Lambda Python runtime runs them.

This is the in-process runtime the tests use (moto's ``mock_aws`` lives in one
process and cannot be shared with others); the served stack runs each function
in execution environments of its own (``dev.local_stack.environments``). Both offer
the one ``Invocable`` interface the gateway and the pollers call.

Environment variables are process-wide and every handler runs in this one
process, so ``load_functions`` writes all functions' resolved environments into
``os.environ`` before any handler is imported, and refuses with
``EnvironmentConflictError`` when two functions resolve the same variable to
different values. A template that keeps its environment in Globals (as
pushlane's does) always agrees with itself.

Other differences from Lambda, on purpose:

- A ``LocalFunction`` is one execution environment whose invocations may run
  concurrently in threads, so module-level state is shared between them (the
  gateway serialises HTTP invocations of one function for that reason).
- The timeout is checked when the handler returns (a thread cannot be killed):
  an invocation that overran fails with ``FunctionTimeoutError`` as on Lambda,
  only later.
- Lambda's reserved variables (``AWS_LAMBDA_FUNCTION_NAME``, ``LAMBDA_TASK_ROOT``,
  ...) are not set: they differ per function, and Powertools reads them to
  decide it runs inside Lambda (and would then talk to X-Ray).
- Modules beside a handler file are imported under their own names, shared by
  all functions: two functions must not ship different modules of one name.

This module imports only the standard library at run time: an execution
environment's worker imports it before the handler, and should cost no more.
"""

from __future__ import annotations

import decimal
import importlib.util
import json
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from dev.local_stack.stack import DeployedStack
    from dev.local_stack.template import FunctionSpec, SamApp

Handler = Callable[[Any, "LocalLambdaContext"], Any]

_DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account


class EnvironmentConflictError(ValueError):
    """Two functions need different values for one (process-wide) environment variable."""


class HandlerImportError(ImportError):
    """The handler named in the template cannot be found."""


class FunctionTimeoutError(RuntimeError):
    """The handler ran longer than the function's timeout (Lambda would have cut it off)."""


class ResponseSerializationError(TypeError):
    """The handler returned something Lambda cannot turn into JSON (Runtime.MarshalError)."""


class Invocable(Protocol):
    """A function the gateway and the pollers can invoke: in-process, or in execution environments."""

    def invoke(self, event: Mapping[str, Any]) -> Any:
        """Run the handler on a JSON copy of ``event``; its result as JSON would carry it, or raise."""
        ...


class LocalLambdaContext:
    """The context object a handler receives: the attributes Powertools and handlers read."""

    def __init__(
        self,
        *,
        function_name: str,
        invoked_function_arn: str,
        memory_limit_in_mb: int,
        log_group_name: str,
        log_stream_name: str,
        timeout_s: float,
        function_version: str = "$LATEST",
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout, never negative."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalFunction:
    """One function of the template, invoked in-process."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        function_name: str | None = None,
        function_arn: str | None = None,
        log_group_name: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.spec = spec
        self.function_name = function_name or spec.logical_id
        self.function_arn = (
            function_arn or f"arn:aws:lambda:{region}:{_DEFAULT_ACCOUNT_ID}:function:{self.function_name}"
        )
        self.log_group_name = log_group_name or f"/aws/lambda/{self.function_name}"
        self.module_name = f"_local_stack_{spec.logical_id}"
        self._handler: Handler | None = None
        self._log_stream_name = ""
        self._cold_start_lock = threading.Lock()

    def invoke(self, event: Mapping[str, Any]) -> Any:
        """Call the handler with a JSON copy of ``event``; return its result as JSON would carry it.

        The first call imports the handler module (the cold start); an import
        that fails is tried again on the next call, as Lambda does.
        """
        handler = self._load_handler()
        context = LocalLambdaContext(
            function_name=self.function_name,
            invoked_function_arn=self.function_arn,
            memory_limit_in_mb=self.spec.memory_mb,
            log_group_name=self.log_group_name,
            log_stream_name=self._log_stream_name,
            timeout_s=self.spec.timeout_s,
        )
        started = time.monotonic()
        result = handler(json.loads(json.dumps(event)), context)
        elapsed = time.monotonic() - started
        if elapsed > self.spec.timeout_s:
            raise FunctionTimeoutError(
                f"{self.spec.logical_id} ran {elapsed:.1f} s, over its {self.spec.timeout_s} s timeout"
            )
        return json.loads(serialize_result(self.spec.logical_id, result))

    def _load_handler(self) -> Handler:
        with self._cold_start_lock:
            if self._handler is None:
                self._handler = self._import_handler()
                self._log_stream_name = log_stream_name()
            return self._handler

    def _import_handler(self) -> Handler:
        module_path, _, attribute = self.spec.handler.rpartition(".")
        source = code_path(self.spec)
        if not module_path or not source.is_file():
            raise HandlerImportError(f"{self.spec.logical_id}: no module for handler {self.spec.handler!r} ({source})")
        # Lambda's sys.path: the function's folder, then the layers, then the runtime's packages.
        for layer_dir in reversed(self.spec.layer_dirs):
            if str(layer_dir) not in sys.path:
                sys.path.insert(0, str(layer_dir))
        code_dir = str(self.spec.code_dir)
        sys.path.insert(0, code_dir)
        # Every function's file is called app.py: a unique module name keeps them apart in sys.modules,
        # and registering it before running lets pydantic and dataclasses find the module by name.
        module_spec = importlib.util.spec_from_file_location(self.module_name, source)
        if module_spec is None or module_spec.loader is None:
            raise HandlerImportError(f"{self.spec.logical_id}: cannot import {source}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[self.module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[self.module_name]
            raise
        finally:
            sys.path.remove(code_dir)
        handler = getattr(module, attribute, None)
        if not callable(handler):
            raise HandlerImportError(f"{self.spec.logical_id}: {source} has no callable {attribute!r}")
        result: Handler = handler
        return result


def serialize_result(logical_id: str, result: Any) -> str:
    """A handler's result as the JSON text Lambda sends back; ResponseSerializationError if it cannot be."""
    try:
        return json.dumps(result, default=_lambda_json_default)
    except (TypeError, ValueError) as error:
        raise ResponseSerializationError(f"{logical_id} returned a value Lambda cannot serialize: {error}") from error


def log_stream_name() -> str:
    """A new log stream name of Lambda's shape: one stream per execution environment."""
    return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}"


def _lambda_json_default(value: Any) -> Any:
    """Lambda's Python runtime writes Decimal as a JSON number (boto3's DynamoDB reads return Decimal)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def merge_environments(environments: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """One process environment for all functions; EnvironmentConflictError if two disagree."""
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for function, variables in environments.items():
        for name, value in variables.items():
            if name in merged and merged[name] != value:
                raise EnvironmentConflictError(
                    f"{name} is {merged[name]!r} for {owner[name]} but {value!r} for {function}; "
                    "all handlers share this process's environment, so set it in Globals "
                    "or give each function its own variable name"
                )
            merged[name] = value
            owner.setdefault(name, function)
    return merged


def _log_group_name(app: SamApp, stack: DeployedStack, logical_id: str) -> str | None:
    """The function's LoggingConfig.LogGroup (its physical name when it is a Ref), else Lambda's default."""
    properties = app.cloudformation["Resources"][logical_id].get("Properties", {})
    log_group = properties.get("LoggingConfig", {}).get("LogGroup")
    if isinstance(log_group, dict) and log_group.get("Ref") in stack.physical_ids:
        return stack.physical_ids[log_group["Ref"]]
    return log_group if isinstance(log_group, str) else None


@dataclass(frozen=True)
class FunctionIdentity:
    """Who a deployed function is to its handler: the names its context and logs carry."""

    name: str
    arn: str
    log_group_name: str


def function_identity(app: SamApp, stack: DeployedStack, logical_id: str) -> FunctionIdentity:
    """The deployed name, ARN and log group of a function, with Lambda's defaults where the stack has none."""
    name = stack.function_names.get(logical_id) or logical_id
    arn = stack.function_arns.get(logical_id) or f"arn:aws:lambda:{stack.region}:{_DEFAULT_ACCOUNT_ID}:function:{name}"
    log_group = _log_group_name(app, stack, logical_id) or f"/aws/lambda/{name}"
    return FunctionIdentity(name, arn, log_group)


def load_functions(
    app: SamApp,
    stack: DeployedStack,
    env_overrides: Mapping[str, str] = {},
) -> dict[str, LocalFunction]:
    """The app's functions, ready to invoke, with their environment applied to ``os.environ``.

    ``env_overrides`` are applied after the template's values (the local stack
    uses them to switch off X-Ray and CloudWatch metrics).
    """
    os.environ.update(merge_environments(stack.function_environments))
    os.environ.update(env_overrides)
    functions = {}
    for logical_id, spec in app.functions.items():
        identity = function_identity(app, stack, logical_id)
        functions[logical_id] = LocalFunction(
            spec, function_name=identity.name, function_arn=identity.arn, log_group_name=identity.log_group_name
        )
    return functions


def code_path(spec: FunctionSpec) -> Path:
    """The file the handler is imported from."""
    module_path = spec.handler.rpartition(".")[0]
    return spec.code_dir / (module_path.replace(".", "/") + ".py")


def forget_container_state() -> None:
    """A fresh execution environment for pushlane's handlers: the layer's composition root forgets every
    part it built (each deployment in one process starts clean)."""
    from push_core import assembly  # the layer is importable once loaded

    assembly.reset()
