"""Accepting a publication: record it, then enqueue one expand job per audience shard."""

from dataclasses import dataclass

from push_core.config import get_settings
from push_core.errors import NotFound
from push_core.identifiers import is_sortable_id, new_sortable_id
from push_core.models import ALL_DEVICES_TOPIC, MessageContent, Publication, Target, epoch_seconds, utc_now
from push_core.queueing import ExpandJob, send_jobs
from push_core.storage import devices as device_store
from push_core.storage import publications as publication_store

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Audience:
    topics: list[str]
    device_ids: list[str]


def _expand_jobs(
    app_id: str,
    publication_id: str,
    now: int,
    content: MessageContent,
    audience: Audience,
    explicit: list[Target],
    shards: int,
) -> list[ExpandJob]:
    base = {"app_id": app_id, "publication_id": publication_id, "created_at": now, "content": content}
    explicit_ids = [t.device_id for t in explicit]
    jobs = [ExpandJob(**base, targets=explicit)] if explicit else []
    # '*' already reaches every device, so other topics would only add duplicates.
    topics = [ALL_DEVICES_TOPIC] if ALL_DEVICES_TOPIC in audience.topics else list(dict.fromkeys(audience.topics))
    for position, topic in enumerate(topics):
        for shard in range(shards):
            jobs.append(
                ExpandJob(
                    **base,
                    topic=topic,
                    shard=shard,
                    earlier_topics=topics[:position],
                    explicit_device_ids=explicit_ids,
                )
            )
    return jobs


def publish(app_id: str, content: MessageContent, audience: Audience) -> Publication:
    """Record the publication and enqueue its fan-out; the counters fill in as jobs finish."""
    settings = get_settings()
    devices = device_store.get_devices(app_id, audience.device_ids)
    unknown = [d for d in audience.device_ids if d not in devices]
    if unknown:
        raise NotFound(f"No such device: {unknown[0]}.", code="device_not_found")
    explicit = [
        Target(device_id=d.device_id, platform=d.platform, token=d.token, push=d.push)
        for d in devices.values()
        if d.enabled
    ]
    now = epoch_seconds(utc_now())
    publication_id = new_sortable_id()
    jobs = _expand_jobs(app_id, publication_id, now, content, audience, explicit, settings.topic_shards)
    publication = Publication(
        app_id=app_id,
        publication_id=publication_id,
        content=content,
        topics=audience.topics,
        device_ids=audience.device_ids,
        created_at=now,
        expand_jobs=len(jobs),
    )
    publication_store.create_publication(publication, now + settings.publication_ttl_days * DAY_SECONDS)
    send_jobs(settings.fanout_queue_url, jobs)
    return publication


def get_publication(app_id: str, publication_id: str) -> Publication:
    """The publication with its counters; NotFound also for another app's id."""
    publication = publication_store.get_publication(app_id, publication_id) if is_sortable_id(publication_id) else None
    if publication is None:
        raise NotFound("No such message.", code="message_not_found")
    return publication
