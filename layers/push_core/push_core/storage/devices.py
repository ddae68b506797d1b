"""Devices, the token index that makes registration idempotent, and device keys."""

from typing import Any

from boto3.dynamodb.conditions import Key

from push_core.models import ALL_DEVICES_TOPIC, DeviceRecord, KeyRecord
from push_core.storage.keys import device_pk, key_pk, shard_of, token_pk, topic_pk
from push_core.storage.table import (
    Check,
    ConditionFailed,
    Delete,
    Put,
    TransactionItem,
    Update,
    dynamodb_table,
    transact_write,
)


def _device_from_item(item: dict[str, Any]) -> DeviceRecord:
    return DeviceRecord.model_validate(item)


def subscription_item(device: DeviceRecord, topic: str, shards: int) -> dict[str, Any]:
    """What fan-out reads for each subscriber: enough to deliver without a second read."""
    item: dict[str, Any] = {
        "pk": topic_pk(device.app_id, topic, shard_of(device.device_id, shards)),
        "sk": f"DEV#{device.device_id}",
        "device_id": device.device_id,
        "platform": device.platform.value,
    }
    if device.token is not None:
        item["token"] = device.token
    if device.push:
        item["push"] = device.push
    return item


def create_device(device: DeviceRecord, key: KeyRecord, shards: int) -> bool:
    """Store a new device with its key and its implicit '*' subscription.

    False when its token is already registered (the caller then returns the existing device).
    """
    ops: list[TransactionItem] = []
    if device.token is not None:
        ops.append(
            Put(
                {
                    "pk": token_pk(device.app_id, device.platform, device.token),
                    "sk": "TOK",
                    "device_id": device.device_id,
                },
                condition="attribute_not_exists(pk)",
            )
        )
    ops += [
        Put(
            {
                "pk": device_pk(device.app_id, device.device_id),
                "sk": "DEV",
                **device.model_dump(exclude_none=True),
            }
        ),
        Put({"pk": key_pk(key.key_id), "sk": "KEY", **key.model_dump(exclude_none=True)}),
        Put(subscription_item(device, ALL_DEVICES_TOPIC, shards)),
    ]
    try:
        transact_write(ops)
    except ConditionFailed:
        return False
    return True


def find_device_by_token(app_id: str, platform: str, token: str) -> DeviceRecord | None:
    """The device registered with this token, if any."""
    table = dynamodb_table()
    index = table.get_item(Key={"pk": token_pk(app_id, platform, token), "sk": "TOK"}, ConsistentRead=True).get("Item")
    if not index:
        return None
    return get_device(app_id, str(index["device_id"]))


def get_device(app_id: str, device_id: str) -> DeviceRecord | None:
    """The device, or None when the app has no such device."""
    item = (
        dynamodb_table()
        .get_item(Key={"pk": device_pk(app_id, device_id), "sk": "DEV"}, ConsistentRead=True)
        .get("Item")
    )
    return _device_from_item(item) if item else None


def get_devices(app_id: str, device_ids: list[str]) -> dict[str, DeviceRecord]:
    """The app's devices among device_ids (at most 100), by id; unknown ids are absent."""
    if not device_ids:
        return {}
    table = dynamodb_table()
    keys = [{"pk": device_pk(app_id, d), "sk": "DEV"} for d in dict.fromkeys(device_ids)]
    found: dict[str, DeviceRecord] = {}
    request: dict[str, Any] = {table.name: {"Keys": keys, "ConsistentRead": True}}
    while request:
        response = table.meta.client.batch_get_item(RequestItems=request)
        for item in response["Responses"].get(table.name, []):
            device = _device_from_item(item)
            found[device.device_id] = device
        request = dict(response.get("UnprocessedKeys") or {})
    return found


def rotate_device_key(device: DeviceRecord, new_key: KeyRecord) -> None:
    """Give a re-registered device a fresh key; the old one stops working at once."""
    transact_write(
        [
            Put({"pk": key_pk(new_key.key_id), "sk": "KEY", **new_key.model_dump(exclude_none=True)}),
            Update(
                {"pk": device_pk(device.app_id, device.device_id), "sk": "DEV"},
                "SET key_id = :new, registered_at = :now, enabled = :on",
                condition="key_id = :old",
                values={
                    ":new": new_key.key_id,
                    ":old": device.key_id,
                    ":now": new_key.created_at,
                    ":on": True,
                },
            ),
            Delete({"pk": key_pk(device.key_id), "sk": "KEY"}),
        ]
    )


def device_partition(app_id: str, device_id: str) -> list[dict[str, Any]]:
    """Every item stored under the device (record, subscriptions, inbox)."""
    table = dynamodb_table()
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(device_pk(app_id, device_id))}
    while True:
        page = table.query(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _topic_side_keys(device: DeviceRecord, partition: list[dict[str, Any]], shards: int) -> list[dict[str, Any]]:
    """Keys of the device's entries in the topic shards ('*' included), found from its SUB# items."""
    topics = [str(item["sk"])[4:] for item in partition if str(item["sk"]).startswith("SUB#")]
    entries = (subscription_item(device, topic, shards) for topic in [*topics, ALL_DEVICES_TOPIC])
    return [{"pk": entry["pk"], "sk": entry["sk"]} for entry in entries]


def delete_device(device: DeviceRecord, shards: int) -> None:
    """Remove the device and everything that points at it: key, token index, subscriptions, inbox."""
    table = dynamodb_table()
    partition = device_partition(device.app_id, device.device_id)
    keys = _topic_side_keys(device, partition, shards) + [{"pk": item["pk"], "sk": item["sk"]} for item in partition]
    keys.append({"pk": key_pk(device.key_id), "sk": "KEY"})
    if device.token is not None:
        keys.append({"pk": token_pk(device.app_id, device.platform, device.token), "sk": "TOK"})
    with table.batch_writer() as batch:
        for key in keys:
            batch.delete_item(Key=key)


def disable_device(device: DeviceRecord, shards: int) -> None:
    """Stop delivering to a dead target: drop its subscriptions, keep the record (marked disabled)."""
    table = dynamodb_table()
    partition = device_partition(device.app_id, device.device_id)
    reverse = [{"pk": item["pk"], "sk": item["sk"]} for item in partition if str(item["sk"]).startswith("SUB#")]
    with table.batch_writer() as batch:
        for key in _topic_side_keys(device, partition, shards) + reverse:
            batch.delete_item(Key=key)
    table.update_item(
        Key={"pk": device_pk(device.app_id, device.device_id), "sk": "DEV"},
        UpdateExpression="SET enabled = :off",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={":off": False},
    )


def device_exists_check(app_id: str, device_id: str) -> Check:
    """A transaction member asserting the device still exists and is enabled."""
    return Check(
        {"pk": device_pk(app_id, device_id), "sk": "DEV"},
        "attribute_exists(pk) AND enabled = :on",
        values={":on": True},
    )
