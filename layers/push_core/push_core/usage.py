"""Counting the AWS requests and capacity units a piece of work causes, so each publication knows its cost.

A botocore hook on pushlane's own clients asks DynamoDB for ConsumedCapacity (free to ask) and tallies
it, and counts SQS requests, into whichever Usage is being metered in this context. Outside metering
the hooks do nothing.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

_CAPACITY_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchGetItem", "BatchWriteItem"}
)
_READS = frozenset({"GetItem", "Query", "BatchGetItem", "Scan"})
# A transactional write costs two write units per item (up to 1 KB each); DynamoDB returns no capacity
# for transactions in every emulator, so they are counted by formula.
TRANSACTION_UNITS_PER_ITEM = 2
SQS_BILLING_CHUNK = 64 * 1024


@dataclass
class Usage:
    """AWS consumption of one unit of work (a fan-out job, a publish)."""

    dynamodb_read_units: float = 0.0
    dynamodb_write_units: float = 0.0
    dynamodb_requests: int = 0
    sqs_requests: int = 0


_current: ContextVar[Usage | None] = ContextVar("pushlane_usage", default=None)


@contextmanager
def metered() -> Iterator[Usage]:
    """Count what the code inside causes."""
    usage = Usage()
    token = _current.set(usage)
    try:
        yield usage
    finally:
        _current.reset(token)


def _capacity_units(consumed: Any) -> float:
    entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
    return float(sum(entry.get("CapacityUnits", 0.0) for entry in entries))


def _before_dynamodb(params: dict[str, Any], model: Any, **_: Any) -> None:
    usage = _current.get()
    if usage is None:
        return
    if model.name in _CAPACITY_OPERATIONS:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")
    elif model.name == "TransactWriteItems":
        usage.dynamodb_write_units += TRANSACTION_UNITS_PER_ITEM * len(params.get("TransactItems", []))


def _after_dynamodb(parsed: dict[str, Any], model: Any, **_: Any) -> None:
    usage = _current.get()
    if usage is None:
        return
    usage.dynamodb_requests += 1
    units = _capacity_units(parsed.get("ConsumedCapacity"))
    if model.name in _READS:
        usage.dynamodb_read_units += units
    else:
        usage.dynamodb_write_units += units


def _before_sqs(params: dict[str, Any], model: Any, **_: Any) -> None:
    usage = _current.get()
    if usage is None:
        return
    if model.name == "SendMessageBatch":
        payload = sum(len(entry.get("MessageBody", "").encode()) for entry in params.get("Entries", []))
        usage.sqs_requests += max(1, math.ceil(payload / SQS_BILLING_CHUNK))  # billed per 64 KB chunk
    else:
        usage.sqs_requests += 1


def instrument(client: Any) -> Any:
    """Register the metering hooks on one of pushlane's boto3 clients; returns the client."""
    service = client.meta.service_model.service_name
    if service == "dynamodb":
        client.meta.events.register("provide-client-params.dynamodb.*", _before_dynamodb)
        client.meta.events.register("after-call.dynamodb.*", _after_dynamodb)
    elif service == "sqs":
        client.meta.events.register("provide-client-params.sqs.*", _before_sqs)
    return client
