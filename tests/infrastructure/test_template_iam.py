"""Least privilege, checked on what the SAM transform produces (the roles CloudFormation will create)."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from dev.local_stack.template import MANAGED_POLICIES
from tests.infrastructure.conftest import real_app, resources_of

ROLES = resources_of(real_app().cloudformation, "AWS::IAM::Role")


def _statements(cloudformation: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) for every statement of every inline policy in the transformed template."""
    for logical_id, properties in resources_of(cloudformation, "AWS::IAM::Role").items():
        for policy in properties.get("Policies", []):
            for index, statement in enumerate(policy["PolicyDocument"]["Statement"]):
                yield f"{logical_id}/{policy['PolicyName']}#{index}", statement
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for logical_id, properties in resources_of(cloudformation, kind).items():
            for index, statement in enumerate(properties["PolicyDocument"]["Statement"]):
                yield f"{logical_id}#{index}", statement


STATEMENTS = list(_statements(real_app().cloudformation))


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a value, intrinsic functions included (a Fn::Sub can hide a '*')."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_every_function_has_its_own_role_with_inline_statements_to_check() -> None:
    functions = resources_of(real_app().cloudformation, "AWS::Lambda::Function")

    assert {properties["Role"]["Fn::GetAtt"][0] for properties in functions.values()} == set(ROLES)
    assert len(STATEMENTS) >= len(ROLES)


@pytest.mark.parametrize(("where", "statement"), STATEMENTS, ids=[where for where, _ in STATEMENTS])
def test_no_statement_grants_a_wildcard_action(where: str, statement: dict[str, Any]) -> None:
    assert "NotAction" not in statement
    actions = list(_strings(statement["Action"]))

    assert actions
    assert [action for action in actions if "*" in action] == [], where


# The one reviewed exception: secrets made at run time (provider credentials) get a random ARN suffix, so they
# can only be named by this deployment's own prefix; the '*' never reaches beyond that prefix.
STACK_SECRETS = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:pushlane/${AWS::StackName}/*"
)


def _is_stack_secret_prefix(resource: Any, actions: list[str]) -> bool:
    return resource == {"Fn::Sub": STACK_SECRETS} and all(a.startswith("secretsmanager:") for a in actions)


@pytest.mark.parametrize(("where", "statement"), STATEMENTS, ids=[where for where, _ in STATEMENTS])
def test_no_statement_grants_on_a_wildcard_resource(where: str, statement: dict[str, Any]) -> None:
    assert "NotResource" not in statement
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    actions = list(_strings(statement["Action"]))

    assert resources
    wildcards = [
        json.dumps(r)
        for r in resources
        if any("*" in text for text in _strings(r)) and not _is_stack_secret_prefix(r, actions)
    ]
    assert wildcards == [], f"{where} grants {statement['Action']} on {wildcards}"


def test_the_secrets_exception_is_only_this_stacks_prefix() -> None:
    scoped = [where for where, s in STATEMENTS if s["Resource"] == {"Fn::Sub": STACK_SECRETS}]
    assert scoped, "the credentials statements moved: review this exception"
    assert STACK_SECRETS.endswith(":secret:pushlane/${AWS::StackName}/*")
    assert STACK_SECRETS.count("*") == 1


def test_the_only_managed_policies_are_lambda_logging_x_ray_and_sqs_polling() -> None:
    attached = {arn for properties in ROLES.values() for arn in properties.get("ManagedPolicyArns", [])}

    assert attached <= set(MANAGED_POLICIES.values())
    assert "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole" in attached
