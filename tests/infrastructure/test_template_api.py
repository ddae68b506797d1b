"""The HTTP API's routes and the stack's outputs on the real template."""

import re
from typing import Any

import pytest

from dev.local_stack.template import HttpRoute
from tests.infrastructure.conftest import real_app, real_template, resources_of

ROUTES = real_app().routes
QUEUES = sorted(resources_of(real_template(), "AWS::SQS::Queue"))
# API Gateway path variables: a whole segment, a plain name, "+" only on the last one.
_VARIABLE = re.compile(r"\{(?P<name>[A-Za-z0-9_]+)(?P<greedy>\+?)\}")


def test_the_template_has_routes_to_check() -> None:
    assert ROUTES


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.route_key)
def test_every_route_path_has_well_formed_path_parameters(route: HttpRoute) -> None:
    assert route.path.startswith("/")
    segments = route.path.split("/")[1:] if route.path != "/" else []  # the root route has no segments
    names = []
    for position, segment in enumerate(segments):
        assert segment, f"{route.path} has an empty segment"
        if "{" not in segment and "}" not in segment:
            continue
        variable = _VARIABLE.fullmatch(segment)
        assert variable, f"{segment!r} in {route.path} must be a whole-segment {{name}}"
        assert not variable["greedy"] or position == len(segments) - 1, f"{route.path}: greedy variable not last"
        names.append(variable["name"])
    assert len(names) == len(set(names)), f"{route.path} repeats a path parameter"


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.route_key)
def test_every_route_method_is_one_api_gateway_accepts(route: HttpRoute) -> None:
    assert route.method in {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"}


def test_outputs_include_the_api_url_and_the_table_name(sam_template: dict[str, Any]) -> None:
    outputs = sam_template["Outputs"]

    assert "ApiUrl" in outputs
    assert "${HttpApi}" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["TableName"]["Value"] == {"Ref": "Table"}


@pytest.mark.parametrize("queue", QUEUES)
def test_outputs_include_every_queues_url(queue: str, sam_template: dict[str, Any]) -> None:
    values = [output["Value"] for output in sam_template["Outputs"].values()]

    assert {"Ref": queue} in values
