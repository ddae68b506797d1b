"""Stage one of the fan-out: expand an audience page by page into packed delivery batches.

Each expand job reads one Query page of a topic shard (or takes a publication's explicit targets),
registers and sends the next page's job first (so shards page along while this page is packed), packs
the page into delivery batches close to SQS's size limit, registers them (adding their targets to the
publication's total in the same write, before any of them can count a delivery) and sends them, and
only then records its own checkpoint. A crash anywhere leaves either a redelivery that redoes the page
(every job it sends has a deterministic key, so nothing counts twice) or a checkpoint that makes the
redelivery a no-op. A small audience is delivered inline, as the same registered, checkpointed batch,
without the second queue hop.
"""

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from push_core import registry, usage
from push_core.models import Target, epoch_seconds, utc_now
from push_core.observability import logger
from push_core.pipeline.deliver import DAY_SECONDS, RemainingTime, remaining_time
from push_core.pipeline.jobs import DeliveryJob, ExpandJob, JobQueues, PurgeAppJob, fanout_job_adapter, pack_targets
from push_core.storage import publications as publication_store
from push_core.storage import subscriptions as subscription_store

InlineDelivery = Callable[[DeliveryJob, RemainingTime | None], None]


def delivery_batches(job: ExpandJob, targets: list[Target], limit_bytes: int) -> list[DeliveryJob]:
    """The page's targets as delivery jobs, each packed close to the queue's message size limit."""
    envelope = DeliveryJob(
        app_id=job.app_id,
        publication_id=job.publication_id,
        created_at=job.created_at,
        content=job.content,
        targets=[],
        origin=job.job_key,
        index=0,
    )
    return [
        envelope.model_copy(update={"targets": batch, "index": index})
        for index, batch in enumerate(pack_targets(targets, envelope, limit_bytes))
    ]


@dataclass(frozen=True)
class AudienceExpansion:
    """Stage one of the fan-out, with the queues, the inline delivery and the limits passed in
    (see push_core/assembly.py for the deployment's)."""

    queues: JobQueues
    deliver_inline: InlineDelivery
    page_size: int = 10_000
    inline_delivery_max: int = 500
    publication_ttl_days: int = 30

    def handle_record(self, record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
        """One SQS record of the fan-out queue; raising marks just this record as failed."""
        self.run_job(fanout_job_adapter.validate_json(record.body), remaining_time(lambda_context))

    def run_job(self, job: ExpandJob | PurgeAppJob, remaining_s: RemainingTime | None = None) -> None:
        """Carry out one job from the fan-out queue; remaining_s tells how long the invocation has left."""
        if isinstance(job, ExpandJob):
            self.expand(job, remaining_s)
        else:
            follow_up = registry.purge_app_page(job)
            if follow_up is not None:
                self.queues.expand([follow_up])

    def expand(self, job: ExpandJob, remaining_s: RemainingTime | None = None) -> None:
        """expand_page, with the AWS requests and capacity it causes counted into the publication."""
        with usage.metered() as used:
            self.expand_page(job, used, remaining_s)

    def expand_page(self, job: ExpandJob, used: usage.Usage, remaining_s: RemainingTime | None = None) -> None:
        """Expand one page into registered, queued delivery batches and record the page once.

        A whole audience small enough is delivered here, before the checkpoint, as its own checkpointed
        batch (metered apart): a redelivered page then finds the batch done, or resumes it.
        """
        if publication_store.job_applied(job.app_id, job.publication_id, job.job_key):
            logger.info("fan-out job already applied", extra={"job_key": job.job_key})
            return
        expires_at = epoch_seconds(utc_now()) + self.publication_ttl_days * DAY_SECONDS
        targets, whole_audience = self._page_targets(job, expires_at)
        batches = delivery_batches(job, targets, self.queues.message_bytes) if targets else []
        small = whole_audience and len(batches) == 1 and len(targets) <= self.inline_delivery_max
        publication_store.register_delivery_batches(
            job.app_id, job.publication_id, [(b.job_key, len(b.targets)) for b in batches], expires_at
        )
        if small:
            self.deliver_inline(batches[0], remaining_s)
        else:
            self.queues.deliver(batches)
        applied = publication_store.apply_job_result(
            job.app_id, job.publication_id, job.job_key, targets=len(targets), expires_at=expires_at, used=used
        )
        if applied:
            extra = {"job_key": job.job_key, "targets": len(targets), "batches": len(batches)}
            logger.info("expanded a page", extra=extra)

    def _page_targets(self, job: ExpandJob, expires_at: int) -> tuple[list[Target], bool]:
        """The targets of this job and whether it is the whole audience of its shard.

        For a topic page with more to come, the next page's job is registered and sent first.
        """
        if job.topic is None:
            return list(job.targets), True
        page = subscription_store.subscriber_page(job.app_id, job.topic, job.shard, job.cursor, self.page_size)
        if page.next_cursor is not None:
            follow_up = job.model_copy(update={"cursor": page.next_cursor})
            publication_store.register_expand_jobs(job.app_id, job.publication_id, [follow_up.job_key], expires_at)
            self.queues.expand([follow_up])
        explicit = set(job.explicit_device_ids)
        targets = [t for t in page.targets if t.device_id not in explicit]
        if job.earlier_topics:
            reached = subscription_store.is_subscribed_to_any(
                job.app_id, [t.device_id for t in targets], job.earlier_topics
            )
            targets = [t for t in targets if t.device_id not in reached]
        return targets, page.next_cursor is None and job.cursor is None
