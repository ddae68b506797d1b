"""Feedback records: which targets were pruned, when, and why."""

from push_core.queueing import FeedbackEvent
from push_core.storage.keys import feedback_pk
from push_core.storage.table import dynamodb_table


def record(event: FeedbackEvent, token: str | None, expires_at: int) -> None:
    """Keep the event, listed by time per app."""
    item = {
        "pk": feedback_pk(event.app_id),
        "sk": f"{event.observed_at:012d}#{event.device_id}",
        **event.model_dump(exclude_none=True, mode="json"),
        "expires_at": expires_at,
    }
    if token is not None:
        item["token"] = token
    dynamodb_table().put_item(Item=item)
