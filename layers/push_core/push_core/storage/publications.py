"""Publications and their exact counters, with per-job checkpoints that make redelivery harmless."""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

from botocore.exceptions import ClientError

from push_core.models import MessageContent, Publication
from push_core.observability import logger
from push_core.storage.keys import PUBLICATION_SK, expand_checkpoint_sk, job_sk, publication_pk
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
        "sk": PUBLICATION_SK,
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
        .get_item(Key={"pk": publication_pk(app_id, publication_id), "sk": PUBLICATION_SK}, ConsistentRead=True)
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
            Key={"pk": publication_pk(app_id, publication_id), "sk": expand_checkpoint_sk(job_key)},
            ConsistentRead=True,
            ProjectionExpression="pk",
        )
        .get("Item")
    )
    return item is not None


# Each kind of job has its own counters, so the status can tell expanding from delivering.
JobCounter = Literal["expand_jobs", "delivery_batches"]


def register_expand_jobs(app_id: str, publication_id: str, job_keys: Sequence[str], expires_at: int) -> None:
    """Count expand jobs (a shard's next page) before they are sent, each once."""
    _register_each(app_id, publication_id, "expand_jobs", [(key, 0) for key in job_keys], expires_at)


def register_delivery_batches(
    app_id: str, publication_id: str, batches: Sequence[tuple[str, int]], expires_at: int
) -> None:
    """Count delivery batches, given as (job key, targets), before they are sent, each once.

    Their targets join the total in the same write, so no batch can count a delivery the total does
    not hold yet: pending never goes below zero.
    """
    _register_each(app_id, publication_id, "delivery_batches", list(batches), expires_at)


def _register_each(
    app_id: str, publication_id: str, counter: JobCounter, jobs: list[tuple[str, int]], expires_at: int
) -> None:
    """Register jobs so the publication cannot look finished early, each exactly once.

    One transaction registers up to 99 jobs; if any was registered already (a redelivered parent), each
    is registered on its own, skipping those that were.
    """
    for start in range(0, len(jobs), _JOBS_PER_TRANSACTION):
        chunk = jobs[start : start + _JOBS_PER_TRANSACTION]
        try:
            _register(app_id, publication_id, counter, chunk, expires_at)
        except ConditionFailed:
            if len(chunk) == 1:
                continue  # registered by an earlier attempt, or the publication is gone
            for job in chunk:
                try:
                    _register(app_id, publication_id, counter, [job], expires_at)
                except ConditionFailed:
                    continue


_JOBS_PER_TRANSACTION = 99  # and the publication's counter: DynamoDB's limit is 100 items


def _register(
    app_id: str, publication_id: str, counter: JobCounter, jobs: list[tuple[str, int]], expires_at: int
) -> None:
    pk = publication_pk(app_id, publication_id)
    transact_write(
        [
            *(
                Put({"pk": pk, "sk": job_sk(job_key), "expires_at": expires_at}, condition="attribute_not_exists(pk)")
                for job_key, _ in jobs
            ),
            Update(
                {"pk": pk, "sk": PUBLICATION_SK},
                f"ADD {counter} :n, #total :targets",
                condition="attribute_exists(pk)",
                names={"#total": "total"},
                values={":n": len(jobs), ":targets": sum(targets for _, targets in jobs)},
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
    targets: int,
    expires_at: int,
    used: Usage | None = None,
) -> bool:
    """Mark an expand job done (its page's targets are in the total since its batches were registered)
    and add the AWS usage it caused, exactly once; False if already applied."""
    pk = publication_pk(app_id, publication_id)
    spent = used or Usage()
    try:
        transact_write(
            [
                Put(
                    {
                        "pk": pk,
                        "sk": expand_checkpoint_sk(job_key),
                        "total": targets,
                        "expires_at": expires_at,
                    },
                    condition="attribute_not_exists(pk)",
                ),
                Update(
                    {"pk": pk, "sk": PUBLICATION_SK},
                    f"ADD expand_jobs_done :one, {USAGE_ADDITIONS}",
                    condition="attribute_exists(pk)",
                    values={":one": 1, **usage_values(spent, _CHECKPOINT_WRITE_UNITS)},
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
            Key={"pk": publication_pk(app_id, publication_id), "sk": PUBLICATION_SK},
            UpdateExpression="ADD confirmed :n",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":n": count},
        )
    except ClientError as error:
        if not is_conditional_failure(error):
            raise
        # The publication record has expired (TTL); the confirmation itself still counts for the device.
