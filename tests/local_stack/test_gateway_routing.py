"""Router: route selection as API Gateway HTTP API does it."""

import pytest

from dev.local_stack.gateway import Router
from dev.local_stack.template import HttpRoute

# API Gateway's own example set, plus the shapes pushlane uses.
ROUTES = [
    HttpRoute("GET", "/pets/dog/1", "Exact"),
    HttpRoute("GET", "/pets/dog/{id}", "Variable"),
    HttpRoute("GET", "/pets/{proxy+}", "PetsGreedy"),
    HttpRoute("ANY", "/{proxy+}", "AnyGreedy"),
    HttpRoute("POST", "/v1/apps", "CreateApp"),
    HttpRoute("GET", "/v1/apps/{app_id}", "GetApp"),
    HttpRoute("DELETE", "/v1/apps/{app_id}/keys/{key_id}", "RevokeKey"),
    HttpRoute("ANY", "/v1/things/{thing_id}", "AnyThing"),
    HttpRoute("PUT", "/v1/things/{thing_id}", "PutThing"),
]


@pytest.mark.parametrize(
    ("method", "path", "function"),
    [
        ("GET", "/pets/dog/1", "Exact"),
        ("GET", "/pets/dog/2", "Variable"),
        ("GET", "/pets/cat/1", "PetsGreedy"),
        ("POST", "/pets/cat/1", "AnyGreedy"),
        ("POST", "/v1/apps", "CreateApp"),
        ("GET", "/v1/apps", "AnyGreedy"),
        ("GET", "/v1/apps/a1", "GetApp"),
        ("DELETE", "/v1/apps/a1/keys/k1", "RevokeKey"),
        ("PUT", "/v1/things/t1", "PutThing"),
        ("PATCH", "/v1/things/t1", "AnyThing"),
        ("GET", "/v1/things/t1/more", "AnyGreedy"),
    ],
)
def test_the_most_specific_route_wins(method: str, path: str, function: str) -> None:
    match = Router(ROUTES).match(method, path)

    assert match is not None
    assert match.route.function == function


def test_a_route_with_path_variables_beats_a_greedy_one_even_when_the_greedy_one_names_the_method() -> None:
    router = Router([HttpRoute("GET", "/{proxy+}", "Greedy"), HttpRoute("ANY", "/v1/apps/{app_id}", "App")])

    match = router.match("GET", "/v1/apps/a1")

    assert match is not None
    assert match.route.function == "App"


def test_path_variables_are_captured_by_name_and_url_decoded() -> None:
    match = Router(ROUTES).match("DELETE", "/v1/apps/my%20app/keys/k%2F1")

    assert match is not None
    assert match.path_parameters == {"app_id": "my app", "key_id": "k/1"}


def test_a_greedy_variable_captures_the_rest_of_the_path_under_its_name_without_the_plus() -> None:
    match = Router(ROUTES).match("GET", "/v1/unknown/deeper/path%21")

    assert match is not None
    assert match.route.path == "/{proxy+}"
    assert match.path_parameters == {"proxy": "v1/unknown/deeper/path!"}


def test_a_greedy_variable_needs_at_least_one_character_so_the_root_path_does_not_match() -> None:
    assert Router(ROUTES).match("GET", "/") is None


def test_a_path_variable_does_not_match_an_empty_segment() -> None:
    match = Router([HttpRoute("GET", "/v1/apps/{app_id}", "GetApp")]).match("GET", "/v1/apps/")

    assert match is None


def test_a_method_that_no_route_accepts_does_not_match() -> None:
    assert Router([HttpRoute("POST", "/v1/apps", "CreateApp")]).match("GET", "/v1/apps") is None


def test_the_default_route_catches_what_nothing_else_matches_and_only_that() -> None:
    router = Router([HttpRoute("ANY", "$default", "Default"), HttpRoute("GET", "/v1/apps", "ListApps")])

    listed, other = router.match("GET", "/v1/apps"), router.match("POST", "/")

    assert listed is not None
    assert listed.route.function == "ListApps"
    assert other is not None
    assert (other.route.function, other.path_parameters) == ("Default", {})


def test_methods_are_matched_case_insensitively() -> None:
    match = Router(ROUTES).match("post", "/v1/apps")

    assert match is not None
    assert match.route.function == "CreateApp"
