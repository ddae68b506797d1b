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
import uuid
from collections.abc import Callable

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from push_core import limits, usage
from push_core.config import get_settings
from push_core.models import InboxMessage, Target, utc_now
from push_core.observability import logger, metrics
from push_core.pipeline.jobs import DeliveryJob, FeedbackEvent, delivery_job_adapter, send_jobs
from push_core.pipeline.send import DeliveryReport, delivery_service
from push_core.storage import batch_progress
from push_core.storage import receipts as receipt_store
from push_core.storage.batch_progress import RetryNote, SliceRecord

DAY_SECONDS = 86_400
# Like SNS mobile push: about 50 attempts spread over about 6 hours, then the target counts as failed.
MAX_ATTEMPTS = 50
_BACKOFF_BASE_S = 2.0
_BACKOFF_CAP_S = 600.0
# Targets per slice: the unit of checkpointing, hence the most a crash can send twice. 500 APNs sends
# take well under a second on one connection, and a slice's record costs one write unit.
SLICE_SIZE = 500
# Before each slice the invocation checks it has this long left, and otherwise hands the rest back.
HANDBACK_MARGIN_S = 10.0
# Without a Lambda context (tests, scripts), a lease lasts as long as the function's timeout would.
_DEFAULT_LEASE_S = 60.0

RemainingTime = Callable[[], float]
# Why targets over the app's DeliveriesPerHour quota count as failed (receipts and logs).
QUOTA_EXCEEDED = "quota_exceeded"


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


def slices(targets: list[Target]) -> list[list[Target]]:
    """The batch's slices; deterministic, so every holder of the batch agrees on what slice n is."""
    return [targets[start : start + SLICE_SIZE] for start in range(0, len(targets), SLICE_SIZE)]


def _report_dead_and_receipts(job: DeliveryJob, report: DeliveryReport, now: int, expires_at: int) -> None:
    """Send dead targets to feedback and store receipts: both idempotent, so a repeat does no harm."""
    settings = get_settings()
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
        send_jobs(settings.feedback_queue_url, events, limit_bytes=settings.job_message_bytes)
    if report.receipts:
        receipt_store.write(job.app_id, job.publication_id, report.receipts, expires_at)


def _retry_job(job: DeliveryJob, targets: list[Target]) -> DeliveryJob:
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


def _send_retry(job: DeliveryJob, note: RetryNote) -> None:
    """Queue the batch's registered retry (again, after a takeover: its key makes a second copy harmless)."""
    settings = get_settings()
    retry = _retry_job(job, [job.targets[p] for p in note.positions])
    send_jobs(settings.delivery_queue_url, [retry], delay_s=note.delay_s, limit_bytes=settings.job_message_bytes)


def _possible_duplicates(job: DeliveryJob, cause: str, device_ids: list[str]) -> int:
    """Log and count targets that may get this message twice; returns how many."""
    logger.warning(
        POSSIBLE_DUPLICATES_LOG,
        extra={"job_key": job.job_key, "publication_id": job.publication_id, "cause": cause, "device_ids": device_ids},
    )
    metrics.add_metric(name="PossibleDuplicates", unit="Count", value=len(device_ids))
    return len(device_ids)


POSSIBLE_DUPLICATES_LOG = "these targets may receive the message twice"


def _hand_back(job: DeliveryJob, owner: str) -> None:
    """Release the batch and queue it again: a fresh invocation resumes at the first unrecorded slice.

    Released first: a copy that arrived while the lease was still held would step aside and be lost.
    """
    batch_progress.release(job.app_id, job.publication_id, job.job_key, owner)
    settings = get_settings()
    send_jobs(settings.delivery_queue_url, [job], limit_bytes=settings.job_message_bytes)
    logger.info("handed the rest of a batch back", extra={"job_key": job.job_key})


def deliver_batch(job: DeliveryJob, remaining_s: RemainingTime | None = None) -> None:
    """deliver_slices, with the AWS requests and capacity it causes counted into the publication."""
    with usage.metered() as used:
        deliver_slices(job, used, remaining_s)


def deliver_slices(job: DeliveryJob, used: usage.Usage, remaining_s: RemainingTime | None = None) -> None:
    """Deliver the batch's unrecorded slices while time allows, then count the batch into its publication."""
    settings = get_settings()
    left = remaining_s or (lambda: _DEFAULT_LEASE_S)
    owner = uuid.uuid4().hex
    started = utc_now().timestamp()
    try:
        progress = batch_progress.claim(
            job.app_id, job.publication_id, job.job_key, owner, now=started, lease_until=started + left()
        )
    except batch_progress.BatchFinished as finished:
        logger.info("delivery batch already done", extra={"job_key": job.job_key})
        if finished.retry is not None:  # its holder may have died between the finish and sending it
            _send_retry(job, finished.retry)
        return
    except batch_progress.BatchLeased:
        logger.info("delivery batch held by another invocation", extra={"job_key": job.job_key})
        return
    parts = slices(job.targets)
    carried = 0  # possible duplicates found on takeover, recorded with the first slice this holder records
    if progress.interrupted_slice is not None and progress.interrupted_slice < len(parts):
        window = [t.device_id for t in parts[progress.interrupted_slice]]
        carried = _possible_duplicates(job, "an earlier invocation died while sending this slice", window)
    now = int(started)
    expires_at = now + settings.publication_ttl_days * DAY_SECONDS
    message = InboxMessage(message_id=job.publication_id, content=job.content, created_at=job.created_at)
    inbox_expires_at = now + settings.inbox_ttl_days * DAY_SECONDS
    total = batch_progress.Tally(progress.passed, progress.failed, progress.duplicates)
    position = {target.device_id: index for index, target in enumerate(job.targets)}
    retry_positions = list(progress.retry_positions)
    # The app's hourly quota, taken once per invocation for what is left of the batch (a resumed batch
    # is counted again: the quota errs on the safe side); targets beyond it are counted failed.
    granted = limits.take_deliveries(job.app_id, sum(len(part) for part in parts[progress.next_slice :]))
    retry_delay = progress.retry_delay_s
    try:
        for index in range(progress.next_slice, len(parts)):
            if index > progress.next_slice and left() < HANDBACK_MARGIN_S:
                _hand_back(job, owner)
                return
            sending, granted = parts[index][:granted], max(0, granted - len(parts[index]))
            report = delivery_service().deliver(
                job.app_id,
                message,
                sending,
                inbox_expires_at=inbox_expires_at,
                final_attempt=job.attempt + 1 >= MAX_ATTEMPTS,
            )
            report.refuse(parts[index][len(sending) :], QUOTA_EXCEEDED)
            _report_dead_and_receipts(job, report, now, expires_at)
            doubtful = carried
            if report.ambiguous:
                doubtful += _possible_duplicates(
                    job, "the connection broke with these requests in flight", [t.device_id for t in report.ambiguous]
                )
            left_over = tuple(position[target.device_id] for target in report.retry)
            if left_over:
                retry_positions += left_over
                retry_delay = max(retry_delay, retry_delay_s(job.attempt, report.retry_after_s))
            record = SliceRecord(index, report.passed, report.failed, doubtful, left_over, retry_delay)
            total.passed += report.passed
            total.failed += report.failed
            total.duplicates += doubtful
            carried = 0
            metrics.add_metric(name="Deliveries", unit="Count", value=report.passed)
            metrics.add_metric(name="FailedDeliveries", unit="Count", value=report.failed)
            metrics.add_metric(name="Retries", unit="Count", value=len(report.retry))
            if index + 1 < len(parts):
                batch_progress.record_slice(job.app_id, job.publication_id, job.job_key, owner, record)
                continue
            # The last slice is recorded by the finish itself, with the batch's one retry registered.
            note = RetryNote(_retry_job(job, []).job_key, retry_positions, retry_delay) if retry_positions else None
            batch_progress.finish(job.app_id, job.publication_id, job.job_key, owner, record, total, used, note)
            if note is not None:
                _send_retry(job, note)
    except batch_progress.LeaseLost:
        # Ran past the lease: the new holder resumes from what was recorded and counts the overlap.
        logger.warning("lost the lease on a delivery batch", extra={"job_key": job.job_key})


def handle_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    """One SQS record of the delivery queue; raising marks just this record as failed."""
    deliver_batch(delivery_job_adapter.validate_json(record.body), remaining_time(lambda_context))
