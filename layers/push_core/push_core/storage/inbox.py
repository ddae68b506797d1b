"""Inbox items: one per message per inbox device, deleted when the device confirms it."""

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from push_core.models import InboxMessage, MessageContent
from push_core.storage.keys import INBOX_END, INBOX_PREFIX, device_pk, inbox_sk, publication_id_of
from push_core.storage.table import dynamodb_table


def write_messages(app_id: str, device_ids: list[str], message: InboxMessage, expires_at: int) -> None:
    """Put the message in each device's inbox; rewriting an existing one is harmless (same key)."""
    content = message.content.model_dump_json(exclude_none=True)
    with dynamodb_table().batch_writer() as batch:  # resends UnprocessedItems for us
        for device_id in device_ids:
            batch.put_item(
                Item={
                    "pk": device_pk(app_id, device_id),
                    "sk": inbox_sk(message.publication_id),
                    "content": content,
                    "created_at": message.created_at,
                    "expires_at": expires_at,
                }
            )


def _message_from_item(item: dict[str, Any]) -> InboxMessage:
    return InboxMessage(
        publication_id=publication_id_of(str(item["sk"])),
        content=MessageContent.model_validate_json(str(item["content"])),
        created_at=int(item["created_at"]),
    )


def pending_messages(app_id: str, device_id: str, after: str | None, limit: int) -> list[InboxMessage]:
    """Unconfirmed messages, oldest first, strictly after the message id `after` when given."""
    pk = device_pk(app_id, device_id)
    # "MSG$" sorts right after every "MSG#..." key, so the range never runs into other item kinds.
    since = Key("sk").between(inbox_sk(after) + "\x00", INBOX_END) if after else Key("sk").begins_with(INBOX_PREFIX)
    condition = Key("pk").eq(pk) & since
    page = dynamodb_table().query(KeyConditionExpression=condition, Limit=limit, ConsistentRead=True)
    return [_message_from_item(item) for item in page["Items"]]


def publication_ids_up_to(app_id: str, device_id: str, up_to: str) -> list[str]:
    """Ids of pending messages with id <= up_to."""
    pk = device_pk(app_id, device_id)
    ids: list[str] = []
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(pk) & Key("sk").between(INBOX_PREFIX, inbox_sk(up_to)),
        "ProjectionExpression": "sk",
        "ConsistentRead": True,
    }
    while True:
        page = dynamodb_table().query(**kwargs)
        ids.extend(publication_id_of(str(item["sk"])) for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return ids
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def remove_message(app_id: str, device_id: str, publication_id: str) -> bool:
    """Delete one inbox item; False when it was not there (unknown or already confirmed)."""
    try:
        dynamodb_table().delete_item(
            Key={"pk": device_pk(app_id, device_id), "sk": inbox_sk(publication_id)},
            ConditionExpression="attribute_exists(pk)",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True
