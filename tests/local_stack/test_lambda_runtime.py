"""LocalFunction and load_functions: handlers run as the Lambda Python runtime runs them."""

import os
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dev.local_stack.runtime import (
    EnvironmentConflictError,
    FunctionTimeoutError,
    HandlerImportError,
    LocalFunction,
    ResponseSerializationError,
    load_functions,
    merge_environments,
)
from dev.local_stack.stack import DeployedStack
from dev.local_stack.template import FunctionSpec, SamApp
from tests.local_stack.conftest import write

pytestmark = pytest.mark.usefixtures("process_state")

COUNTING = """
IMPORTS = 0
IMPORTS += 1

def handler(event, context):
    return {"imports": IMPORTS, "name": __name__}
"""
CONTEXT = """
import time

def handler(event, context):
    first = context.get_remaining_time_in_millis()
    time.sleep(0.2)
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": [first, context.get_remaining_time_in_millis()],
    }
"""


def test_the_handler_module_is_imported_once_on_the_first_invocation(
    make_spec: Callable[..., FunctionSpec],
) -> None:
    function = LocalFunction(make_spec("Counter", COUNTING))

    results = [function.invoke({}) for _ in range(3)]

    assert [result["imports"] for result in results] == [1, 1, 1]


def test_two_functions_both_named_app_py_are_separate_modules(make_spec: Callable[..., FunctionSpec]) -> None:
    first = LocalFunction(make_spec("First", COUNTING))
    second = LocalFunction(make_spec("Second", COUNTING.replace("IMPORTS += 1", "IMPORTS += 10")))

    one, ten = first.invoke({}), second.invoke({})

    assert (one["imports"], ten["imports"]) == (1, 10)
    assert (one["name"], ten["name"]) == ("_local_stack_First", "_local_stack_Second")


def test_the_context_carries_lambdas_attributes_and_counts_down_from_the_timeout(
    make_spec: Callable[..., FunctionSpec],
) -> None:
    function = LocalFunction(
        make_spec("Ctx", CONTEXT, timeout_s=3, memory_mb=512),
        function_name="pushlane-Ctx-ABC",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:pushlane-Ctx-ABC",
        log_group_name="pushlane-CtxLogGroup-XYZ",
    )

    first, second = function.invoke({}), function.invoke({})

    assert first["function_name"] == "pushlane-Ctx-ABC"
    assert first["function_version"] == "$LATEST"
    assert first["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:pushlane-Ctx-ABC"
    assert first["memory_limit_in_mb"] == 512
    assert first["log_group_name"] == "pushlane-CtxLogGroup-XYZ"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", first["log_stream_name"])
    assert first["log_stream_name"] == second["log_stream_name"]  # one execution environment
    assert first["aws_request_id"] != second["aws_request_id"]
    before, after = first["remaining"]
    assert 2500 < before <= 3000
    assert 150 <= before - after <= 1000


def test_the_handler_gets_a_copy_of_the_event_as_json_would_carry_it(
    make_spec: Callable[..., FunctionSpec],
) -> None:
    function = LocalFunction(make_spec("Mutator", "def handler(event, context):\n    event['x'].append(2)\n"))
    event = {"x": [1], "t": (1, 2)}

    function.invoke(event)

    assert event == {"x": [1], "t": (1, 2)}


def test_a_decimal_result_is_returned_as_a_json_number_as_lambda_does(
    make_spec: Callable[..., FunctionSpec],
) -> None:
    source = """
        from decimal import Decimal

        def handler(event, context):
            return {"n": Decimal("3"), "f": Decimal("1.5")}
    """
    function = LocalFunction(make_spec("Decimals", source))

    assert function.invoke({}) == {"n": 3, "f": 1.5}


def test_a_result_lambda_cannot_serialize_fails_the_invocation(
    make_spec: Callable[..., FunctionSpec],
) -> None:
    function = LocalFunction(make_spec("Setter", "def handler(event, context):\n    return {'s': {1, 2}}\n"))

    with pytest.raises(ResponseSerializationError, match="Setter returned a value Lambda cannot serialize"):
        function.invoke({})


def test_an_invocation_that_overruns_the_timeout_fails(make_spec: Callable[..., FunctionSpec]) -> None:
    source = "import time\n\ndef handler(event, context):\n    time.sleep(1.1)\n    return 'late'\n"
    function = LocalFunction(make_spec("Sleepy", source, timeout_s=1))

    with pytest.raises(FunctionTimeoutError, match="over its 1 s timeout"):
        function.invoke({})


def test_a_failed_import_is_retried_on_the_next_invocation(
    make_spec: Callable[..., FunctionSpec], tmp_path: Path
) -> None:
    spec = make_spec("Flaky", "raise RuntimeError('not yet')\n")
    function = LocalFunction(spec)
    with pytest.raises(RuntimeError, match="not yet"):
        function.invoke({})

    write(spec.code_dir / "app.py", "def handler(event, context):\n    return 'ready'\n")

    assert function.invoke({}) == "ready"


def test_a_handler_that_does_not_exist_is_a_clear_import_error(
    make_spec: Callable[..., FunctionSpec],
) -> None:
    function = LocalFunction(make_spec("NoHandler", "def other(event, context):\n    return 1\n"))

    with pytest.raises(HandlerImportError, match=r"NoHandler: .*app\.py has no callable 'handler'"):
        function.invoke({})


def test_layer_folders_are_importable_from_the_handler_and_the_code_folder_only_while_importing(
    make_spec: Callable[..., FunctionSpec], tmp_path: Path
) -> None:
    layer = tmp_path / "layers" / "shared"
    write(layer / "shared_words.py", "WORD = 'from the layer'\n")
    spec = make_spec(
        "UsesLayer",
        "import shared_words\n\ndef handler(event, context):\n    return shared_words.WORD\n",
        layer_dirs=(layer,),
    )

    assert LocalFunction(spec).invoke({}) == "from the layer"
    assert str(layer) in sys.path
    assert str(spec.code_dir) not in sys.path


def test_environments_that_agree_merge_into_one() -> None:
    merged = merge_environments({"A": {"TABLE": "t", "ONLY_A": "1"}, "B": {"TABLE": "t"}})

    assert merged == {"TABLE": "t", "ONLY_A": "1"}


def test_two_functions_resolving_one_variable_differently_is_refused_with_both_values_named() -> None:
    with pytest.raises(EnvironmentConflictError, match=r"TABLE is 't1' for A but 't2' for B"):
        merge_environments({"A": {"TABLE": "t1"}, "B": {"TABLE": "t2"}})


def _stack(environments: dict[str, dict[str, str]]) -> DeployedStack:
    return DeployedStack(
        stack_name="s",
        outputs={},
        physical_ids={"Fn": "s-Fn-1", "FnLogs": "s-FnLogs-1"},
        function_environments=environments,
        queue_urls={},
        queue_visibility_timeouts={},
        queue_arns={},
        function_names={"Fn": "s-Fn-1"},
        function_arns={"Fn": "arn:aws:lambda:us-east-1:123456789012:function:s-Fn-1"},
        region="us-east-1",
    )


def test_load_functions_applies_the_environment_then_the_overrides_and_names_functions_as_deployed(
    make_spec: Callable[..., FunctionSpec],
) -> None:
    spec = make_spec("Fn", "import os\n\ndef handler(event, context):\n    return os.environ['TABLE']\n")
    cloudformation = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"LoggingConfig": {"LogGroup": {"Ref": "FnLogs"}}},
            }
        }
    }
    app = SamApp(template={}, cloudformation=cloudformation, functions={"Fn": spec}, routes=[], sqs_sources=[])

    functions = load_functions(app, _stack({"Fn": {"TABLE": "s-Table-1", "TRACE": "on"}}), {"TRACE": "off"})

    assert (os.environ["TABLE"], os.environ["TRACE"]) == ("s-Table-1", "off")
    assert functions["Fn"].function_name == "s-Fn-1"
    assert functions["Fn"].log_group_name == "s-FnLogs-1"
    assert functions["Fn"].invoke({}) == "s-Table-1"


def test_load_functions_refuses_conflicting_environments_before_touching_os_environ(
    make_spec: Callable[..., FunctionSpec],
) -> None:
    app = SamApp(template={}, cloudformation={"Resources": {}}, functions={}, routes=[], sqs_sources=[])
    os.environ.pop("TABLE", None)

    with pytest.raises(EnvironmentConflictError):
        load_functions(app, _stack({"A": {"TABLE": "1"}, "B": {"TABLE": "2"}}))

    assert "TABLE" not in os.environ


def test_invocations_run_concurrently_not_one_at_a_time(make_spec: Callable[..., FunctionSpec]) -> None:
    function = LocalFunction(
        make_spec("Parallel", "import time\n\ndef handler(event, context):\n    time.sleep(0.3)\n")
    )
    function.invoke({})  # cold start out of the way
    threads = [threading.Thread(target=function.invoke, args=({},)) for _ in range(4)]

    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert time.monotonic() - started < 0.9
