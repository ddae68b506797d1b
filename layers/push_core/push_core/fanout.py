"""Fan-out: expand an audience page by page and deliver to it, exactly once per counted target."""

import random
from collections.abc import Callable

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from push_core import registry, usage
from push_core.config import get_settings
from push_core.delivery import DeliveryReport, delivery_service
from push_core.models import InboxMessage, Target, epoch_seconds, utc_now
from push_core.observability import logger, metrics
from push_core.queueing import ExpandJob, FeedbackEvent, PurgeAppJob, fanout_job_adapter, send_jobs
from push_core.storage import publications as publication_store
from push_core.storage import receipts as receipt_store
from push_core.storage import subscriptions as subscription_store

DAY_SECONDS = 86_400
# Like SNS mobile push: about 50 attempts spread over about 6 hours, then the target counts as failed.
MAX_ATTEMPTS = 50
_BACKOFF_BASE_S = 2.0
_BACKOFF_CAP_S = 600.0
# A Web Push target (endpoint and keys) is ~400 bytes of JSON: 200 per job stays far below 256 KB.
RETRY_TARGETS_PER_JOB = 200
# Targets are delivered in slices; before each one the invocation checks it has this much time left,
# and otherwise hands the rest back rather than being killed mid-page.
DELIVERY_SLICE = 250
HANDBACK_MARGIN_S = 15.0
HANDBACK_CHUNK = 1_000_000  # keeps a hand-back's key apart from its parent's retry slices


def run_job(job: ExpandJob | PurgeAppJob, remaining_s: Callable[[], float] = lambda: float("inf")) -> None:
    """Carry out one job from the fan-out queue; remaining_s tells how long the invocation has left."""
    if isinstance(job, ExpandJob):
        expand(job, remaining_s)
    else:
        follow_up = registry.purge_app_page(job)
        if follow_up is not None:
            send_jobs(get_settings().fanout_queue_url, [follow_up])


def retry_delay_s(attempt: int, retry_after_s: float, rng: random.Random | None = None) -> int:
    """Exponential back-off (capped) with equal jitter, never sooner than the provider asked.

    Equal jitter keeps at least half of each step, so 50 attempts reliably span about 6 hours while
    retries of one failure burst still spread out. SQS caps a delay at 900 s; a longer Retry-After
    is honoured as far as SQS allows and the provider says so again if it still means it.
    """
    step = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2 ** min(attempt, 30))
    jittered = step / 2 + (rng or random).uniform(0, step / 2)
    return int(max(retry_after_s, jittered, 1))


def _page_targets(job: ExpandJob, expires_at: int) -> list[Target]:
    """The targets of this job; for a topic page, also registers and sends the next page's job first."""
    if job.topic is None:
        return list(job.targets)
    settings = get_settings()
    page = subscription_store.subscriber_page(job.app_id, job.topic, job.shard, job.cursor, settings.expand_page_size)
    if page.next_cursor is not None:
        follow_up = job.model_copy(update={"cursor": page.next_cursor})
        publication_store.register_job(job.app_id, job.publication_id, follow_up.job_key, expires_at)
        send_jobs(settings.fanout_queue_url, [follow_up])
    explicit = set(job.explicit_device_ids)
    targets = [t for t in page.targets if t.device_id not in explicit]
    if job.earlier_topics:
        reached = subscription_store.is_subscribed_to_any(
            job.app_id, [t.device_id for t in targets], job.earlier_topics
        )
        targets = [t for t in targets if t.device_id not in reached]
    return targets


def _follow_up(job: ExpandJob, report: DeliveryReport, now: int, expires_at: int) -> None:
    """Send what the page's outcomes call for: dead targets to feedback, transient ones to a delayed retry."""
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
        send_jobs(settings.feedback_queue_url, events)
    if report.retry:
        retries = [
            ExpandJob(
                app_id=job.app_id,
                publication_id=job.publication_id,
                created_at=job.created_at,
                content=job.content,
                targets=report.retry[start : start + RETRY_TARGETS_PER_JOB],
                retry_of=job.job_key,  # the immediate parent: keys stay unique down every chain of retries
                attempt=job.attempt + 1,
                chunk=start // RETRY_TARGETS_PER_JOB,
            )
            for start in range(0, len(report.retry), RETRY_TARGETS_PER_JOB)
        ]
        for retry in retries:
            publication_store.register_job(job.app_id, job.publication_id, retry.job_key, expires_at)
        send_jobs(settings.fanout_queue_url, retries, delay_s=retry_delay_s(job.attempt, report.retry_after_s))


def expand(job: ExpandJob, remaining_s: Callable[[], float] = lambda: float("inf")) -> None:
    """expand_page, with the AWS requests and capacity it causes counted into the publication."""
    with usage.metered() as used:
        expand_page(job, used, remaining_s)


def _deliver_in_slices(
    job: ExpandJob,
    message: InboxMessage,
    targets: list[Target],
    inbox_expires_at: int,
    remaining_s: Callable[[], float],
) -> tuple[DeliveryReport, list[Target]]:
    """Deliver slice by slice while the invocation has time; returns the report and what is left over."""
    report = DeliveryReport(receipts=[] if job.content.receipts else None)
    for start in range(0, len(targets), DELIVERY_SLICE):
        if start and remaining_s() < HANDBACK_MARGIN_S:
            return report, targets[start:]
        report.merge(
            delivery_service().deliver(
                job.app_id,
                message,
                targets[start : start + DELIVERY_SLICE],
                inbox_expires_at=inbox_expires_at,
                final_attempt=job.attempt + 1 >= MAX_ATTEMPTS,
            )
        )
    return report, []


def _hand_back(job: ExpandJob, rest: list[Target], expires_at: int) -> None:
    """Queue the targets this invocation had no time for, counted once already, as a job of their own."""
    handback = ExpandJob(
        app_id=job.app_id,
        publication_id=job.publication_id,
        created_at=job.created_at,
        content=job.content,
        targets=rest,
        retry_of=job.job_key,
        attempt=job.attempt,  # not a retry: the same attempt, continued by a fresh invocation
        chunk=HANDBACK_CHUNK,
    )
    publication_store.register_job(job.app_id, job.publication_id, handback.job_key, expires_at)
    send_jobs(get_settings().fanout_queue_url, [handback])
    logger.info("handed back undelivered targets", extra={"job_key": job.job_key, "targets": len(rest)})


def expand_page(job: ExpandJob, used: usage.Usage, remaining_s: Callable[[], float] = lambda: float("inf")) -> None:
    """Expand one page of the audience, deliver to it, and record the result once.

    Order matters for exactly-once counting: follow-up jobs (next page, retries) are registered and
    sent before this job's checkpoint, so a crash anywhere leaves either a redelivery that redoes the
    page or a checkpoint that makes the redelivery a no-op.
    """
    settings = get_settings()
    if publication_store.job_applied(job.app_id, job.publication_id, job.job_key):
        logger.info("fan-out job already applied", extra={"job_key": job.job_key})
        return
    now = epoch_seconds(utc_now())
    expires_at = now + settings.publication_ttl_days * DAY_SECONDS
    targets = _page_targets(job, expires_at)
    message = InboxMessage(message_id=job.publication_id, content=job.content, created_at=job.created_at)
    inbox_expires_at = now + settings.inbox_ttl_days * DAY_SECONDS
    report, rest = _deliver_in_slices(job, message, targets, inbox_expires_at, remaining_s)
    if rest:
        _hand_back(job, rest, expires_at)
    _follow_up(job, report, now, expires_at)
    if report.receipts:
        receipt_store.write(job.app_id, job.publication_id, report.receipts, expires_at)
    applied = publication_store.apply_job_result(
        job.app_id,
        job.publication_id,
        job.job_key,
        total=0 if job.retry_of is not None else len(targets),  # a retry's targets were counted by its origin
        passed=report.passed,
        failed=report.failed,
        expires_at=expires_at,
        used=used,
    )
    if applied:
        metrics.add_metric(name="Deliveries", unit="Count", value=report.passed)
        metrics.add_metric(name="FailedDeliveries", unit="Count", value=report.failed)
        metrics.add_metric(name="Retries", unit="Count", value=len(report.retry))


def handle_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    """One SQS record of the fan-out queue; raising marks just this record as failed."""
    job = fanout_job_adapter.validate_json(record.body)
    if lambda_context is None:
        run_job(job)
    else:
        run_job(job, lambda: lambda_context.get_remaining_time_in_millis() / 1000)
