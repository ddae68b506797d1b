"""The inside of one execution environment: a process that imports one handler, then runs one event at a time.

``dev.local_stack.environments`` starts it with ``python -I`` (no PYTHON* variables,
no user site, no current folder on sys.path), or has the stack's zygote fork it in
that same state (``dev.local_stack.environment_factory``), with two pipe descriptors: it reads
requests from the first and writes replies to the second, one JSON object per
line, so the handler keeps stdout and stderr for its logs as on Lambda. The
first request describes the function; the reply says the cold start is done,
or carries the init error. Every later request is ``{"event": ...}``, answered
``{"result": ...}`` or with Lambda's error shape (``errorType``,
``errorMessage``, ``stackTrace``). End of input ends the process.

sys.path is Lambda's: the function's folder, then its layers, then the
runtime's packages; the handler module is imported under its own name
(``app``), since it is alone in this process.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

from dev.local_stack.runtime import LocalLambdaContext, ResponseSerializationError, log_stream_name, serialize_result

Handler = Callable[[Any, LocalLambdaContext], Any]


def _error(error_type: str, error: BaseException) -> dict[str, Any]:
    """Lambda's report of a failed invocation, with the traceback logged as the runtime logs it."""
    message = str(error)
    print(f"[ERROR] {error_type}: {message}", file=sys.stderr)
    traceback.print_exception(error, file=sys.stderr)
    return {
        "errorType": error_type,
        "errorMessage": message,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def _import_handler(config: dict[str, Any]) -> Handler:
    """The cold start: Lambda's sys.path, then the handler's module by its own name (raises as the runtime does)."""
    sys.path[0:0] = [config["code_dir"], *config["layer_dirs"]]
    module_name, _, attribute = str(config["handler"]).rpartition(".")
    module = importlib.import_module(module_name)
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise _HandlerNotFound(f"Handler '{attribute}' missing on module '{module_name}'")
    result: Handler = handler
    return result


class _HandlerNotFound(Exception):
    pass


def _init_error(config: dict[str, Any], error: BaseException) -> dict[str, Any]:
    module_name = str(config["handler"]).rpartition(".")[0]
    if isinstance(error, _HandlerNotFound):
        return _error("Runtime.HandlerNotFound", error)
    if isinstance(error, SyntaxError):
        return _error("Runtime.UserCodeSyntaxError", error)
    # The Python runtime reports any other failure while importing as an import error of the module.
    report = _error("Runtime.ImportModuleError", error)
    report["errorMessage"] = f"Unable to import module '{module_name}': {error}"
    return report


def _reply(responses: IO[str], message: dict[str, Any] | str) -> None:
    responses.write(message if isinstance(message, str) else json.dumps(message))
    responses.write("\n")
    responses.flush()


def _invoke(handler: Handler, config: dict[str, Any], stream: str, event: Any) -> str:
    context = LocalLambdaContext(
        function_name=config["function_name"],
        invoked_function_arn=config["function_arn"],
        memory_limit_in_mb=config["memory_mb"],
        log_group_name=config["log_group_name"],
        log_stream_name=stream,
        timeout_s=config["timeout_s"],
    )
    try:
        result = handler(event, context)
    except Exception as error:  # noqa: BLE001 - the handler's failure is the invocation's answer, as on Lambda
        return json.dumps(_error(type(error).__name__, error))
    try:
        return '{"result": ' + serialize_result(config["logical_id"], result) + "}"
    except ResponseSerializationError as error:
        return json.dumps(_error("Runtime.MarshalError", error))
    finally:
        sys.stdout.flush()  # the invocation's logs before its answer, as a log stream shows them


def main(argv: list[str]) -> int:
    """Serve one function's invocations over the pipes named in ``argv`` until the parent closes them."""
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when an environment ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = os.fdopen(int(argv[0]), "r", encoding="utf-8")
    responses = os.fdopen(int(argv[1]), "w", encoding="utf-8")
    config = json.loads(requests.readline() or "null")
    if config is None:
        return 0
    started = time.monotonic()
    try:
        handler = _import_handler(config)
    except Exception as error:  # noqa: BLE001 - reported as the init error; Lambda then starts a new environment
        _reply(responses, _init_error(config, error))
        return 1
    _reply(responses, {"ready": True, "init_ms": round((time.monotonic() - started) * 1000)})
    stream = log_stream_name()
    for line in requests:
        _reply(responses, _invoke(handler, config, stream, json.loads(line)["event"]))
    return 0
