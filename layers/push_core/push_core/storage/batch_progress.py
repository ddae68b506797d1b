"""How far a delivery batch got: a lease so one invocation works on it at a time, and per-slice progress.

One small item per batch (``RUN#<key>`` under the publication) holds the number of slices finished, their
counts so far, and who holds the lease until when. Taking the lease is one conditional write that also
returns where the batch stands. A slice costs one 1-KB write when it finishes, instead of a write per
target, and a redelivered batch resumes at the first slice not yet recorded. The last slice is recorded
by the finish, which moves the counts into the publication in the same transaction that marks the batch
done, so they count once: a batch of one slice costs the lease write and the finish.
"""

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from push_core.storage.keys import publication_pk
from push_core.storage.publications import USAGE_ADDITIONS, usage_values
from push_core.storage.table import (
    ConditionFailed,
    Put,
    TransactionItem,
    Update,
    dynamodb_table,
    is_conditional_failure,
    transact_write,
)
from push_core.usage import TRANSACTION_UNITS_PER_ITEM, Usage


@dataclass(frozen=True)
class RetryNote:
    """The batch's retry as its finish registered it: which targets (by position in the batch), after how long."""

    job_key: str
    positions: list[int]
    delay_s: int


@dataclass(frozen=True)
class Progress:
    """What the batch's item said when this invocation took the lease."""

    next_slice: int
    # The slice a previous holder may have been sending when it vanished (its lease ran out): those
    # targets may have been delivered without being recorded, so they may now be delivered twice.
    interrupted_slice: int | None
    # Counts the recorded slices hold so far, and the targets (by position) they left for the retry.
    passed: int = 0
    failed: int = 0
    duplicates: int = 0
    retry_positions: tuple[int, ...] = ()
    retry_delay_s: int = 0


@dataclass
class Tally:
    """What a batch's slices counted: recorded ones, and those this holder is adding."""

    passed: int = 0
    failed: int = 0
    duplicates: int = 0


class BatchFinished(Exception):
    """The batch was already delivered and counted (a redelivered or duplicated message).

    retry: the retry its last slice asked for; the holder may have died before sending it.
    """

    def __init__(self, job_key: str, retry: "RetryNote | None" = None) -> None:
        super().__init__(job_key)
        self.retry = retry


class BatchLeased(Exception):
    """Another invocation holds the batch right now; its own message comes back if it dies."""


class LeaseLost(Exception):
    """This invocation ran past its lease and another took the batch over: stop without writing."""


def _key(app_id: str, publication_id: str, job_key: str) -> dict[str, str]:
    return {"pk": publication_pk(app_id, publication_id), "sk": f"RUN#{job_key}"}


def claim(app_id: str, publication_id: str, job_key: str, owner: str, now: float, lease_until: float) -> Progress:
    """Take the batch's lease in one conditional write; BatchFinished or BatchLeased when it is not ours to do.

    The write returns the item as it was, which tells where the batch stands and whether the last
    holder vanished mid-slice (its lease ran out without a release).
    """
    try:
        old: dict[str, Any] = (
            dynamodb_table()
            .update_item(
                Key=_key(app_id, publication_id, job_key),
                UpdateExpression="SET #owner = :owner, lease_until = :until, expires_at = :exp, "
                "next_slice = if_not_exists(next_slice, :zero)",
                ConditionExpression="attribute_not_exists(finished) AND "
                "(attribute_not_exists(#owner) OR lease_until < :now)",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={
                    ":owner": owner,
                    ":until": Decimal(str(round(lease_until, 3))),
                    ":now": Decimal(str(round(now, 3))),
                    ":exp": int(now) + _EXPIRY_S,
                    ":zero": 0,
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            .get("Attributes")
            or {}
        )
    except ClientError as error:
        if not is_conditional_failure(error):
            raise
        current: dict[str, Any] = error.response.get("Item") or {}  # type: ignore[assignment]
        if "finished" in current:
            note = current.get("last_retry")
            raise BatchFinished(
                job_key, _retry_note(_deserializer.deserialize({"M": note["M"]})) if note else None
            ) from error
        raise BatchLeased(job_key) from error
    next_slice = int(old.get("next_slice", 0))
    return Progress(
        next_slice=next_slice,
        interrupted_slice=next_slice if old.get("owner") else None,
        passed=int(old.get("passed", 0)),
        failed=int(old.get("failed", 0)),
        duplicates=int(old.get("duplicates", 0)),
        retry_positions=tuple(int(p) for p in old.get("retry_positions", [])),
        retry_delay_s=int(old.get("retry_delay_s", 0)),
    )


# Progress items outlive any lease by far, and go with the publication's data.
_EXPIRY_S = 30 * 86_400


@dataclass(frozen=True)
class SliceRecord:
    """How one slice went: its counts, its possible duplicates, and which targets it leaves for the retry."""

    index: int
    passed: int
    failed: int
    duplicates: int = 0
    retry_positions: tuple[int, ...] = ()
    retry_delay_s: int = 0  # the batch's retry delay so far (the longest any slice asked for)


def record_slice(app_id: str, publication_id: str, job_key: str, owner: str, record: SliceRecord) -> None:
    """Record that a slice is done, and the targets it leaves for the batch's retry; LeaseLost if another
    holder took over. Those targets are counted by the retry, never by this slice."""
    _update_as_owner(
        app_id,
        publication_id,
        job_key,
        owner,
        "SET next_slice = :after, retry_positions = list_append(if_not_exists(retry_positions, :none), :retry), "
        "retry_delay_s = :delay ADD passed :passed, failed :failed, duplicates :dups",
        "next_slice = :slice",
        {
            ":after": record.index + 1,
            ":slice": record.index,
            ":passed": record.passed,
            ":failed": record.failed,
            ":dups": record.duplicates,
            ":none": [],
            ":retry": list(record.retry_positions),
            ":delay": record.retry_delay_s,
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
            ExpressionAttributeValues={**(values or {}), ":owner": owner},
        )
    except ClientError as error:
        if is_conditional_failure(error):
            raise LeaseLost(job_key) from error
        raise


# The finish transaction is metered by formula: it is the batch's last call.
def _finish_write_units(items: int) -> int:
    return items * TRANSACTION_UNITS_PER_ITEM


def finish(
    app_id: str,
    publication_id: str,
    job_key: str,
    owner: str,
    last: SliceRecord,
    total: Tally,
    used: Usage,
    retry: RetryNote | None = None,
) -> bool:
    """Record the last slice and mark the batch done, adding every slice's counts (and the AWS usage the
    batch caused) to the publication, in one transaction: counted exactly once. The batch's retry, if
    any, is registered in the same transaction and noted, so a copy of the batch arriving later can send
    it if this holder dies first; its targets are already in the total (they were this batch's), and the
    batches outstanding stay as many, so the publication never looks settled while a retry waits. False
    when the publication is gone.
    """
    pk = publication_pk(app_id, publication_id)
    run_values: dict[str, Any] = {":yes": True, ":owner": owner, ":slice": last.index, ":after": last.index + 1}
    run_set = "SET finished = :yes, next_slice = :after"
    ops: list[TransactionItem] = []
    if retry is not None:
        run_set += ", last_retry = :retry"
        run_values[":retry"] = _retry_value(retry)
        ops.append(Put({"pk": pk, "sk": f"JOB#{retry.job_key}", "expires_at": int(time.time()) + _EXPIRY_S}))
    ops.insert(
        0,
        Update(
            _key(app_id, publication_id, job_key),
            run_set + " REMOVE #owner, lease_until",
            condition="#owner = :owner AND next_slice = :slice",
            names={"#owner": "owner"},
            values=run_values,
        ),
    )
    ops.append(
        Update(
            {"pk": pk, "sk": "PUB"},
            "ADD passed :passed, failed :failed, possible_duplicates :dups, delivery_batches_done :one, "
            "delivery_batches :retries, " + USAGE_ADDITIONS,
            condition="attribute_exists(pk)",
            values={
                ":passed": total.passed,
                ":failed": total.failed,
                ":dups": total.duplicates,
                ":one": 1,
                ":retries": 1 if retry is not None else 0,
                **usage_values(used, _finish_write_units(len(ops) + 1)),
            },
        )
    )
    try:
        transact_write(ops)
    except ConditionFailed as failure:
        if 0 in failure.failed_indexes:
            raise LeaseLost(job_key) from failure
        return False  # the publication is gone (expired, or its app deleted)
    return True


def _retry_note(value: dict[str, Any]) -> RetryNote:
    return RetryNote(
        job_key=str(value["job_key"]),
        positions=[int(p) for p in value["positions"]],
        delay_s=int(value["delay_s"]),
    )


_deserializer = TypeDeserializer()


def _retry_value(retry: RetryNote) -> dict[str, Any]:
    return {
        "job_key": retry.job_key,
        "positions": retry.positions,
        "delay_s": retry.delay_s,
    }
