"""Publications and their exact counters, with per-job checkpoints that make redelivery harmless."""

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from push_core.models import MessageContent, Publication
from push_core.observability import logger
from push_core.storage.keys import publication_pk
from push_core.storage.table import (
    ConditionFailed,
    Put,
    Update,
    dynamodb_table,
    is_conditional_failure,
    transact_write,
)
from push_core.usage import TRANSACTION_UNITS_PER_ITEM, Usage

_USAGE_FIELDS = ("usage_read_units", "usage_write_units", "usage_dynamodb_requests", "usage_sqs_requests")


def create_publication(publication: Publication, expires_at: int) -> None:
    """Store a new publication with its counters at zero and its initial expand jobs counted."""
    item: dict[str, Any] = {
        "pk": publication_pk(publication.app_id, publication.publication_id),
        "sk": "PUB",
        # Usage counters start absent: the fan-out ADDs them (as Decimals; boto3 refuses floats).
        **publication.model_dump(exclude={"content", *_USAGE_FIELDS}, exclude_none=True),
        "content": publication.content.model_dump_json(exclude_none=True),
        "expires_at": expires_at,
    }
    dynamodb_table().put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")


def get_publication(app_id: str, publication_id: str) -> Publication | None:
    """The publication with its current counters, or None."""
    item = (
        dynamodb_table()
        .get_item(Key={"pk": publication_pk(app_id, publication_id), "sk": "PUB"}, ConsistentRead=True)
        .get("Item")
    )
    if not item:
        return None
    return Publication.model_validate({**item, "content": MessageContent.model_validate_json(str(item["content"]))})


def job_applied(app_id: str, publication_id: str, job_key: str) -> bool:
    """Whether a fan-out job already recorded its result (a redelivered message is then skipped)."""
    item = (
        dynamodb_table()
        .get_item(
            Key={"pk": publication_pk(app_id, publication_id), "sk": f"BATCH#{job_key}"},
            ConsistentRead=True,
            ProjectionExpression="pk",
        )
        .get("Item")
    )
    return item is not None


def register_job(app_id: str, publication_id: str, job_key: str, expires_at: int) -> None:
    """Count a continuation job before it is sent, once, so the publication cannot look finished early."""
    pk = publication_pk(app_id, publication_id)
    try:
        transact_write(
            [
                Put(
                    {"pk": pk, "sk": f"JOB#{job_key}", "expires_at": expires_at},
                    condition="attribute_not_exists(pk)",
                ),
                Update(
                    {"pk": pk, "sk": "PUB"},
                    "ADD expand_jobs :one",
                    condition="attribute_exists(pk)",
                    values={":one": 1},
                ),
            ]
        )
    except ConditionFailed:
        return  # registered by an earlier attempt of the same job, or the publication is gone


# The checkpoint transaction below (a put and an update) is metered by formula: it is the job's last call.
_CHECKPOINT_WRITE_UNITS = 2 * TRANSACTION_UNITS_PER_ITEM


def apply_job_result(
    app_id: str,
    publication_id: str,
    job_key: str,
    *,
    total: int,
    passed: int,
    failed: int,
    expires_at: int,
    used: Usage | None = None,
) -> bool:
    """Add a finished job's counts (and the AWS usage it caused) exactly once; False if already applied."""
    pk = publication_pk(app_id, publication_id)
    spent = used or Usage()
    try:
        transact_write(
            [
                Put(
                    {
                        "pk": pk,
                        "sk": f"BATCH#{job_key}",
                        "passed": passed,
                        "failed": failed,
                        "expires_at": expires_at,
                    },
                    condition="attribute_not_exists(pk)",
                ),
                Update(
                    {"pk": pk, "sk": "PUB"},
                    "ADD #total :total, passed :passed, failed :failed, expand_jobs_done :one, "
                    "usage_read_units :reads, usage_write_units :writes, usage_dynamodb_requests :ddb, "
                    "usage_sqs_requests :sqs",
                    condition="attribute_exists(pk)",
                    names={"#total": "total"},
                    values={
                        ":total": total,
                        ":passed": passed,
                        ":failed": failed,
                        ":one": 1,
                        ":reads": Decimal(str(round(spent.dynamodb_read_units, 2))),
                        ":writes": Decimal(str(round(spent.dynamodb_write_units + _CHECKPOINT_WRITE_UNITS, 2))),
                        ":ddb": spent.dynamodb_requests + 1,
                        ":sqs": spent.sqs_requests,
                    },
                ),
            ]
        )
    except ConditionFailed as failure:
        if 1 in failure.failed_indexes:
            # The publication is gone (expired or its app deleted): nothing left to count into.
            logger.warning("fan-out job for a missing publication", extra={"publication_id": publication_id})
        return False
    return True


def add_confirmations(app_id: str, publication_id: str, count: int) -> None:
    """Count devices confirming the publication (only for inbox items that really were removed)."""
    try:
        dynamodb_table().update_item(
            Key={"pk": publication_pk(app_id, publication_id), "sk": "PUB"},
            UpdateExpression="ADD confirmed :n",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":n": count},
        )
    except ClientError as error:
        if not is_conditional_failure(error):
            raise
        # The publication record has expired (TTL); the confirmation itself still counts for the device.
