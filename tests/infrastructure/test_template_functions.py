"""Functions and the layer on the real template: runtime, logging, packaging, timeouts."""

from typing import Any

import pytest

from dev.local_stack.template import REPO_ROOT, SamApp
from tests.infrastructure.conftest import real_app, real_template, resources_of

FUNCTIONS = resources_of(real_template(), "AWS::Serverless::Function")
LAYERS = {
    logical_id: resource
    for logical_id, resource in real_template()["Resources"].items()
    if resource["Type"] == "AWS::Serverless::LayerVersion"
}
API_GATEWAY_INTEGRATION_TIMEOUT_S = 30


def test_globals_set_python_3_13_on_arm64(sam_template: dict[str, Any]) -> None:
    function_globals = sam_template["Globals"]["Function"]

    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_runs_python_3_13_on_arm64_once_globals_are_applied(
    logical_id: str, cloudformation: dict[str, Any]
) -> None:
    properties = cloudformation["Resources"][logical_id]["Properties"]

    assert (properties["Runtime"], properties["Architectures"]) == ("python3.13", ["arm64"])


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_logs_to_its_own_log_group_with_a_retention(
    logical_id: str, sam_template: dict[str, Any]
) -> None:
    log_group = FUNCTIONS[logical_id].get("LoggingConfig", {}).get("LogGroup")

    assert isinstance(log_group, dict), f"{logical_id} has no LoggingConfig.LogGroup"
    assert set(log_group) == {"Ref"}
    log_groups = resources_of(sam_template, "AWS::Logs::LogGroup")
    assert log_group["Ref"] in log_groups
    assert "RetentionInDays" in log_groups[log_group["Ref"]]
    others = {
        other: properties.get("LoggingConfig", {}).get("LogGroup")
        for other, properties in FUNCTIONS.items()
        if other != logical_id
    }
    assert log_group not in others.values(), f"{logical_id} shares its log group"


def test_the_template_has_a_layer_to_check() -> None:
    assert LAYERS


@pytest.mark.parametrize("logical_id", sorted(LAYERS))
def test_every_layer_is_built_by_sam_for_the_functions_runtime_and_architecture(logical_id: str) -> None:
    metadata = LAYERS[logical_id].get("Metadata", {})

    # makefile: layers/push_core/Makefile builds for python3.13 (tests/infrastructure/test_layer_build.py)
    assert metadata.get("BuildMethod") == "makefile"
    assert metadata.get("BuildArchitecture") == "arm64"


@pytest.mark.parametrize("logical_id", sorted(LAYERS))
def test_every_layer_folder_holds_packages_and_requirements_not_a_literal_python_folder(
    logical_id: str,
) -> None:
    # The build writes the layer's python/ folder (build_layer.py): a python/ folder of our own here would
    # be a second copy of the code, never deployed and easily stale.
    content = REPO_ROOT / LAYERS[logical_id]["Properties"]["ContentUri"]

    assert content.is_dir()
    assert not (content / "python").exists()
    assert (content / "requirements.txt").is_file()
    assert any((child / "__init__.py").is_file() for child in content.iterdir())


def test_the_push_core_layer_folder_contains_the_push_core_package() -> None:
    content = REPO_ROOT / LAYERS["PushCoreLayer"]["Properties"]["ContentUri"]

    assert (content / "push_core" / "__init__.py").is_file()


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_uses_the_push_core_layer(logical_id: str, sam_app: SamApp) -> None:
    assert REPO_ROOT / "layers" / "push_core" in sam_app.functions[logical_id].layer_dirs


@pytest.mark.parametrize("function", sorted({route.function for route in real_app().routes}))
def test_functions_behind_http_routes_finish_within_api_gateways_30_s_integration_timeout(
    function: str, sam_app: SamApp
) -> None:
    assert sam_app.functions[function].timeout_s <= API_GATEWAY_INTEGRATION_TIMEOUT_S


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_has_its_handler_file(logical_id: str, sam_app: SamApp) -> None:
    spec = sam_app.functions[logical_id]
    module = spec.handler.rpartition(".")[0]

    assert (spec.code_dir / f"{module}.py").is_file()
