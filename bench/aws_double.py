"""DynamoDB and SQS answered in-process at the wire, so pushlane's real expand code runs at 1M scale.

moto cannot hold a million subscriptions quickly (its Query walks the whole table and transactions copy
it), and the scale model needs only what the expand path asks for: GetItem of an absent checkpoint, Query
pages of a topic shard, transactions and SendMessageBatch that succeed. A botocore ``before-send`` hook
answers those with the bodies DynamoDB and SQS would send, so request building, response parsing and
deserialisation, packing and serialisation all run for real in pushlane's code and in boto3. The double
cuts pages by DynamoDB's own rules (Limit, 1 MB of item bytes, LastEvaluatedKey), records every call,
and keeps the CPU it spends itself apart, so that it can be taken out of the measurement.
"""

import bisect
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders

from bench.calls import AWS, CapacityRules, item_bytes

TABLE = "scale-model"
QUEUES = {
    "FANOUT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/fanout",
    "DELIVERY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/delivery",
    "FEEDBACK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/feedback",
}
_ENVIRONMENT = {
    "TABLE_NAME": TABLE,
    "IDEMPOTENCY_TABLE_NAME": "scale-model-idempotency",
    "ADMIN_KEY_SHA256": "0" * 64,
    **QUEUES,
    "AWS_ACCESS_KEY_ID": "scale-model",
    "AWS_SECRET_ACCESS_KEY": "scale-model",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Anything the double does not answer fails at once on the discard port instead of reaching AWS.
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}


class Partition(Protocol):
    """One partition key's items in sort-key order, built on demand."""

    @property
    def sort_keys(self) -> Sequence[str]: ...

    def item(self, index: int) -> dict[str, Any]: ...


@dataclass
class Call:
    operation: str
    detail: dict[str, Any]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class AwsDouble:
    partitions: Mapping[str, Partition]
    rules: CapacityRules = AWS
    calls: list[Call] = field(default_factory=list)
    sent: dict[str, list[str]] = field(default_factory=dict)
    # What each expand checkpoint added to its publication's usage (the :ddb, :reads, ... values).
    checkpoints: list[dict[str, float]] = field(default_factory=list)
    own_cpu_s: float = 0.0
    _serializer: TypeSerializer = field(default_factory=TypeSerializer)

    def take(self, queue_variable: str) -> list[str]:
        """Bodies sent to a queue since the last take."""
        return self.sent.pop(QUEUES[queue_variable], [])

    def _answer(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        started = time.process_time()
        try:
            target = request.headers.get("X-Amz-Target", "")
            operation = (target.decode() if isinstance(target, bytes) else str(target)).rsplit(".", 1)[-1]
            raw = request.body
            body: dict[str, Any] = json.loads(raw if isinstance(raw, str | bytes) and raw else b"{}")
            handler: Callable[[dict[str, Any]], dict[str, Any]] | None = getattr(self, f"_{operation}", None)
            if handler is None:
                raise NotImplementedError(f"the AWS double does not answer {operation}")
            payload = json.dumps(handler(body)).encode()
            headers = HTTPHeaders()
            headers["x-amzn-RequestId"] = uuid.uuid4().hex
            return AWSResponse(request.url, 200, headers, _Raw(payload))
        finally:
            self.own_cpu_s += time.process_time() - started

    def _capacity(self, body: dict[str, Any], units: float) -> dict[str, Any]:
        if body.get("ReturnConsumedCapacity", "NONE") == "NONE":
            return {}
        return {"ConsumedCapacity": {"TableName": TABLE, "CapacityUnits": units}}

    def _GetItem(self, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - named after the operation
        self.calls.append(Call("GetItem", {}))
        return self._capacity(body, self.rules.strong_read(0))

    def _Query(self, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        pk = next(iter(body["ExpressionAttributeValues"].values()))["S"]
        partition = self.partitions[pk]
        keys = partition.sort_keys
        after = body.get("ExclusiveStartKey", {}).get("sk", {}).get("S")
        index = bisect.bisect_right(keys, after) if after is not None else 0
        limit = int(body.get("Limit", 1 << 62))
        items: list[dict[str, Any]] = []
        used = 0
        while index < len(keys) and len(items) < limit:
            item = partition.item(index)
            size = item_bytes(item)
            if used + size > self.rules.page_cap_bytes:
                break
            items.append(item)
            used += size
            index += 1
        answer: dict[str, Any] = {
            "Items": [{k: self._serializer.serialize(v) for k, v in item.items()} for item in items],
            "Count": len(items),
            "ScannedCount": len(items),
            **self._capacity(body, self.rules.query(used)),
        }
        if index < len(keys) or len(items) == limit:
            answer["LastEvaluatedKey"] = {"pk": {"S": pk}, "sk": {"S": str(items[-1]["sk"])}}
        self.calls.append(Call("Query", {"items": len(items), "bytes": used}))
        return answer

    def _TransactWriteItems(self, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        entries = body["TransactItems"]
        self.calls.append(Call("TransactWriteItems", {"items": len(entries)}))
        for entry in entries:
            values = entry.get("Update", {}).get("ExpressionAttributeValues", {})
            if ":ddb" in values:
                self.checkpoints.append(
                    {
                        "dynamodb_requests": float(values[":ddb"]["N"]),
                        "dynamodb_read_units": float(values[":reads"]["N"]),
                        "dynamodb_write_units": float(values[":writes"]["N"]),
                        "sqs_requests": float(values[":sqs"]["N"]),
                    }
                )
        return {}

    def _SendMessageBatch(self, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        entries = body["Entries"]
        bodies = [str(entry["MessageBody"]) for entry in entries]
        self.sent.setdefault(body["QueueUrl"], []).extend(bodies)
        payload = sum(len(b.encode()) for b in bodies)
        self.calls.append(
            Call("SendMessageBatch", {"queue": body["QueueUrl"], "entries": len(bodies), "bytes": payload})
        )
        return {
            "Successful": [
                {
                    "Id": entry["Id"],
                    "MessageId": str(uuid.uuid4()),
                    "MD5OfMessageBody": hashlib.md5(entry["MessageBody"].encode(), usedforsecurity=False).hexdigest(),
                }
                for entry in entries
            ],
            "Failed": [],
        }


def _forget_clients() -> None:
    from push_core import assembly

    assembly.reset()


@contextmanager
def answering(double: AwsDouble, environment: Mapping[str, str] | None = None) -> Iterator[AwsDouble]:
    """pushlane's clients, built inside, talk to the double; environment and clients are restored after.

    environment adds function settings (EXPAND_PAGE_SIZE, ...) to the double's own.
    """
    from push_core.observability import logger

    saved = dict(os.environ)
    saved_session = boto3.DEFAULT_SESSION
    level = logger.log_level
    try:
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            del os.environ[name]
        os.environ.update({**_ENVIRONMENT, **(environment or {})})
        _forget_clients()
        boto3.setup_default_session(region_name="us-east-1")
        assert boto3.DEFAULT_SESSION is not None
        answer: Callable[..., Any] = double._answer  # a before-send handler returns the response
        for service in ("dynamodb", "sqs"):
            boto3.DEFAULT_SESSION.events.register(f"before-send.{service}", answer)
        logger.setLevel("WARNING")  # a log line per page would drown the benchmark's output
        yield double
    finally:
        logger.setLevel(level)
        boto3.DEFAULT_SESSION = saved_session
        os.environ.clear()
        os.environ.update(saved)
        _forget_clients()
