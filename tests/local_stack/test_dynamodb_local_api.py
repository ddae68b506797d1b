"""pushlane's routes on DynamoDB Local, which validates requests as DynamoDB does where moto lets them through.

The stack is template.yaml deployed as tests/integration/harness.py deploys it (in-process moto, the real
handlers behind the gateway), with its tables in DynamoDB Local. Each case here was a 500 there and not on moto.
"""

import json
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from moto import mock_aws
from werkzeug.test import Client

from dev.local_stack import dynamodb_local
from dev.local_stack.gateway import Gateway
from dev.local_stack.launcher import LOCAL_ENV_OVERRIDES, use_fake_aws_environment
from dev.local_stack.runtime import forget_container_state, load_functions
from dev.local_stack.stack import deploy
from dev.local_stack.template import load_sam_app
from push_core.auth import sha256_hex
from push_core.models import FeedbackEvent, Platform
from push_core.storage import feedback as feedback_store
from tests.fixtures import sample_data
from tests.local_stack.conftest import needs_dynamodb_local

pytestmark = needs_dynamodb_local

# Feedback records of the test app, one a second from T0 (oldest first); kept for a day from now, since
# DynamoDB Local deletes items whose time to live has passed, as DynamoDB does.
T0 = 1_750_000_000
RECORDS = 5


class Api:
    def __init__(self, client: Client, dynamodb_url: str, table: str) -> None:
        self.client = client
        self.dynamodb_url = dynamodb_url
        self.table = table

    def call(self, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key}"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body), "application/json"
        response = self.client.open(path, method=method, data=data, headers=headers)
        return response.status_code, json.loads(response.get_data(as_text=True) or "null")


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    saved = dict(os.environ)
    server = dynamodb_local.start()
    try:
        use_fake_aws_environment()
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = server.url  # the handlers' DynamoDB, as `--dynamodb local` sets
        forget_container_state()
        parameters = {"AdminKeySha256": sha256_hex(sample_data.ADMIN_KEY)}
        with mock_aws():
            app = load_sam_app(parameters=parameters)
            stack = deploy(app, parameters, "ddblocalapi", dynamodb_endpoint=server.url)
            functions = load_functions(app, stack, LOCAL_ENV_OVERRIDES)
            yield Api(Client(Gateway(app.routes, functions)), server.url, stack.physical_ids["Table"])
    finally:
        forget_container_state()
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


@pytest.fixture(autouse=True)
def handlers_reach_dynamodb_local(fake_aws: None, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The conftest's fake_aws drops AWS_ENDPOINT_URL_* for every test; put DynamoDB Local's back."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", api.dynamodb_url)


@pytest.fixture
def app(api: Api) -> dict[str, str]:
    status, body = api.call("POST", "/v1/apps", sample_data.ADMIN_KEY, {"name": "ddb local"})
    assert status == 201, body
    app_id = body["app"]["id"]
    # The handlers wrote to DynamoDB Local, not to moto's copy of the table
    stored = boto3.client("dynamodb", endpoint_url=api.dynamodb_url).get_item(
        TableName=api.table, Key={"pk": {"S": f"APP#{app_id}"}, "sk": {"S": "APP"}}
    )
    assert stored["Item"]["name"] == {"S": "ddb local"}
    for n in range(RECORDS):
        event = FeedbackEvent(
            app_id=app_id, device_id=f"DEV{n}", platform=Platform.FCM, reason="UNREGISTERED", observed_at=T0 + n
        )
        feedback_store.record(event, token=f"token-{n}", action="pruned", expires_at=int(time.time()) + 86_400)
    return {"id": app_id, "secret": body["secret_key"]["key"]}


@pytest.mark.parametrize(
    "change",
    [
        {"icon": "https://example.com/icon.png"},
        {"feedback_url": "https://example.com/hook"},
        {"icon": "https://example.com/other.png", "feedback_url": "https://example.com/other"},
        {"name": "renamed ✓", "icon": "https://example.com/icon.png"},
    ],
)
def test_patch_app_without_a_name_updates_instead_of_sending_dynamodb_empty_attribute_names(
    api: Api, app: dict[str, str], change: dict[str, str]
) -> None:
    status, body = api.call("PATCH", f"/v1/apps/{app['id']}", app["secret"], change)

    assert status == 200, body
    assert {field: body[field] for field in change} == change
    assert api.call("GET", f"/v1/apps/{app['id']}", app["secret"])[1] == body


def test_patch_app_with_nothing_to_change_is_a_422(api: Api, app: dict[str, str]) -> None:
    for change in ({}, {"name": None}):
        status, body = api.call("PATCH", f"/v1/apps/{app['id']}", app["secret"], change)
        assert (status, body["error"]["code"]) == (422, "no_changes")


def _feedback(api: Api, app: dict[str, str], **query: Any) -> tuple[int, Any]:
    return api.call("GET", f"/v1/feedback?{urlencode(query)}", app["secret"])


def _times(body: dict[str, Any]) -> list[int]:
    return [item["observed_at"] for item in body["feedback"]]


def test_feedback_pages_through_every_record_once(api: Api, app: dict[str, str]) -> None:
    seen: list[int] = []
    query: dict[str, Any] = {"limit": 2}
    for _ in range(RECORDS):
        status, body = _feedback(api, app, **query)
        assert status == 200, body
        seen += _times(body)
        if body["cursor"] is None:
            break
        query["cursor"] = body["cursor"]

    assert seen == [T0 + n for n in range(RECORDS)]


def test_feedback_with_a_cursor_from_before_since_reads_from_since(api: Api, app: dict[str, str]) -> None:
    # Given a cursor after the first record, then `since` moved past it (DynamoDB refuses such a start key)
    status, first = _feedback(api, app, limit=1)
    assert status == 200, first
    assert _times(first) == [T0]

    status, body = _feedback(api, app, since=T0 + 3, cursor=first["cursor"])

    assert status == 200, body
    assert _times(body) == [T0 + 3, T0 + 4]


def test_feedback_with_a_cursor_within_since_starts_after_it(api: Api, app: dict[str, str]) -> None:
    status, page = _feedback(api, app, since=T0 + 1, limit=2)
    assert status == 200, page
    assert _times(page) == [T0 + 1, T0 + 2]

    status, body = _feedback(api, app, since=T0 + 1, cursor=page["cursor"])

    assert status == 200, body
    assert _times(body) == [T0 + 3, T0 + 4]


@pytest.mark.parametrize(
    "since", [10**12, 99_999_999_999_999, int("9" * 1100)], ids=["13-digits", "14-digits", "1100-digits"]
)
def test_feedback_since_beyond_any_stored_time_is_empty(api: Api, app: dict[str, str], since: int) -> None:
    # Such a `since` made a sort key that sorts before the stored ones, or one over DynamoDB's 1024 bytes.
    status, body = _feedback(api, app, since=since)

    assert status == 200, body
    assert body == {"feedback": [], "cursor": None}


@pytest.mark.parametrize("cursor", ["\x00", "0", "abc", "é", "17500000000#", "\u0661" * 12 + "#"])
def test_feedback_refuses_a_cursor_it_cannot_have_given(api: Api, app: dict[str, str], cursor: str) -> None:
    status, body = _feedback(api, app, since=1, cursor=cursor)

    assert status == 422, body
    assert body["error"]["code"] == "validation_error"


def test_feedback_with_an_empty_cursor_reads_from_since(api: Api, app: dict[str, str]) -> None:
    status, body = _feedback(api, app, since=T0 + 4, cursor="")

    assert status == 200, body
    assert _times(body) == [T0 + 4]
