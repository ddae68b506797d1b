"""Fan-out: expand an audience page by page and deliver to it, exactly once per counted target."""

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from push_core import registry
from push_core.config import get_settings
from push_core.delivery import deliver
from push_core.models import InboxMessage, epoch_seconds, utc_now
from push_core.observability import logger, metrics
from push_core.queueing import ExpandJob, PurgeAppJob, fanout_job_adapter, send_jobs
from push_core.storage import publications as publication_store
from push_core.storage import subscriptions as subscription_store

DAY_SECONDS = 86_400


def run_job(job: ExpandJob | PurgeAppJob) -> None:
    """Carry out one job from the fan-out queue."""
    if isinstance(job, ExpandJob):
        expand(job)
    else:
        follow_up = registry.purge_app_page(job)
        if follow_up is not None:
            send_jobs(get_settings().fanout_queue_url, [follow_up])


def expand(job: ExpandJob) -> None:
    """Expand one page of the audience, deliver to it, and record the result once.

    Order matters for exactly-once counting: the continuation is registered and sent before this page's
    checkpoint, so a crash anywhere leaves either a redelivery that redoes this page (its inbox writes
    are idempotent) or a checkpoint that makes the redelivery a no-op.
    """
    settings = get_settings()
    if publication_store.job_applied(job.app_id, job.publication_id, job.job_key):
        logger.info("fan-out job already applied", extra={"job_key": job.job_key})
        return
    now = epoch_seconds(utc_now())
    expires_at = now + settings.publication_ttl_days * DAY_SECONDS
    if job.topic is None:
        targets = list(job.targets)
    else:
        page = subscription_store.subscriber_page(
            job.app_id, job.topic, job.shard, job.cursor, settings.expand_page_size
        )
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
    message = InboxMessage(message_id=job.publication_id, content=job.content, created_at=job.created_at)
    report = deliver(job.app_id, message, targets, now + settings.inbox_ttl_days * DAY_SECONDS)
    applied = publication_store.apply_job_result(
        job.app_id,
        job.publication_id,
        job.job_key,
        total=len(targets),
        passed=report.passed,
        failed=report.failed,
        expires_at=expires_at,
    )
    if applied:
        metrics.add_metric(name="Deliveries", unit="Count", value=report.passed)
        metrics.add_metric(name="FailedDeliveries", unit="Count", value=report.failed)


def handle_record(record: SQSRecord) -> None:
    """One SQS record of the fan-out queue; raising marks just this record as failed."""
    run_job(fanout_job_adapter.validate_json(record.body))
