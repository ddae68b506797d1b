"""Feedback records: which targets were reported dead, when, why, and what pushlane did about it."""

from typing import Any

from boto3.dynamodb.conditions import Key

from push_core.queueing import FeedbackEvent
from push_core.storage.keys import feedback_pk
from push_core.storage.table import dynamodb_table


def record(event: FeedbackEvent, token: str | None, action: str, expires_at: int) -> None:
    """Keep the event, listed by time per app (a redelivered event overwrites itself)."""
    item = {
        "pk": feedback_pk(event.app_id),
        "sk": f"{event.observed_at:012d}#{event.device_id}#{event.reason}#{event.provider_timestamp_ms or 0}",
        **event.model_dump(exclude_none=True, mode="json"),
        "action": action,
        "expires_at": expires_at,
    }
    if token is not None:
        item["token"] = token
    dynamodb_table().put_item(Item=item)


def list_since(
    app_id: str, since: int, limit: int, after: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Events observed at or after `since` (epoch seconds), oldest first, and a cursor for more."""
    start = Key("sk").gte(f"{since:012d}")
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(feedback_pk(app_id)) & start, "Limit": limit}
    if after:
        kwargs["ExclusiveStartKey"] = {"pk": feedback_pk(app_id), "sk": after}
    page = dynamodb_table().query(**kwargs)
    last = page.get("LastEvaluatedKey")
    return page["Items"], (str(last["sk"]) if last else None)
