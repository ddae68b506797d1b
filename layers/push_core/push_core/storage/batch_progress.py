"""How far a delivery batch got: a lease so one invocation works on it at a time, and per-slice progress.

One small item per batch (``RUN#<key>`` under the publication) holds the number of slices finished, their
counts so far, and who holds the lease until when. Taking the lease is one conditional write that also
returns where the batch stands. A slice costs one 1-KB write when it finishes, instead of a write per
target, and a redelivered batch resumes at the first slice not yet recorded. The last slice is recorded
by the finish, which moves the counts into the publication in the same transaction that marks the batch
done, so they count once: a batch of one slice costs the lease write and the finish.
"""

import time
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from push_core.pipeline.ledger import (
    BatchFinished,
    BatchKey,
    BatchLeased,
    LeaseLost,
    Progress,
    RetryNote,
    SliceRecord,
    Tally,
)
from push_core.storage.keys import PUBLICATION_SK, batch_run_sk, job_sk, publication_pk
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

# Progress items outlive any lease by far, and go with the publication's data.
_EXPIRY_S = 30 * 86_400


class DynamoBatchLedger:
    """The BatchLedger of a deployment: one ``RUN#`` item per batch under its publication."""

    def claim(self, batch: BatchKey, owner: str, now: float, lease_until: float) -> Progress:
        """Take the batch's lease in one conditional write; BatchFinished or BatchLeased when it is not ours to do.

        The write returns the item as it was, which tells where the batch stands and whether the last
        holder vanished mid-slice (its lease ran out without a release).
        """
        try:
            old: dict[str, Any] = (
                dynamodb_table()
                .update_item(
                    Key=_key(batch),
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
            _raise_not_ours(batch, error)
        return _progress(old)

    def record_slice(self, batch: BatchKey, owner: str, record: SliceRecord) -> None:
        """Record that a slice is done, and the targets it leaves for the batch's retry; LeaseLost if another
        holder took over. Those targets are counted by the retry, never by this slice."""
        _update_as_owner(
            batch,
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

    def release(self, batch: BatchKey, owner: str) -> None:
        """Give the lease up cleanly (before handing the rest of the batch to a fresh invocation)."""
        _update_as_owner(batch, owner, "REMOVE #owner, lease_until")

    def finish(
        self, batch: BatchKey, owner: str, last: SliceRecord, total: Tally, used: Usage, retry: RetryNote | None
    ) -> bool:
        """Record the last slice and mark the batch done, adding every slice's counts (and the AWS usage the
        batch caused) to the publication, in one transaction: counted exactly once. The batch's retry, if
        any, is registered in the same transaction and noted, so a copy of the batch arriving later can send
        it if this holder dies first; its targets are already in the total (they were this batch's), and the
        batches outstanding stay as many, so the publication never looks settled while a retry waits. False
        when the publication is gone.
        """
        ops = _finish_operations(batch, owner, last, total, used, retry)
        try:
            transact_write(ops)
        except ConditionFailed as failure:
            if 0 in failure.failed_indexes:
                raise LeaseLost(batch.job_key) from failure
            return False  # the publication is gone (expired, or its app deleted)
        return True


def _key(batch: BatchKey) -> dict[str, str]:
    return {"pk": publication_pk(batch.app_id, batch.publication_id), "sk": batch_run_sk(batch.job_key)}


def _raise_not_ours(batch: BatchKey, error: ClientError) -> None:
    """BatchFinished (with the retry its finish noted) or BatchLeased, from the item a refused claim returned."""
    current: dict[str, Any] = error.response.get("Item") or {}  # type: ignore[assignment]
    if "finished" in current:
        note = current.get("last_retry")
        retry = _retry_note(_deserializer.deserialize({"M": note["M"]})) if note else None
        raise BatchFinished(batch.job_key, retry) from error
    raise BatchLeased(batch.job_key) from error


def _progress(old: dict[str, Any]) -> Progress:
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


def _update_as_owner(
    batch: BatchKey, owner: str, expression: str, condition: str | None = None, values: dict[str, Any] | None = None
) -> None:
    """Update the batch's item only while this invocation still holds the lease; LeaseLost otherwise."""
    try:
        dynamodb_table().update_item(
            Key=_key(batch),
            UpdateExpression=expression,
            ConditionExpression="#owner = :owner" + (f" AND {condition}" if condition else ""),
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={**(values or {}), ":owner": owner},
        )
    except ClientError as error:
        if is_conditional_failure(error):
            raise LeaseLost(batch.job_key) from error
        raise


def _finish_operations(
    batch: BatchKey, owner: str, last: SliceRecord, total: Tally, used: Usage, retry: RetryNote | None
) -> list[TransactionItem]:
    """The finish transaction: the batch's item first (its condition failing means LeaseLost), the retry's
    registration if any, and the publication's counters last."""
    pk = publication_pk(batch.app_id, batch.publication_id)
    run_values: dict[str, Any] = {":yes": True, ":owner": owner, ":slice": last.index, ":after": last.index + 1}
    run_set = "SET finished = :yes, next_slice = :after"
    if retry is not None:
        run_set += ", last_retry = :retry"
        run_values[":retry"] = _retry_value(retry)
    ops: list[TransactionItem] = [
        Update(
            _key(batch),
            run_set + " REMOVE #owner, lease_until",
            condition="#owner = :owner AND next_slice = :slice",
            names={"#owner": "owner"},
            values=run_values,
        )
    ]
    if retry is not None:
        ops.append(Put({"pk": pk, "sk": job_sk(retry.job_key), "expires_at": int(time.time()) + _EXPIRY_S}))
    ops.append(
        Update(
            {"pk": pk, "sk": PUBLICATION_SK},
            "ADD passed :passed, failed :failed, possible_duplicates :dups, delivery_batches_done :one, "
            "delivery_batches :retries, " + USAGE_ADDITIONS,
            condition="attribute_exists(pk)",
            values={
                ":passed": total.passed,
                ":failed": total.failed,
                ":dups": total.duplicates,
                ":one": 1,
                ":retries": 1 if retry is not None else 0,
                # The finish transaction is metered by formula: it is the batch's last call.
                **usage_values(used, (len(ops) + 1) * TRANSACTION_UNITS_PER_ITEM),
            },
        )
    )
    return ops


def _retry_note(value: dict[str, Any]) -> RetryNote:
    return RetryNote(
        job_key=str(value["job_key"]),
        positions=[int(p) for p in value["positions"]],
        delay_s=int(value["delay_s"]),
    )


_deserializer = TypeDeserializer()


def _retry_value(retry: RetryNote) -> dict[str, Any]:
    return {"job_key": retry.job_key, "positions": retry.positions, "delay_s": retry.delay_s}
