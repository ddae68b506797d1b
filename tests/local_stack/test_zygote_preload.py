"""What the zygote preloads besides the libraries: the layers every function shares, and the AWS SDK's data.

Preloaded or not, an environment must see what a fresh import would give it: its own module state, its
own variables, its own copy of a module it ships, and no module its path does not hold.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dev.local_stack.environment_factory import EnvironmentFactory
from dev.local_stack.environments import EnvironmentConfig, FunctionEnvironments, environment_factory
from dev.local_stack.template import FunctionSpec
from tests.local_stack.conftest import config_for, forked, write

Stack = tuple[EnvironmentFactory, dict[str, FunctionEnvironments]]
StackOf = Callable[..., Stack]

# A layer module that says where it was imported, reads a variable at import and keeps module state.
LAYER = """
import os

IMPORTED_BY = os.getpid()
GREETING = os.environ.get("LAYER_GREETING")
CALLS = []
"""
USES_LAYER = """
import os

import shared_layer


def handler(event, context):
    shared_layer.CALLS.append(event.get("call"))
    return {
        "pid": os.getpid(),
        "imported_by": shared_layer.IMPORTED_BY,
        "greeting": shared_layer.GREETING,
        "calls": list(shared_layer.CALLS),
        "file": shared_layer.__file__,
    }
"""
NO_LAYER = """
def handler(event, context):
    try:
        import shared_layer  # noqa: F401
    except ModuleNotFoundError as error:
        return str(error)
    return "imported"
"""
# A client built from the default session the zygote prepared: the function's own region, not the zygote's.
SDK = """
import boto3


def handler(event, context):
    prepared = boto3.DEFAULT_SESSION is not None
    return {"prepared": prepared, "region": boto3.client("sqs").meta.region_name}
"""


@pytest.fixture
def layer(tmp_path: Path) -> Path:
    folder = tmp_path / "layers" / "shared"
    write(folder / "shared_layer" / "__init__.py", LAYER)
    return folder


@pytest.fixture
def stack_of(fake_aws: None) -> Iterator[StackOf]:
    """A zygote for these functions, as a stack makes one, and a pool for each of them."""
    started: list[Stack] = []

    def make(configs: dict[str, EnvironmentConfig], extra: dict[str, EnvironmentConfig] | None = None) -> Stack:
        factory = environment_factory(configs.values(), "zygote")
        if factory is None:
            pytest.skip("no fork on this platform")
        pools = {
            name: FunctionEnvironments(config, factory=factory) for name, config in {**configs, **(extra or {})}.items()
        }
        started.append((factory, pools))
        return factory, pools

    yield make
    for factory, pools in started:
        for pool in pools.values():
            pool.stop()
        factory.stop()


def test_the_shared_layer_is_imported_once_by_the_zygote_yet_each_environment_keeps_its_own_state(
    make_spec: Callable[..., FunctionSpec], layer: Path, stack_of: StackOf
) -> None:
    variables = {"LAYER_GREETING": "hello"}
    configs = {
        name: config_for(make_spec(name, USES_LAYER, layer_dirs=(layer,)), variables) for name in ("Alpha", "Beta")
    }
    factory, pools = stack_of(configs)

    alpha_first = pools["Alpha"].invoke({"call": "a1"})
    alpha_second = pools["Alpha"].invoke({"call": "a2"})
    beta = pools["Beta"].invoke({"call": "b1"})

    # Imported in the zygote, not in the environments...
    assert factory.pid == alpha_first["imported_by"] == beta["imported_by"] != alpha_first["pid"]
    assert alpha_first["file"] == str(layer / "shared_layer" / "__init__.py")
    assert alpha_first["greeting"] == beta["greeting"] == "hello"
    # ...yet its state is each environment's own: warm in Alpha, fresh in Beta
    assert (alpha_first["calls"], alpha_second["calls"], beta["calls"]) == (["a1"], ["a1", "a2"], ["b1"])
    assert forked(pools["Alpha"]) == forked(pools["Beta"]) == [True]


def test_a_function_the_preloaded_layer_does_not_fit_imports_its_own(
    make_spec: Callable[..., FunctionSpec],
    layer: Path,
    tmp_path: Path,
    stack_of: StackOf,
) -> None:
    shared = {
        name: config_for(make_spec(name, USES_LAYER, layer_dirs=(layer,)), {"LAYER_GREETING": "hello"})
        for name in ("Alpha", "Beta")
    }
    # A function whose variable the layer read at import differs, one that ships its own copy ahead of
    # the layer, and one without the layer at all
    other_greeting = config_for(make_spec("Greeting", USES_LAYER, layer_dirs=(layer,)), {"LAYER_GREETING": "hi"})
    vendored_spec = make_spec("Vendored", USES_LAYER, layer_dirs=(layer,))
    write(vendored_spec.code_dir / "shared_layer.py", LAYER)
    vendored = config_for(vendored_spec, {"LAYER_GREETING": "hello"})
    without = config_for(make_spec("Without", NO_LAYER), {"LAYER_GREETING": "hello"})
    factory, pools = stack_of(shared, {"Greeting": other_greeting, "Vendored": vendored, "Without": without})

    greeting = pools["Greeting"].invoke({})
    own_copy = pools["Vendored"].invoke({})
    missing = pools["Without"].invoke({})

    assert (greeting["greeting"], greeting["imported_by"]) == ("hi", greeting["pid"])
    assert (own_copy["file"], own_copy["imported_by"]) == (
        str(vendored_spec.code_dir / "shared_layer.py"),
        own_copy["pid"],
    )
    assert missing == "No module named 'shared_layer'"  # as on Lambda: not on its path, not importable
    assert forked(pools["Greeting"]) == forked(pools["Vendored"]) == forked(pools["Without"]) == [False]
    assert factory.fallbacks == 3


def test_clients_from_the_preloaded_sdk_session_take_the_functions_own_region(
    make_spec: Callable[..., FunctionSpec], stack_of: StackOf
) -> None:
    configs = {
        "East": config_for(make_spec("East", SDK), {}),
        "West": config_for(make_spec("West", SDK), {"AWS_DEFAULT_REGION": "us-west-2", "AWS_REGION": "us-west-2"}),
    }
    _, pools = stack_of(configs)

    assert pools["East"].invoke({}) == {"prepared": True, "region": "us-east-1"}
    assert pools["West"].invoke({}) == {"prepared": True, "region": "us-west-2"}
    assert forked(pools["East"]) == forked(pools["West"]) == [True]
