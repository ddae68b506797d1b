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


def register_jobs(app_id: str, publication_id: str, job_keys: list[str], expires_at: int) -> None:
    """Count jobs before they are sent, each once, so the publication cannot look finished early.

    One transaction registers up to 99 jobs; if any was registered already (a redelivered parent), each
    is registered on its own, skipping those that were.
    """
    for start in range(0, len(job_keys), _JOBS_PER_TRANSACTION):
        chunk = job_keys[start : start + _JOBS_PER_TRANSACTION]
        try:
            _register(app_id, publication_id, chunk, expires_at)
        except ConditionFailed:
            if len(chunk) == 1:
                continue  # registered by an earlier attempt, or the publication is gone
            for job_key in chunk:
                try:
                    _register(app_id, publication_id, [job_key], expires_at)
                except ConditionFailed:
                    continue


_JOBS_PER_TRANSACTION = 99  # and the publication's counter: DynamoDB's limit is 100 items


def _register(app_id: str, publication_id: str, job_keys: list[str], expires_at: int) -> None:
    pk = publication_pk(app_id, publication_id)
    transact_write(
        [
            *(
                Put({"pk": pk, "sk": f"JOB#{job_key}", "expires_at": expires_at}, condition="attribute_not_exists(pk)")
                for job_key in job_keys
            ),
            Update(
                {"pk": pk, "sk": "PUB"},
                "ADD expand_jobs :n",
                condition="attribute_exists(pk)",
                values={":n": len(job_keys)},
            ),
        ]
    )


# What a job's checkpoint adds to its publication's usage counters (an ADD clause and its values).
USAGE_ADDITIONS = (
    "usage_read_units :reads, usage_write_units :writes, usage_dynamodb_requests :ddb, usage_sqs_requests :sqs"
)


def usage_values(used: Usage, checkpoint_write_units: float) -> dict[str, Any]:
    """The values for USAGE_ADDITIONS: what the job used, plus its checkpoint (its last call, not metered)."""
    return {
        ":reads": Decimal(str(round(used.dynamodb_read_units, 2))),
        ":writes": Decimal(str(round(used.dynamodb_write_units + checkpoint_write_units, 2))),
        ":ddb": used.dynamodb_requests + 1,
        ":sqs": used.sqs_requests,
    }


# The checkpoint transaction below (a put and an update) is metered by formula: it is the job's last call.
_CHECKPOINT_WRITE_UNITS = 2 * TRANSACTION_UNITS_PER_ITEM


def apply_job_result(
    app_id: str,
    publication_id: str,
    job_key: str,
    *,
    total: int,
    expires_at: int,
    used: Usage | None = None,
) -> bool:
    """Add an expand job's target count (and the AWS usage it caused) exactly once; False if already applied."""
    pk = publication_pk(app_id, publication_id)
    spent = used or Usage()
    try:
        transact_write(
            [
                Put(
                    {
                        "pk": pk,
                        "sk": f"BATCH#{job_key}",
                        "total": total,
                        "expires_at": expires_at,
                    },
                    condition="attribute_not_exists(pk)",
                ),
                Update(
                    {"pk": pk, "sk": "PUB"},
                    f"ADD #total :total, expand_jobs_done :one, {USAGE_ADDITIONS}",
                    condition="attribute_exists(pk)",
                    names={"#total": "total"},
                    values={":total": total, ":one": 1, **usage_values(spent, _CHECKPOINT_WRITE_UNITS)},
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
