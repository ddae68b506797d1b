"""The real template.yaml, as written and as the SAM transform turns it into CloudFormation."""

from functools import cache
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from dev.local_stack.template import REPO_ROOT, SamApp, load_sam_app

TEMPLATE_PATH = REPO_ROOT / "template.yaml"
# Any well-formed value: these tests read the template's shape, not a deployment's secrets.
PARAMETERS = {"AdminKeySha256": "0" * 64}


@cache
def real_app() -> SamApp:
    """The template as the local stack and `sam deploy` read it (Globals applied by the transform)."""
    return load_sam_app(TEMPLATE_PATH, PARAMETERS, region="us-east-1")


@cache
def real_template() -> dict[str, Any]:
    """template.yaml as written."""
    template: dict[str, Any] = yaml_parse(TEMPLATE_PATH.read_text(encoding="utf-8"))
    return template


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Logical id → Properties of every resource of one type."""
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == kind
    }


@pytest.fixture
def sam_app() -> SamApp:
    return real_app()


@pytest.fixture
def sam_template() -> dict[str, Any]:
    return real_template()


@pytest.fixture
def cloudformation() -> dict[str, Any]:
    """The transformed template: what CloudFormation actually creates."""
    return real_app().cloudformation
