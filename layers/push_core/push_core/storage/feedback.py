"""Feedback records: which targets were reported dead, when, why, and what pushlane did about it."""

from typing import Any

from boto3.dynamodb.conditions import Key

from push_core.models import FeedbackEvent
from push_core.storage.keys import FEEDBACK_TIME_DIGITS, feedback_pk, feedback_sk, feedback_time_key
from push_core.storage.table import dynamodb_table

# A cursor is the sort key of a page's last record (or empty: no cursor, as before).
LATEST_TIME = 10**FEEDBACK_TIME_DIGITS - 1
CURSOR_PATTERN = rf"^(?:$|[0-9]{{{FEEDBACK_TIME_DIGITS}}}#)"


def record(event: FeedbackEvent, token: str | None, action: str, expires_at: int) -> None:
    """Keep the event, listed by time per app (a redelivered event overwrites itself)."""
    item = {
        "pk": feedback_pk(event.app_id),
        "sk": feedback_sk(event.observed_at, event.device_id, event.reason, event.provider_timestamp_ms),
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
    """Events observed at or after `since` (epoch seconds), oldest first, and a cursor for more.

    `after` is a cursor this returned (CURSOR_PATTERN checks its shape): the page starts after that record.
    """
    if since > LATEST_TIME:
        # Nothing is observed that late; and its key would not sort after the others (DynamoDB would also
        # refuse a sort key over 1024 bytes).
        return [], None
    start = feedback_time_key(since)
    pk = feedback_pk(app_id)
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(pk) & Key("sk").gte(start), "Limit": limit}
    # DynamoDB refuses a start key outside the key condition ("does not match the range key predicate"):
    # a cursor from before `since` (the client moved `since` on) changes nothing, so the page starts at `since`.
    if after and after >= start:
        kwargs["ExclusiveStartKey"] = {"pk": pk, "sk": after}
    page = dynamodb_table().query(**kwargs)
    last = page.get("LastEvaluatedKey")
    return page["Items"], (str(last["sk"]) if last else None)
