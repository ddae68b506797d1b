"""Schemathesis against the document the local stack serves: every operation, with real keys and real ids.

Each operation gets FUZZ_EXAMPLES generated requests (25 in `make test`, `make fuzz` sets 200), valid and
invalid, sent with the key its role needs. The pass mark: no 5xx, and no answer the document does not
describe (status, content type, body schema), invalid input always refused with a 4xx, a missing key
always a 401. Path ids of valid cases are swapped for ids that exist, so the fuzzer reaches past the 404s
into the routes' logic: register → subscribe → publish → poll → confirm on real records.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Api, RunningStack, start_stack, stop_stack

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
]


@dataclass(frozen=True)
class Realm:
    """One app with a subscribed inbox device and a publication: the ids and keys the fuzzer uses."""

    admin: str
    secret: str
    public: str
    app_id: str
    device_id: str
    device_key: str
    message_id: str

    def key_for(self, method: str, path: str) -> str:
        """The key whose role the operation needs, so requests get past authentication."""
        if path == "/v1/apps" and method == "POST":
            return self.admin
        if path == "/v1/devices":
            return self.public
        if path.startswith("/v1/devices/{device_id}"):
            return self.device_key
        return self.secret

    def ids(self) -> dict[str, str]:
        return {"app_id": self.app_id, "device_id": self.device_id, "message_id": self.message_id}


@pytest.fixture(scope="module")
def fuzz_stack() -> Iterator[RunningStack]:
    # The fuzzer sends invalid keys on purpose thousands of times: past the default budget of failed
    # authentications per address those are 429s (tests/integration/test_limits.py holds that), not 401s.
    running = start_stack("FailedAuthLimitPerIp=1000000")
    yield running
    stop_stack(running)


@pytest.fixture(scope="module")
def realm(fuzz_stack: RunningStack) -> Iterator[Realm]:
    stack = fuzz_stack
    with requests.Session() as session:
        session.trust_env = False
        api = Api(stack.url, session, stack.admin_key)
        app = api.new_app()
        device = api.call("POST", "/v1/devices", app["public"], json={"platform": "inbox"}).json()
        device_id, device_key = device["device"]["id"], device["device_key"]
        assert api.call("PUT", f"/v1/devices/{device_id}/topics/news", device_key).status_code == 201
        published = api.call("POST", "/v1/messages", app["secret"], json={"topics": ["news"], "body": "fuzz"})
        assert published.status_code == 202
        yield Realm(
            admin=stack.admin_key,
            secret=app["secret"],
            public=app["public"],
            app_id=app["id"],
            device_id=device_id,
            device_key=device_key,
            message_id=published.json()["id"],
        )


@pytest.fixture(scope="module")
def served_document(fuzz_stack: RunningStack) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(fuzz_stack.url + "/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("served_document")


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_input_gets_a_5xx_or_an_answer_the_document_does_not_describe(case: schemathesis.Case[Any], realm: Realm):
    # Deleting the realm's own app or device would leave every later case a 401; those two keep random ids.
    if case.method != "DELETE" and not (case.meta and case.meta.is_negative_at(ParameterLocation.PATH)):
        for name, value in realm.ids().items():
            if case.path_parameters and name in case.path_parameters:
                case.path_parameters[name] = value
    # A valid long-poll holds its answer for `wait` seconds when nothing is new; tests/integration/test_inbox.py
    # times those. Here a second is enough, or 200 cases of up to 20 s each would take an hour.
    if isinstance(case.query, dict) and isinstance(case.query.get("wait"), int) and case.query["wait"] > 1:
        case.query["wait"] = 1
    headers = {"Authorization": f"Bearer {realm.key_for(case.method, case.path)}"}
    with requests.Session() as session:
        session.trust_env = False
        case.call_and_validate(headers=headers, session=session, checks=CHECKS, timeout=30)
