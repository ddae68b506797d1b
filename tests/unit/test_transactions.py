"""transact_write's handling of DynamoDB's transaction cancellations (moto never reports a conflict)."""

from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError

from push_core.storage import table
from push_core.storage.errors import StoreBusy
from push_core.storage.table import ConditionFailed, Update, transact_write

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class CancellingDynamoDB:
    """Answers TransactWriteItems with the given cancellation reasons, then succeeds."""

    def __init__(self, cancellations: list[list[str]]) -> None:
        self.cancellations = cancellations
        self.calls = 0

    @property
    def client(self) -> "DynamoDBClient":
        """This stand-in where transact_write takes a DynamoDB client (it calls transact_write_items only)."""
        return cast("DynamoDBClient", self)

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        if self.cancellations:
            codes = self.cancellations.pop(0)
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                    "CancellationReasons": [{"Code": code} for code in codes],
                },
                "TransactWriteItems",
            )
        return {}


OPS = [
    Update({"pk": "p", "sk": "PUB"}, "ADD n :one", values={":one": 1}),
    Update({"pk": "p", "sk": "B"}, "SET x = :one"),
]


def test_a_conflict_on_a_hot_item_is_retried_until_the_transaction_goes_through():
    dynamodb = CancellingDynamoDB([["None", "TransactionConflict"], ["TransactionConflict", "None"]])
    transact_write(OPS, table_name="t", backoff_s=0.0, client=dynamodb.client)
    assert dynamodb.calls == 3


def test_endless_conflicts_end_as_a_retryable_503():
    dynamodb = CancellingDynamoDB([["TransactionConflict", "None"]] * 20)
    with pytest.raises(StoreBusy):
        transact_write(OPS, table_name="t", backoff_s=0.0, client=dynamodb.client)
    assert dynamodb.calls == table.CONFLICT_ATTEMPTS


def test_a_false_condition_is_reported_at_once_and_not_retried():
    dynamodb = CancellingDynamoDB([["None", "ConditionalCheckFailed"]])
    with pytest.raises(ConditionFailed) as failure:
        transact_write(OPS, table_name="t", backoff_s=0.0, client=dynamodb.client)
    assert failure.value.failed_indexes == [1]
    assert dynamodb.calls == 1
