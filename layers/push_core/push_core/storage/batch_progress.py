"""How far a delivery batch got: a lease so one invocation works on it at a time, and per-slice progress.

One small item per batch (``RUN#<key>`` under the publication) holds the number of slices finished, their
counts so far, and who holds the lease until when. A slice costs one 1-KB write when it finishes, instead
of a write per target, and a redelivered batch resumes at the first slice not yet recorded. The finish
moves the counts into the publication in one transaction with marking the batch done, so they count once.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from push_core.storage.keys import publication_pk
from push_core.storage.publications import USAGE_ADDITIONS, usage_values
from push_core.storage.table import ConditionFailed, Update, dynamodb_table, is_conditional_failure, transact_write
from push_core.usage import TRANSACTION_UNITS_PER_ITEM, Usage


@dataclass(frozen=True)
class Progress:
    """What the batch's item said when this invocation took the lease."""

    next_slice: int
    # The slice a previous holder may have been sending when it vanished (its lease ran out): those
    # targets may have been delivered without being recorded, so they may now be delivered twice.
    interrupted_slice: int | None


class BatchFinished(Exception):
    """The batch was already delivered and counted (a redelivered or duplicated message)."""


class BatchLeased(Exception):
    """Another invocation holds the batch right now; its own message comes back if it dies."""


class LeaseLost(Exception):
    """This invocation ran past its lease and another took the batch over: stop without writing."""


def _key(app_id: str, publication_id: str, job_key: str) -> dict[str, str]:
    return {"pk": publication_pk(app_id, publication_id), "sk": f"RUN#{job_key}"}


def claim(app_id: str, publication_id: str, job_key: str, owner: str, now: float, lease_until: float) -> Progress:
    """Take the batch's lease; raise BatchFinished or BatchLeased when this invocation must not work on it."""
    table = dynamodb_table()
    key = _key(app_id, publication_id, job_key)
    item: dict[str, Any] = table.get_item(Key=key, ConsistentRead=True).get("Item") or {}
    if item.get("finished"):
        raise BatchFinished(job_key)
    holder_until = float(item.get("lease_until", 0))
    if item.get("owner") and holder_until > now:
        raise BatchLeased(job_key)
    next_slice = int(item.get("next_slice", 0))
    # A holder that recorded no release and whose lease ran out was killed (or timed out) mid-slice.
    interrupted = next_slice if item.get("owner") else None
    try:
        table.update_item(
            Key=key,
            UpdateExpression="SET #owner = :owner, lease_until = :until, next_slice = :next, expires_at = :exp",
            # Nobody else took it between the read and this write.
            ConditionExpression="attribute_not_exists(pk) OR (next_slice = :next AND "
            "(attribute_not_exists(#owner) OR lease_until = :seen))",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={
                ":owner": owner,
                ":until": Decimal(str(round(lease_until, 3))),
                ":next": next_slice,
                ":seen": item.get("lease_until", Decimal(0)),
                ":exp": int(now) + _EXPIRY_S,
            },
        )
    except ClientError as error:
        if is_conditional_failure(error):
            raise BatchLeased(job_key) from error
        raise
    return Progress(next_slice=next_slice, interrupted_slice=interrupted)


# Progress items outlive any lease by far, and go with the publication's data.
_EXPIRY_S = 30 * 86_400


def record_slice(
    app_id: str,
    publication_id: str,
    job_key: str,
    owner: str,
    slice_index: int,
    *,
    passed: int,
    failed: int,
    possible_duplicates: int = 0,
) -> None:
    """Record that slice_index is done (its follow-ups already sent); LeaseLost if another holder took over."""
    _update_as_owner(
        app_id,
        publication_id,
        job_key,
        owner,
        "SET next_slice = :after ADD passed :passed, failed :failed, duplicates :dups",
        "next_slice = :slice",
        {
            ":after": slice_index + 1,
            ":slice": slice_index,
            ":passed": passed,
            ":failed": failed,
            ":dups": possible_duplicates,
        },
    )


def release(app_id: str, publication_id: str, job_key: str, owner: str) -> None:
    """Give the lease up cleanly (before handing the rest of the batch to a fresh invocation)."""
    _update_as_owner(app_id, publication_id, job_key, owner, "REMOVE #owner, lease_until")


def _update_as_owner(
    app_id: str,
    publication_id: str,
    job_key: str,
    owner: str,
    expression: str,
    condition: str | None = None,
    values: dict[str, Any] | None = None,
) -> None:
    """Update the batch's item only while this invocation still holds the lease; LeaseLost otherwise."""
    try:
        dynamodb_table().update_item(
            Key=_key(app_id, publication_id, job_key),
            UpdateExpression=expression,
            ConditionExpression="#owner = :owner" + (f" AND {condition}" if condition else ""),
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": owner, **(values or {})},
        )
    except ClientError as error:
        if is_conditional_failure(error):
            raise LeaseLost(job_key) from error
        raise


# The finish transaction (two updates) is metered by formula: it is the batch's last call.
_FINISH_WRITE_UNITS = 2 * TRANSACTION_UNITS_PER_ITEM


def finish(app_id: str, publication_id: str, job_key: str, owner: str, used: Usage) -> bool:
    """Mark the batch done and add its counts (and the AWS usage it caused) to the publication, once.

    The counts are read back from the progress item inside the same transaction's condition, so what the
    publication gains is exactly what the slices recorded.
    """
    table = dynamodb_table()
    key = _key(app_id, publication_id, job_key)
    item: dict[str, Any] = table.get_item(Key=key, ConsistentRead=True).get("Item") or {}
    if item.get("owner") != owner or item.get("finished"):
        raise LeaseLost(job_key)
    passed, failed, dups = (int(item.get(name, 0)) for name in ("passed", "failed", "duplicates"))
    pk = publication_pk(app_id, publication_id)
    try:
        transact_write(
            [
                Update(
                    key,
                    "SET finished = :yes REMOVE #owner, lease_until",
                    # Unchanged since the read: the counts below are the recorded ones.
                    condition="#owner = :owner AND next_slice = :next AND attribute_not_exists(finished)",
                    names={"#owner": "owner"},
                    values={":yes": True, ":owner": owner, ":next": item["next_slice"]},
                ),
                Update(
                    {"pk": pk, "sk": "PUB"},
                    "ADD passed :passed, failed :failed, possible_duplicates :dups, expand_jobs_done :one, "
                    + USAGE_ADDITIONS,
                    condition="attribute_exists(pk)",
                    values={
                        ":passed": passed,
                        ":failed": failed,
                        ":dups": dups,
                        ":one": 1,
                        **usage_values(used, _FINISH_WRITE_UNITS),
                    },
                ),
            ]
        )
    except ConditionFailed as failure:
        if 0 in failure.failed_indexes:
            raise LeaseLost(job_key) from failure
        return False  # the publication is gone (expired, or its app deleted)
    return True
