"""Per-target receipts of publications that asked for them (a write each, hence opt-in)."""

from typing import Any

from boto3.dynamodb.conditions import Key

from push_core.models import Receipt
from push_core.storage.keys import RECEIPT_PREFIX, publication_pk, receipt_device_of, receipt_sk
from push_core.storage.table import dynamodb_table


def write(app_id: str, publication_id: str, receipts: list[Receipt], expires_at: int) -> None:
    """Store each target's latest outcome (a retry's final outcome replaces its "retrying")."""
    pk = publication_pk(app_id, publication_id)
    with dynamodb_table().batch_writer() as batch:
        for receipt in receipts:
            batch.put_item(
                Item={
                    "pk": pk,
                    "sk": receipt_sk(receipt.device_id),
                    **receipt.model_dump(exclude_none=True, mode="json"),
                    "expires_at": expires_at,
                }
            )


def page(app_id: str, publication_id: str, after: str | None, limit: int) -> tuple[list[Receipt], str | None]:
    """Receipts in device-id order, and the device id to continue after."""
    pk = publication_pk(app_id, publication_id)
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(pk) & Key("sk").begins_with(RECEIPT_PREFIX),
        "Limit": limit,
        "ConsistentRead": True,
    }
    if after:
        kwargs["ExclusiveStartKey"] = {"pk": pk, "sk": receipt_sk(after)}
    response = dynamodb_table().query(**kwargs)
    receipts = [Receipt.model_validate(item) for item in response["Items"]]
    last = response.get("LastEvaluatedKey")
    return receipts, (receipt_device_of(str(last["sk"])) if last else None)
