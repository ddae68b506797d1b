"""Devices, the token index that makes registration idempotent, and device keys."""

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from push_core.models import ALL_DEVICES_TOPIC, DeviceRecord, KeyRecord
from push_core.storage.errors import LimitReached
from push_core.storage.keys import (
    APP_SK,
    DEVICE_SK,
    KEY_SK,
    SUBSCRIPTION_PREFIX,
    TOKEN_INDEX_SK,
    app_pk,
    device_pk,
    key_pk,
    shard_of,
    token_pk,
    topic_member_sk,
    topic_of,
    topic_pk,
)
from push_core.storage.table import (
    ConditionFailed,
    Delete,
    Put,
    TransactionItem,
    Update,
    dynamodb_table,
    is_conditional_failure,
    transact_write,
)


def _device_from_item(item: dict[str, Any]) -> DeviceRecord:
    return DeviceRecord.model_validate(item)


def subscription_item(device: DeviceRecord, topic: str, shards: int) -> dict[str, Any]:
    """What fan-out reads for each subscriber: enough to deliver without a second read."""
    item: dict[str, Any] = {
        "pk": topic_pk(device.app_id, topic, shard_of(device.device_id, shards)),
        "sk": topic_member_sk(device.device_id),
        "device_id": device.device_id,
        "platform": device.platform.value,
    }
    if device.token is not None:
        item["token"] = device.token
    if device.push:
        item["push"] = device.push
    return item


def create_device(device: DeviceRecord, key: KeyRecord, shards: int, *, max_devices: int) -> bool:
    """Store a new device with its key and its implicit '*' subscription, counted on its app.

    False when its token is already registered (the caller then returns the existing device);
    LimitReached when the app already has max_devices devices.
    """
    ops: list[TransactionItem] = []
    if device.token is not None:
        ops.append(
            Put(
                {
                    "pk": token_pk(device.app_id, device.platform, device.token),
                    "sk": TOKEN_INDEX_SK,
                    "device_id": device.device_id,
                },
                condition="attribute_not_exists(pk)",
            )
        )
    ops += [
        Put(
            {
                "pk": device_pk(device.app_id, device.device_id),
                "sk": DEVICE_SK,
                **device.model_dump(exclude_none=True),
            }
        ),
        Put({"pk": key_pk(key.key_id), "sk": KEY_SK, **key.model_dump(exclude_none=True)}),
        Put(subscription_item(device, ALL_DEVICES_TOPIC, shards)),
        # The app's device count, in the same transaction, is the quota (and also proves the app exists).
        Update(
            {"pk": app_pk(device.app_id), "sk": APP_SK},
            "ADD devices :one",
            condition="attribute_exists(pk) AND (attribute_not_exists(devices) OR devices < :max)",
            values={":one": 1, ":max": max_devices},
        ),
    ]
    try:
        transact_write(ops)
    except ConditionFailed as failure:
        if failure.failed_indexes == [len(ops) - 1]:
            raise LimitReached("MaxDevicesPerApp", max_devices) from failure
        return False
    return True


def find_device_by_token(app_id: str, platform: str, token: str) -> DeviceRecord | None:
    """The device registered with this token, if any."""
    table = dynamodb_table()
    index = table.get_item(
        Key={"pk": token_pk(app_id, platform, token), "sk": TOKEN_INDEX_SK}, ConsistentRead=True
    ).get("Item")
    if not index:
        return None
    return get_device(app_id, str(index["device_id"]))


def get_device(app_id: str, device_id: str) -> DeviceRecord | None:
    """The device, or None when the app has no such device."""
    item = (
        dynamodb_table()
        .get_item(Key={"pk": device_pk(app_id, device_id), "sk": DEVICE_SK}, ConsistentRead=True)
        .get("Item")
    )
    return _device_from_item(item) if item else None


def get_devices(app_id: str, device_ids: list[str]) -> dict[str, DeviceRecord]:
    """The app's devices among device_ids (at most 100), by id; unknown ids are absent."""
    if not device_ids:
        return {}
    table = dynamodb_table()
    keys = [{"pk": device_pk(app_id, d), "sk": DEVICE_SK} for d in dict.fromkeys(device_ids)]
    found: dict[str, DeviceRecord] = {}
    request: dict[str, Any] = {table.name: {"Keys": keys, "ConsistentRead": True}}
    while request:
        response = table.meta.client.batch_get_item(RequestItems=request)
        for item in response["Responses"].get(table.name, []):
            device = _device_from_item(item)
            found[device.device_id] = device
        request = dict(response.get("UnprocessedKeys") or {})
    return found


def renew_registration(device: DeviceRecord, now: int, new_key: KeyRecord | None = None) -> bool:
    """Mark a re-registered device live again (registered now, enabled); with new_key, also replace its key.

    The old key stops working in the same transaction that stores the new one. False when the device was
    deleted or re-keyed meanwhile.
    """
    pk = device_pk(device.app_id, device.device_id)
    try:
        if new_key is None:
            dynamodb_table().update_item(
                Key={"pk": pk, "sk": DEVICE_SK},
                UpdateExpression="SET registered_at = :now, enabled = :on",
                ConditionExpression="key_id = :current",
                ExpressionAttributeValues={":now": now, ":on": True, ":current": device.key_id},
            )
            return True
        transact_write(
            [
                Put({"pk": key_pk(new_key.key_id), "sk": KEY_SK, **new_key.model_dump(exclude_none=True)}),
                Update(
                    {"pk": pk, "sk": DEVICE_SK},
                    "SET key_id = :new, registered_at = :now, enabled = :on",
                    condition="key_id = :old",
                    values={":new": new_key.key_id, ":old": device.key_id, ":now": now, ":on": True},
                ),
                Delete({"pk": key_pk(device.key_id), "sk": KEY_SK}),
            ]
        )
    except ConditionFailed:
        return False
    except ClientError as error:
        if is_conditional_failure(error):
            return False
        raise
    return True


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
    topics = [topic_of(str(item["sk"])) for item in partition if str(item["sk"]).startswith(SUBSCRIPTION_PREFIX)]
    entries = (subscription_item(device, topic, shards) for topic in [*topics, ALL_DEVICES_TOPIC])
    return [{"pk": entry["pk"], "sk": entry["sk"]} for entry in entries]


def _forget_device(device: DeviceRecord) -> None:
    """Delete the device's record and give its place in the app's device count back, exactly once."""
    record = {"pk": device_pk(device.app_id, device.device_id), "sk": DEVICE_SK}
    try:
        transact_write(
            [
                Delete(record, condition="attribute_exists(pk)"),
                Update(
                    {"pk": app_pk(device.app_id), "sk": APP_SK},
                    "ADD devices :minus",
                    condition="attribute_exists(pk)",
                    values={":minus": -1},
                ),
            ]
        )
    except ConditionFailed as failure:
        if 0 not in failure.failed_indexes:  # the app itself is gone (its purge): nothing left to count
            dynamodb_table().delete_item(Key=record)


def delete_device(device: DeviceRecord, shards: int) -> None:
    """Remove the device and everything that points at it: key, token index, subscriptions, inbox."""
    table = dynamodb_table()
    partition = device_partition(device.app_id, device.device_id)
    # The record goes last (a retry after a crash still finds the device), with the count.
    others = [{"pk": item["pk"], "sk": item["sk"]} for item in partition if item["sk"] != DEVICE_SK]
    keys = _topic_side_keys(device, partition, shards) + others
    keys.append({"pk": key_pk(device.key_id), "sk": KEY_SK})
    if device.token is not None:
        keys.append({"pk": token_pk(device.app_id, device.platform, device.token), "sk": TOKEN_INDEX_SK})
    with table.batch_writer() as batch:
        for key in keys:
            batch.delete_item(Key=key)
    _forget_device(device)


def disable_device(device: DeviceRecord, shards: int) -> None:
    """Stop delivering to a dead target: drop its subscriptions, keep the record (marked disabled)."""
    table = dynamodb_table()
    partition = device_partition(device.app_id, device.device_id)
    reverse = [
        {"pk": item["pk"], "sk": item["sk"]} for item in partition if str(item["sk"]).startswith(SUBSCRIPTION_PREFIX)
    ]
    with table.batch_writer() as batch:
        for key in _topic_side_keys(device, partition, shards) + reverse:
            batch.delete_item(Key=key)
    table.update_item(
        Key={"pk": device_pk(device.app_id, device.device_id), "sk": DEVICE_SK},
        UpdateExpression="SET enabled = :off, topics = :none",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={":off": False, ":none": 0},
    )
