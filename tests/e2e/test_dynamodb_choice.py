"""`make run`'s DynamoDB: DynamoDB Local where Java and its jar are (as in CI), moto elsewhere, and it says which."""

import re

import boto3
import pytest

from dev.local_stack import dynamodb_local
from push_core.storage.keys import app_pk
from tests.e2e.conftest import Api, RunningStack

pytestmark = pytest.mark.e2e

DYNAMODB_LINE = re.compile(r"^# DynamoDB: (.+) \(--dynamodb local\|moto\|auto chooses\)$")


def _dynamodb_line(stack: RunningStack) -> str:
    descriptions = [match.group(1) for line in stack.lines if (match := DYNAMODB_LINE.match(line))]
    assert len(descriptions) == 1, stack.output
    return descriptions[0]


def test_the_stack_says_which_dynamodb_it_uses(stack: RunningStack) -> None:
    description = _dynamodb_line(stack)

    if dynamodb_local.find_java() and dynamodb_local.find_jar():
        pattern = (
            r"DynamoDB Local 3\.\S+ on http://127\.0\.0\.1:\d+ \(on disk, (unsynced: eatmydata|synced: no eatmydata)\)"
        )
        assert re.fullmatch(pattern, description), description
    else:
        assert description.startswith("moto, because DynamoDB Local is unavailable: "), description


def test_what_the_api_writes_lands_in_dynamodb_local(stack: RunningStack, http: Api) -> None:
    # Given the stack running on DynamoDB Local
    match = re.match(r"DynamoDB Local \S+ on (http://127\.0\.0\.1:\d+) ", _dynamodb_line(stack))
    if match is None:
        pytest.skip("this stack runs on moto (no Java or no DynamoDB Local jar here)")
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=match.group(1),
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    (table,) = [name for name in dynamodb.list_tables()["TableNames"] if "-Table-" in name]

    # When an app is created through the API
    app = http.new_app()

    # Then its items are in DynamoDB Local's table
    items = dynamodb.query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": app_pk(app["id"])}}
    )["Items"]
    assert items, f"no item of app {app['id']} in DynamoDB Local"
