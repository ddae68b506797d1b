"""Fixed-window counters in the one table: one UpdateItem per count, the item expiring with its window.

An item is `RATE#<scope>` / `<policy>#<window start>` with its count `n`. Counting is a single
UpdateItem (1 write unit: the item stays far below 1 KB), also when a condition refuses it.
"""

from botocore.exceptions import ClientError

from push_core.storage.keys import rate_pk, rate_window_sk
from push_core.storage.table import dynamodb_table, is_conditional_failure, raise_if_throttled

# Kept a while after the window ends, so a late request's count never re-creates it; DynamoDB's TTL
# deletes it some time after that, at no cost.
_KEEP_AFTER_END_S = 60


def _key(scope: str, policy: str, start: int) -> dict[str, str]:
    return {"pk": rate_pk(scope), "sk": rate_window_sk(policy, start)}


def add_within(scope: str, policy: str, start: int, end: int, limit: int, amount: int = 1) -> int | None:
    """Add amount to the window's count unless that takes it over limit: the new count, or None (unchanged)."""
    try:
        result = dynamodb_table().update_item(
            Key=_key(scope, policy, start),
            UpdateExpression="ADD n :amount SET expires_at = :expires",
            ConditionExpression="attribute_not_exists(n) OR n <= :room",
            ExpressionAttributeValues={":amount": amount, ":room": limit - amount, ":expires": end + _KEEP_AFTER_END_S},
            ReturnValues="UPDATED_NEW",
        )
    except ClientError as error:
        if is_conditional_failure(error):
            return None
        raise_if_throttled(error)
        raise
    return int(result["Attributes"]["n"])  # type: ignore[arg-type]


def add(scope: str, policy: str, start: int, end: int, amount: int) -> int:
    """Add amount to the window's count, whatever it is; the new count (the caller grants what fits)."""
    try:
        result = dynamodb_table().update_item(
            Key=_key(scope, policy, start),
            UpdateExpression="ADD n :amount SET expires_at = :expires",
            ExpressionAttributeValues={":amount": amount, ":expires": end + _KEEP_AFTER_END_S},
            ReturnValues="UPDATED_NEW",
        )
    except ClientError as error:
        raise_if_throttled(error)
        raise
    return int(result["Attributes"]["n"])  # type: ignore[arg-type]
