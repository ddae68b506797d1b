"""The composition root: the one place that builds the pipeline's stages from the deployment's settings.

The stages take everything they touch as arguments (ledger, sender, queues, clock, slice size); only this
module knows which concrete parts a deployment uses. Each execution environment builds them once, on its
first event, and keeps them (warm starts reuse provider connections). ``reset`` forgets every cached
part of the layer, as a fresh execution environment would have none; the local stack calls it before it
runs a deployment's handlers in an existing process, and tests call it between deployments.
``replaced`` builds the stages with some parts swapped (tests: an in-memory ledger, a ledger that dies
mid-batch, a fake clock), so no test reaches into a module's private names.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from push_core import credentials, idempotency, limits
from push_core.config import get_settings
from push_core.pipeline import jobs
from push_core.pipeline.deliver import BatchDelivery, BatchRules
from push_core.pipeline.expand import AudienceExpansion
from push_core.pipeline.jobs import JobQueues
from push_core.pipeline.send import delivery_service
from push_core.storage import receipts as receipt_store
from push_core.storage.batch_progress import DynamoBatchLedger
from push_core.storage.table import reset_clients

_RULES = {f.name for f in fields(BatchRules)}
_replacements: dict[str, Any] = {}


def job_queues() -> JobQueues:
    """The deployment's job queues (or the ones ``replaced`` has swapped in)."""
    if "queues" in _replacements:
        queues: JobQueues = _replacements["queues"]
        return queues
    settings = get_settings()
    return JobQueues(
        fanout_url=settings.fanout_queue_url,
        delivery_url=settings.delivery_queue_url,
        feedback_url=settings.feedback_queue_url,
        message_bytes=settings.job_message_bytes,
    )


def batch_rules() -> BatchRules:
    """How this execution environment works through batches (with any rules ``replaced`` has swapped in)."""
    settings = get_settings()
    rules = BatchRules(publication_ttl_days=settings.publication_ttl_days, inbox_ttl_days=settings.inbox_ttl_days)
    return replace(rules, **{name: value for name, value in _replacements.items() if name in _RULES})


@lru_cache(maxsize=1)
def batch_delivery() -> BatchDelivery:
    """The deliver stage of this execution environment, with any parts ``replaced`` has swapped in."""
    # The queues come from job_queues, which honours a replacement itself.
    parts = {name: value for name, value in _replacements.items() if name not in _RULES and name != "queues"}
    return BatchDelivery(
        ledger=parts.pop("ledger", DynamoBatchLedger()),
        sender=parts.pop("sender", None) or delivery_service(),
        queues=job_queues(),
        receipts=parts.pop("receipts", receipt_store.write),
        quota=parts.pop("quota", limits.take_deliveries),
        rules=batch_rules(),
        **parts,
    )


@lru_cache(maxsize=1)
def audience_expansion() -> AudienceExpansion:
    """The expand stage of this execution environment; it delivers small audiences through batch_delivery."""
    settings = get_settings()
    return AudienceExpansion(
        queues=job_queues(),
        deliver_inline=lambda job, remaining_s: batch_delivery().deliver(job, remaining_s),
        page_size=settings.expand_page_size,
        inline_delivery_max=settings.inline_delivery_max,
        publication_ttl_days=settings.publication_ttl_days,
    )


def deliver_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    """DeliverFunction's record handler."""
    batch_delivery().handle_record(record, lambda_context)


def fanout_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    """FanoutFunction's record handler."""
    audience_expansion().handle_record(record, lambda_context)


@contextmanager
def replaced(**parts: Any) -> Iterator[None]:
    """Build the stages with parts swapped in: BatchDelivery's fields (ledger, sender, queues, receipts,
    quota, clock) or BatchRules' (slice_size, handback_margin_s, ...); as before once the block ends."""
    unknown = set(parts) - _RULES - {f.name for f in fields(BatchDelivery)}
    if unknown:
        raise TypeError(f"no such part of the pipeline: {', '.join(sorted(unknown))}")
    before = dict(_replacements)
    _replacements.update(parts)
    _forget_stages()
    try:
        yield
    finally:
        _replacements.clear()
        _replacements.update(before)
        _forget_stages()


def _forget_stages() -> None:
    batch_delivery.cache_clear()
    audience_expansion.cache_clear()


def reset() -> None:
    """Forget every part this execution environment has built: settings, AWS clients, credentials, the
    providers and their connections, the idempotency store and the stages."""
    get_settings.cache_clear()
    reset_clients()
    jobs.sqs_client.cache_clear()
    credentials.secrets_client.cache_clear()
    delivery_service.cache_clear()
    idempotency.persistence.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    _forget_stages()
