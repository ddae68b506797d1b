"""The boto3 handles, built once per container and injectable for tests."""

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NoReturn

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from push_core import usage
from push_core.config import get_settings
from push_core.storage.errors import StoreBusy, is_transient

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import Table

# Standard retry mode backs off on throttling before an error ever reaches a caller.
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@lru_cache(maxsize=4)
def dynamodb_table(name: str | None = None) -> "Table":
    """The main table (or the one named), built lazily so tests can point boto3 at moto first."""
    resource = boto3.resource("dynamodb", config=_BOTO_CONFIG)
    usage.instrument(resource.meta.client)
    return resource.Table(name or get_settings().table_name)


@lru_cache(maxsize=1)
def dynamodb_client() -> "DynamoDBClient":
    """The low-level client, for transactions."""
    client: DynamoDBClient = usage.instrument(boto3.client("dynamodb", config=_BOTO_CONFIG))
    return client


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints between cases)."""
    dynamodb_table.cache_clear()
    dynamodb_client.cache_clear()


def is_conditional_failure(error: ClientError) -> bool:
    """Whether a write failed only because its condition did not hold."""
    code = error.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return False


def raise_if_throttled(error: ClientError) -> None:
    """Turn DynamoDB's capacity errors into StoreBusy (a retryable 503 for an API client)."""
    if is_transient(error):
        raise StoreBusy("DynamoDB is throttling") from error


class ConditionFailed(Exception):
    """A conditional write (or one member of a transaction) found its condition false."""

    def __init__(self, failed_indexes: list[int]) -> None:
        super().__init__(f"condition failed for transaction items {failed_indexes}")
        self.failed_indexes = failed_indexes


_serializer = TypeSerializer()


def _attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


@dataclass(frozen=True)
class Put:
    """Put an item in a transaction."""

    item: Mapping[str, Any]
    condition: str | None = None
    names: Mapping[str, str] | None = None
    values: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Update:
    """Update an item in a transaction."""

    key: Mapping[str, Any]
    expression: str
    condition: str | None = None
    names: Mapping[str, str] | None = None
    values: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Delete:
    """Delete an item in a transaction."""

    key: Mapping[str, Any]
    condition: str | None = None
    names: Mapping[str, str] | None = None
    values: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Check:
    """Assert a condition on an item without writing it."""

    key: Mapping[str, Any]
    condition: str
    names: Mapping[str, str] | None = None
    values: Mapping[str, Any] | None = None


TransactionItem = Put | Update | Delete | Check


def _transaction_entry(table_name: str, op: TransactionItem) -> dict[str, Any]:
    entry: dict[str, Any] = {"TableName": table_name}
    if isinstance(op, Put):
        entry["Item"] = _attributes(op.item)
        kind = "Put"
    else:
        entry["Key"] = _attributes(op.key)
        kind = {Update: "Update", Delete: "Delete", Check: "ConditionCheck"}[type(op)]
        if isinstance(op, Update):
            entry["UpdateExpression"] = op.expression
    if op.condition:
        entry["ConditionExpression"] = op.condition
    if op.names:
        entry["ExpressionAttributeNames"] = dict(op.names)
    if op.values:
        entry["ExpressionAttributeValues"] = _attributes(op.values)
    return {kind: entry}


# Transactions that touch a hot item (a publication's counters, written by every job of a large
# fan-out at once) can be cancelled for a conflict with another write in flight; boto3's retries do not
# cover that, so these do, with jittered back-off, before giving up as throttled.
CONFLICT_ATTEMPTS = 8
CONFLICT_BACKOFF_S = 0.02


def _is_conflict(error: ClientError) -> bool:
    if error.response.get("Error", {}).get("Code", "") != "TransactionCanceledException":
        return False
    reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
    codes = {r.get("Code") for r in reasons}
    return "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes


def transact_write(
    ops: Sequence[TransactionItem],
    table_name: str | None = None,
    *,
    backoff_s: float = CONFLICT_BACKOFF_S,
    client: "DynamoDBClient | None" = None,
) -> None:
    """Write all of ops or none of them; ConditionFailed names the items whose condition was false.

    A conflict is retried after a jittered back-off that starts at backoff_s and doubles; client is the
    container's DynamoDB client unless given.
    """
    dynamodb = client or dynamodb_client()
    name = table_name or get_settings().table_name
    items = [_transaction_entry(name, op) for op in ops]
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            dynamodb.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
            return
        except ClientError as error:
            if _is_conflict(error) and attempt + 1 < CONFLICT_ATTEMPTS:
                time.sleep(random.uniform(0, backoff_s * 2**attempt))  # noqa: S311 - jitter
                continue
            _raise_transaction_error(error)


def _raise_transaction_error(error: ClientError) -> NoReturn:
    """The error a failed transaction means to a caller."""
    if is_conditional_failure(error):
        reasons = error.response.get("CancellationReasons", [])
        failed = [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
        raise ConditionFailed(failed) from error
    if _is_conflict(error):
        raise StoreBusy("a transaction kept conflicting on a hot item") from error
    raise_if_throttled(error)
    raise error
