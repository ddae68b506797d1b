"""Topic subscriptions: written twice (by topic shard for fan-out, by device for listing)."""

from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key

from push_core.models import DeviceRecord, Platform, Target
from push_core.storage.devices import subscription_item
from push_core.storage.errors import LimitReached
from push_core.storage.keys import DEVICE_SK, SUBSCRIPTION_PREFIX, device_pk, subscription_sk, topic_of, topic_pk
from push_core.storage.table import ConditionFailed, Delete, Put, Update, dynamodb_table, transact_write


def _topic_count(device: DeviceRecord) -> int:
    item = (
        dynamodb_table()
        .get_item(
            Key={"pk": device_pk(device.app_id, device.device_id), "sk": DEVICE_SK},
            ProjectionExpression="topics",
            ConsistentRead=True,
        )
        .get("Item")
    )
    return int(item.get("topics", 0)) if item else 0  # type: ignore[arg-type]


def subscribe(device: DeviceRecord, topic: str, shards: int, now: int, *, max_topics: int) -> bool:
    """Subscribe the device; False when it already was subscribed, LimitReached past max_topics."""
    reverse = {"pk": device_pk(device.app_id, device.device_id), "sk": subscription_sk(topic), "created_at": now}
    try:
        transact_write(
            [
                # The device's topic count is the quota; the same write checks the device still exists.
                Update(
                    {"pk": device_pk(device.app_id, device.device_id), "sk": DEVICE_SK},
                    "ADD topics :one",
                    condition="attribute_exists(pk) AND enabled = :on "
                    "AND (attribute_not_exists(topics) OR topics < :max)",
                    values={":one": 1, ":on": True, ":max": max_topics},
                ),
                Put(reverse, condition="attribute_not_exists(pk)"),
                Put({**subscription_item(device, topic, shards), "created_at": now}),
            ]
        )
    except ConditionFailed as failure:
        if failure.failed_indexes == [1]:
            return False
        if 0 in failure.failed_indexes and _topic_count(device) >= max_topics:
            if 1 in failure.failed_indexes:  # already subscribed: nothing to refuse
                return False
            raise LimitReached("MaxTopicsPerDevice", max_topics) from failure
        raise
    return True


def unsubscribe(device: DeviceRecord, topic: str, shards: int) -> bool:
    """Unsubscribe the device; False when it was not subscribed."""
    sub = subscription_item(device, topic, shards)
    try:
        transact_write(
            [
                Delete(
                    {"pk": device_pk(device.app_id, device.device_id), "sk": subscription_sk(topic)},
                    condition="attribute_exists(pk)",
                ),
                Delete({"pk": sub["pk"], "sk": sub["sk"]}),
                Update(
                    {"pk": device_pk(device.app_id, device.device_id), "sk": DEVICE_SK},
                    "ADD topics :minus",
                    condition="attribute_exists(pk)",
                    values={":minus": -1},
                ),
            ]
        )
    except ConditionFailed:
        return False
    return True


def device_topics(app_id: str, device_id: str) -> list[str]:
    """The topics a device is subscribed to, sorted."""
    items = dynamodb_table().query(
        KeyConditionExpression=Key("pk").eq(device_pk(app_id, device_id)) & Key("sk").begins_with(SUBSCRIPTION_PREFIX),
        ConsistentRead=True,
    )["Items"]
    return sorted(topic_of(str(item["sk"])) for item in items)


def is_subscribed_to_any(app_id: str, device_ids: list[str], topics: list[str]) -> set[str]:
    """Which of device_ids are subscribed to at least one of topics (batched reads, 100 keys a call)."""
    if not device_ids or not topics:
        return set()
    table = dynamodb_table()
    keys = [{"pk": device_pk(app_id, d), "sk": subscription_sk(t)} for d in device_ids for t in topics]
    found: set[str] = set()
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {table.name: {"Keys": keys[start : start + 100], "ProjectionExpression": "pk"}}
        while request:
            response = table.meta.client.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(table.name, []):
                found.add(str(item["pk"]).rsplit("#DEV#", 1)[1])
            request = dict(response.get("UnprocessedKeys") or {})
    return found


def count_subscribers(app_id: str, topic: str, shards: int) -> int:
    """How many devices a topic reaches, summed over its shards."""
    table = dynamodb_table()
    total = 0
    for shard in range(shards):
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(topic_pk(app_id, topic, shard)),
            "Select": "COUNT",
        }
        while True:
            page = table.query(**kwargs)
            total += int(page["Count"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return total


@dataclass(frozen=True)
class SubscriberPage:
    """One Query page of a topic shard and where the next one starts."""

    targets: list[Target]
    next_cursor: str | None


def subscriber_page(app_id: str, topic: str, shard: int, cursor: str | None, limit: int) -> SubscriberPage:
    """A page of a topic shard's subscribers (DynamoDB caps each page at 1 MB as well)."""
    pk = topic_pk(app_id, topic, shard)
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(pk), "Limit": limit}
    if cursor:
        kwargs["ExclusiveStartKey"] = {"pk": pk, "sk": cursor}
    page = dynamodb_table().query(**kwargs)
    targets = [
        Target(
            device_id=str(item["device_id"]),
            platform=Platform(str(item["platform"])),
            token=item.get("token"),
            push=item.get("push") or {},
        )
        for item in page["Items"]
    ]
    last = page.get("LastEvaluatedKey")
    return SubscriberPage(targets=targets, next_cursor=str(last["sk"]) if last else None)
