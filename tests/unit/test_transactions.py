"""transact_write's handling of DynamoDB's transaction cancellations (moto never reports a conflict)."""

from typing import Any

import pytest
from botocore.exceptions import ClientError

from push_core.errors import ServiceUnavailable
from push_core.storage import table
from push_core.storage.table import ConditionFailed, Update, transact_write


class CancellingDynamoDB:
    """Answers TransactWriteItems with the given cancellation reasons, then succeeds."""

    def __init__(self, cancellations: list[list[str]]) -> None:
        self.cancellations = cancellations
        self.calls = 0

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


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table, "_CONFLICT_BACKOFF_S", 0.0)


def test_a_conflict_on_a_hot_item_is_retried_until_the_transaction_goes_through(monkeypatch: pytest.MonkeyPatch):
    dynamodb = CancellingDynamoDB([["None", "TransactionConflict"], ["TransactionConflict", "None"]])
    monkeypatch.setattr(table, "dynamodb_client", lambda: dynamodb)
    transact_write(OPS, table_name="t")
    assert dynamodb.calls == 3


def test_endless_conflicts_end_as_a_retryable_503(monkeypatch: pytest.MonkeyPatch):
    dynamodb = CancellingDynamoDB([["TransactionConflict", "None"]] * 20)
    monkeypatch.setattr(table, "dynamodb_client", lambda: dynamodb)
    with pytest.raises(ServiceUnavailable):
        transact_write(OPS, table_name="t")
    assert dynamodb.calls == table._CONFLICT_ATTEMPTS


def test_a_false_condition_is_reported_at_once_and_not_retried(monkeypatch: pytest.MonkeyPatch):
    dynamodb = CancellingDynamoDB([["None", "ConditionalCheckFailed"]])
    monkeypatch.setattr(table, "dynamodb_client", lambda: dynamodb)
    with pytest.raises(ConditionFailed) as failure:
        transact_write(OPS, table_name="t")
    assert failure.value.failed_indexes == [1]
    assert dynamodb.calls == 1
