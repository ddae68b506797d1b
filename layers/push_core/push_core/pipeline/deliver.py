"""Stage two of the fan-out: deliver a packed batch, slice by slice, never sending a recorded slice again.

A batch is worked on under a lease (one invocation at a time, so a duplicated SQS message does not send
twice). After each slice its dead targets go to feedback and the slice is recorded, with the positions
of its transient targets: one small write per slice, not one per target. The finish records the last
slice, counts the batch into its publication and registers one delayed retry batch for every transient
target, in one transaction; then the retry is sent. A redelivered batch resumes after the last recorded
slice. The one window left is "the provider accepted, then the process died before the slice was
recorded": at most one slice, and the invocation that takes the batch over counts it
(``possible_duplicates`` on the publication) and logs which devices it was. Requests in flight on a
connection that broke are counted and logged the same way.
"""

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from push_core import usage
from push_core.models import FeedbackEvent, InboxMessage, Receipt, Target
from push_core.observability import logger, metrics
from push_core.pipeline.jobs import DeliveryJob, delivery_job_adapter
from push_core.pipeline.ledger import (
    BatchFinished,
    BatchKey,
    BatchLeased,
    BatchLedger,
    LeaseLost,
    RetryNote,
    SliceRecord,
    Tally,
)
from push_core.pipeline.send import DeliveryReport

DAY_SECONDS = 86_400
_BACKOFF_BASE_S = 2.0
_BACKOFF_CAP_S = 600.0

RemainingTime = Callable[[], float]
# Why targets over the app's DeliveriesPerHour quota count as failed (receipts and logs).
QUOTA_EXCEEDED = "quota_exceeded"
POSSIBLE_DUPLICATES_LOG = "these targets may receive the message twice"


@dataclass(frozen=True)
class BatchRules:
    """How batches are worked through; the defaults are the deployment's (tests shrink slices)."""

    # Targets per slice: the unit of checkpointing, hence the most a crash can send twice. 500 APNs sends
    # take well under a second on one connection, and a slice's record costs one write unit.
    slice_size: int = 500
    # Before each slice the invocation checks it has this long left, and otherwise hands the rest back.
    handback_margin_s: float = 10.0
    # Without a Lambda context (tests, scripts), a lease lasts as long as the function's timeout would.
    default_lease_s: float = 60.0
    # Like SNS mobile push: about 50 attempts spread over about 6 hours, then the target counts as failed.
    max_attempts: int = 50
    publication_ttl_days: int = 30
    inbox_ttl_days: int = 30


class SliceSender(Protocol):
    """Sends one slice to its targets' platforms (pipeline/send.py's DeliveryService)."""

    def deliver(
        self,
        app_id: str,
        message: InboxMessage,
        targets: Sequence[Target],
        *,
        inbox_expires_at: int,
        final_attempt: bool,
    ) -> DeliveryReport: ...


class DeliveryQueues(Protocol):
    """Where the deliver stage sends jobs: its own queue (retries, hand-backs) and the feedback queue."""

    def requeue(self, job: DeliveryJob, delay_s: int = 0) -> None: ...

    def report_dead(self, events: list[FeedbackEvent]) -> None: ...


ReceiptWriter = Callable[[str, str, list[Receipt], int], None]
# (app_id, deliveries wanted) -> how many the app's hourly quota grants.
DeliveryQuota = Callable[[str, int], int]


def remaining_time(lambda_context: LambdaContext | None) -> RemainingTime | None:
    """Seconds the invocation has left, asked afresh at each call (None outside Lambda: no deadline)."""
    if lambda_context is None:
        return None
    return lambda: lambda_context.get_remaining_time_in_millis() / 1000


def retry_delay_s(attempt: int, retry_after_s: float, rng: random.Random | None = None) -> int:
    """Exponential back-off (capped) with equal jitter, never sooner than the provider asked.

    Equal jitter keeps at least half of each step, so 50 attempts reliably span about 6 hours while
    retries of one failure burst still spread out. SQS caps a delay at 900 s; a longer Retry-After
    is honoured as far as SQS allows and the provider says so again if it still means it.
    """
    step = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2 ** min(attempt, 30))
    jittered = step / 2 + (rng or random).uniform(0, step / 2)
    return int(max(retry_after_s, jittered, 1))


def slices(targets: list[Target], size: int) -> list[list[Target]]:
    """The batch's slices; deterministic, so every holder of the batch agrees on what slice n is."""
    return [targets[start : start + size] for start in range(0, len(targets), size)]


def retry_job(job: DeliveryJob, targets: list[Target]) -> DeliveryJob:
    """The batch's one retry: what its slices left over, keyed by the batch (unique down every chain)."""
    return DeliveryJob(
        app_id=job.app_id,
        publication_id=job.publication_id,
        created_at=job.created_at,
        content=job.content,
        targets=targets,
        origin=job.job_key,
        index=0,
        attempt=job.attempt + 1,
    )


@dataclass
class _Holding:
    """One invocation's hold on a batch: what it took over and what its slices have added so far."""

    job: DeliveryJob
    batch: BatchKey
    owner: str
    message: InboxMessage
    parts: list[list[Target]]
    first_slice: int
    now: int
    total: Tally
    retry_positions: list[int]
    retry_delay_s: int
    granted: int  # deliveries the app's quota still grants this invocation
    carried: int = 0  # possible duplicates found on takeover, recorded with the first slice this holder records
    position: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchDelivery:
    """Stage two of the fan-out: deliver a packed batch slice by slice, never sending a recorded slice again.

    Everything it touches is passed in (see push_core/assembly.py for the deployment's parts).
    """

    ledger: BatchLedger
    sender: SliceSender
    queues: DeliveryQueues
    receipts: ReceiptWriter
    quota: DeliveryQuota
    rules: BatchRules = BatchRules()
    clock: Callable[[], float] = time.time

    def deliver(self, job: DeliveryJob, remaining_s: RemainingTime | None = None) -> None:
        """deliver_slices, with the AWS requests and capacity it causes counted into the publication."""
        with usage.metered() as used:
            self.deliver_slices(job, used, remaining_s)

    def handle_record(self, record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
        """One SQS record of the delivery queue; raising marks just this record as failed."""
        self.deliver(delivery_job_adapter.validate_json(record.body), remaining_time(lambda_context))

    def deliver_slices(self, job: DeliveryJob, used: usage.Usage, remaining_s: RemainingTime | None = None) -> None:
        """Deliver the batch's unrecorded slices while time allows, then count the batch into its publication."""
        left = remaining_s or (lambda: self.rules.default_lease_s)
        holding = self._take(job, left)
        if holding is None:
            return
        try:
            for index in range(holding.first_slice, len(holding.parts)):
                if index > holding.first_slice and left() < self.rules.handback_margin_s:
                    self._hand_back(holding)
                    return
                record = self._send_slice(holding, index)
                if index + 1 < len(holding.parts):
                    self.ledger.record_slice(holding.batch, holding.owner, record)
                else:  # the last slice is recorded by the finish itself, with the batch's one retry registered
                    self._finish(holding, record, used)
        except LeaseLost:
            # Ran past the lease: the new holder resumes from what was recorded and counts the overlap.
            logger.warning("lost the lease on a delivery batch", extra={"job_key": job.job_key})

    def _take(self, job: DeliveryJob, left: RemainingTime) -> _Holding | None:
        """Claim the batch's lease and set up where this invocation starts; None when it is not ours to do."""
        batch = BatchKey(job.app_id, job.publication_id, job.job_key)
        owner = uuid.uuid4().hex
        started = self.clock()
        try:
            progress = self.ledger.claim(batch, owner, now=started, lease_until=started + left())
        except BatchFinished as finished:
            logger.info("delivery batch already done", extra={"job_key": job.job_key})
            if finished.retry is not None:  # its holder may have died between the finish and sending it
                self._send_retry(job, finished.retry)
            return None
        except BatchLeased:
            logger.info("delivery batch held by another invocation", extra={"job_key": job.job_key})
            return None
        parts = slices(job.targets, self.rules.slice_size)
        holding = _Holding(
            job=job,
            batch=batch,
            owner=owner,
            message=InboxMessage(publication_id=job.publication_id, content=job.content, created_at=job.created_at),
            parts=parts,
            first_slice=progress.next_slice,
            now=int(started),
            total=Tally(progress.passed, progress.failed, progress.duplicates),
            retry_positions=list(progress.retry_positions),
            retry_delay_s=progress.retry_delay_s,
            # The app's hourly quota, taken once per invocation for what is left of the batch (a resumed
            # batch is counted again: the quota errs on the safe side); targets beyond it count as failed.
            granted=self.quota(job.app_id, sum(len(part) for part in parts[progress.next_slice :])),
            position={target.device_id: index for index, target in enumerate(job.targets)},
        )
        if progress.interrupted_slice is not None and progress.interrupted_slice < len(parts):
            window = [t.device_id for t in parts[progress.interrupted_slice]]
            holding.carried = _possible_duplicates(job, "an earlier invocation died while sending this slice", window)
        return holding

    def _send_slice(self, holding: _Holding, index: int) -> SliceRecord:
        """Send one slice (what the quota grants of it), report its dead targets and receipts, and tally it."""
        job, part = holding.job, holding.parts[index]
        sending, holding.granted = part[: holding.granted], max(0, holding.granted - len(part))
        report = self.sender.deliver(
            job.app_id,
            holding.message,
            sending,
            inbox_expires_at=holding.now + self.rules.inbox_ttl_days * DAY_SECONDS,
            final_attempt=job.attempt + 1 >= self.rules.max_attempts,
        )
        report.refuse(part[len(sending) :], QUOTA_EXCEEDED)
        self._report_dead_and_receipts(job, report, holding.now)
        doubtful, holding.carried = holding.carried, 0
        if report.ambiguous:
            cause = "the connection broke with these requests in flight"
            doubtful += _possible_duplicates(job, cause, [t.device_id for t in report.ambiguous])
        left_over = tuple(holding.position[target.device_id] for target in report.retry)
        if left_over:
            holding.retry_positions += left_over
            holding.retry_delay_s = max(holding.retry_delay_s, retry_delay_s(job.attempt, report.retry_after_s))
        record = SliceRecord(index, report.passed, report.failed, doubtful, left_over, holding.retry_delay_s)
        holding.total.add(record)
        metrics.add_metric(name="Deliveries", unit="Count", value=report.passed)
        metrics.add_metric(name="FailedDeliveries", unit="Count", value=report.failed)
        metrics.add_metric(name="Retries", unit="Count", value=len(report.retry))
        return record

    def _finish(self, holding: _Holding, record: SliceRecord, used: usage.Usage) -> None:
        """Record the last slice and count the batch, registering its retry; then send that retry."""
        job = holding.job
        positions = holding.retry_positions
        note = RetryNote(retry_job(job, []).job_key, positions, holding.retry_delay_s) if positions else None
        self.ledger.finish(holding.batch, holding.owner, record, holding.total, used, note)
        if note is not None:
            self._send_retry(job, note)

    def _report_dead_and_receipts(self, job: DeliveryJob, report: DeliveryReport, now: int) -> None:
        """Send dead targets to feedback and store receipts: both idempotent, so a repeat does no harm."""
        if report.dead:
            events = [
                FeedbackEvent(
                    app_id=job.app_id,
                    device_id=target.device_id,
                    platform=target.platform,
                    reason=outcome.reason,
                    provider_timestamp_ms=outcome.provider_timestamp_ms,
                    observed_at=now,
                )
                for target, outcome in report.dead
            ]
            self.queues.report_dead(events)
        if report.receipts:
            expires_at = now + self.rules.publication_ttl_days * DAY_SECONDS
            self.receipts(job.app_id, job.publication_id, report.receipts, expires_at)

    def _send_retry(self, job: DeliveryJob, note: RetryNote) -> None:
        """Queue the batch's registered retry (again, after a takeover: its key makes a second copy harmless)."""
        self.queues.requeue(retry_job(job, [job.targets[p] for p in note.positions]), delay_s=note.delay_s)

    def _hand_back(self, holding: _Holding) -> None:
        """Release the batch and queue it again: a fresh invocation resumes at the first unrecorded slice.

        Released first: a copy that arrived while the lease was still held would step aside and be lost.
        """
        self.ledger.release(holding.batch, holding.owner)
        self.queues.requeue(holding.job)
        logger.info("handed the rest of a batch back", extra={"job_key": holding.job.job_key})


def _possible_duplicates(job: DeliveryJob, cause: str, device_ids: list[str]) -> int:
    """Log and count targets that may get this message twice; returns how many."""
    logger.warning(
        POSSIBLE_DUPLICATES_LOG,
        extra={"job_key": job.job_key, "publication_id": job.publication_id, "cause": cause, "device_ids": device_ids},
    )
    metrics.add_metric(name="PossibleDuplicates", unit="Count", value=len(device_ids))
    return len(device_ids)
