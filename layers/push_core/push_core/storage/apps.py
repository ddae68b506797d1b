"""Apps and their API keys."""

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from push_core.models import AppRecord, KeyRecord, KeyRole
from push_core.storage.keys import APP_SK, KEY_LISTING_PREFIX, KEY_SK, app_pk, key_listing_sk, key_pk
from push_core.storage.table import (
    ConditionFailed,
    Put,
    TransactionItem,
    Update,
    dynamodb_table,
    raise_if_throttled,
    transact_write,
)

MAX_LIVE_KEYS_PER_ROLE = 2
_LIVE_COUNTER = {"secret": "live_secret_keys", "public": "live_public_keys"}


def _key_items(key: KeyRecord) -> list[TransactionItem]:
    record = key.model_dump(exclude_none=True)
    listing = {k: v for k, v in record.items() if k != "secret_sha256"}
    return [
        Put({"pk": key_pk(key.key_id), "sk": KEY_SK, **record}, condition="attribute_not_exists(pk)"),
        Put({"pk": app_pk(key.app_id), "sk": key_listing_sk(key.key_id), **listing}),
    ]


def create_app(app: AppRecord, keys: list[KeyRecord]) -> None:
    """Store a new app with its first keys, all or nothing."""
    counts = {"live_secret_keys": 0, "live_public_keys": 0}
    for key in keys:
        counts[_LIVE_COUNTER[key.role]] += 1
    item = {"pk": app_pk(app.app_id), "sk": APP_SK, **app.model_dump(exclude_none=True), **counts}
    ops: list[TransactionItem] = [Put(item, condition="attribute_not_exists(pk)")]
    for key in keys:
        ops.extend(_key_items(key))
    transact_write(ops)


def _app_from_item(item: dict[str, Any]) -> AppRecord:
    return AppRecord.model_validate(item)


def get_app(app_id: str) -> AppRecord | None:
    """The app, or None when it does not exist."""
    try:
        item = dynamodb_table().get_item(Key={"pk": app_pk(app_id), "sk": APP_SK}, ConsistentRead=True).get("Item")
    except ClientError as error:
        raise_if_throttled(error)
        raise
    return _app_from_item(item) if item else None


def update_app(app_id: str, name: str | None, icon: str | None, feedback_url: str | None = None) -> AppRecord | None:
    """Rename an app, change its icon or feedback URL; None when the app does not exist."""
    sets: list[str] = []
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    if feedback_url is not None:
        sets.append("feedback_url = :feedback_url")
        values[":feedback_url"] = feedback_url
    if name is not None:
        sets.append("#name = :name")  # NAME is a DynamoDB reserved word
        names["#name"] = "name"
        values[":name"] = name
    if icon is not None:
        sets.append("icon = :icon")
        values[":icon"] = icon
    if not sets:
        return get_app(app_id)  # DynamoDB refuses an empty SET
    # DynamoDB refuses an empty ExpressionAttributeNames map (moto does not): send it only when it names something.
    extra: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
    try:
        result = dynamodb_table().update_item(
            Key={"pk": app_pk(app_id), "sk": APP_SK},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            **extra,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return None
        raise_if_throttled(error)
        raise
    return _app_from_item(result["Attributes"])


def list_app_keys(app_id: str) -> list[KeyRecord]:
    """Every key issued to the app (revoked ones included), without their hashes."""
    items = dynamodb_table().query(
        KeyConditionExpression=Key("pk").eq(app_pk(app_id)) & Key("sk").begins_with(KEY_LISTING_PREFIX),
        ConsistentRead=True,
    )["Items"]
    return [KeyRecord.model_validate({**item, "secret_sha256": ""}) for item in items]


def add_key(key: KeyRecord) -> bool:
    """Issue another key for the app's role; False when the role already has its two live keys."""
    counter = _LIVE_COUNTER[key.role]
    bump = Update(
        {"pk": app_pk(key.app_id), "sk": APP_SK},
        f"ADD {counter} :one",
        condition=f"attribute_exists(pk) AND (attribute_not_exists({counter}) OR {counter} < :max)",
        values={":one": 1, ":max": MAX_LIVE_KEYS_PER_ROLE},
    )
    try:
        transact_write([bump, *_key_items(key)])
    except ConditionFailed:
        return False
    return True


def get_key(key_id: str) -> KeyRecord | None:
    """The key as authentication needs it (with its hash)."""
    item = dynamodb_table().get_item(Key={"pk": key_pk(key_id), "sk": KEY_SK}, ConsistentRead=True).get("Item")
    return KeyRecord.model_validate(item) if item else None


def revoke_key(app_id: str, key_id: str, role: KeyRole, now: int) -> bool:
    """Revoke a live key of the app; False when there is no such live key."""
    ops: list[TransactionItem] = [
        Update(
            {"pk": key_pk(key_id), "sk": KEY_SK},
            "SET revoked_at = :now",
            condition="app_id = :app AND attribute_not_exists(revoked_at)",
            values={":now": now, ":app": app_id},
        ),
        Update({"pk": app_pk(app_id), "sk": key_listing_sk(key_id)}, "SET revoked_at = :now", values={":now": now}),
    ]
    if role in _LIVE_COUNTER:
        ops.append(
            Update(
                {"pk": app_pk(app_id), "sk": APP_SK},
                f"ADD {_LIVE_COUNTER[role]} :minus",
                values={":minus": -1},
            )
        )
    try:
        transact_write(ops)
    except ConditionFailed:
        return False
    return True


def delete_app(app_id: str) -> list[str]:
    """Remove the app and all its API keys at once; returns the key ids removed.

    Its devices, subscriptions and inboxes become unreachable at that moment (no key leads to them)
    and are purged in the background by the caller's purge job.
    """
    table = dynamodb_table()
    listing = table.query(KeyConditionExpression=Key("pk").eq(app_pk(app_id)), ConsistentRead=True)["Items"]
    key_ids = [str(item["key_id"]) for item in listing if str(item["sk"]).startswith(KEY_LISTING_PREFIX)]
    with table.batch_writer() as batch:
        for key_id in key_ids:
            batch.delete_item(Key={"pk": key_pk(key_id), "sk": KEY_SK})
        for item in listing:
            batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    return key_ids
