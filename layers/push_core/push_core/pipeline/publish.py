"""Accepting a publication: record it, then enqueue one expand job per audience shard."""

from collections.abc import Collection
from dataclasses import dataclass

from push_core import limits
from push_core.config import get_settings
from push_core.errors import Conflict, NotFound, UnprocessableEntity
from push_core.identifiers import is_sortable_id, new_sortable_id
from push_core.models import (
    ALL_DEVICES_TOPIC,
    MessageContent,
    Platform,
    Publication,
    Receipt,
    Target,
    epoch_seconds,
    utc_now,
)
from push_core.pipeline.jobs import ExpandJob, JobQueues
from push_core.providers.apns.payload import build_request
from push_core.providers.contract import PushMessage
from push_core.providers.fcm.message import build_body
from push_core.providers.payload_limits import PayloadError, PayloadTooLarge
from push_core.providers.webpush.encryption import MAX_PLAINTEXT_BYTES
from push_core.providers.webpush.payload import render_payload
from push_core.storage import devices as device_store
from push_core.storage import publications as publication_store
from push_core.storage import receipts as receipt_store

DAY_SECONDS = 86_400
# The platforms whose payloads have a byte limit; a topic may hold devices of any of them.
LIMITED_PLATFORMS = (Platform.APNS, Platform.FCM, Platform.WEBPUSH)


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


def _excess_bytes(platform: Platform, message: PushMessage) -> int:
    """By how many bytes message is over platform's limit once its title and body are trimmed (0: it fits)."""
    try:
        if platform is Platform.APNS:
            build_request(message, "", trim=True)  # the topic only shapes headers, never the payload
        elif platform is Platform.FCM:
            build_body(message)
        else:
            return max(0, len(render_payload(message)) - MAX_PLAINTEXT_BYTES)
    except PayloadTooLarge as error:
        return error.excess
    except PayloadError:  # refused for another reason (an override), reported per target at delivery as before
        return 0
    return 0


def check_payload_fits(publication_id: str, content: MessageContent, platforms: Collection[Platform]) -> None:
    """UnprocessableEntity when a platform cannot carry the message even with its title and body trimmed away.

    A long title or body is trimmed at delivery; data and overrides never are, so when they alone are too big
    for a platform the publication is refused here, before anything is stored or queued.
    """
    message = PushMessage(publication_id=publication_id, content=content, overrides=content.overrides)
    excess = {platform: _excess_bytes(platform, message) for platform in LIMITED_PLATFORMS if platform in platforms}
    over = ", ".join(f"{platform.value} by {count} bytes" for platform, count in excess.items() if count > 0)
    if over:
        raise UnprocessableEntity(
            f"The message is too large for {over}, even with its title and body trimmed away; send less data.",
            code="payload_too_large_for_platform",
        )


def publish(app_id: str, content: MessageContent, audience: Audience, queues: JobQueues) -> Publication:
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
    publication_id = new_sortable_id()
    # A topic's platforms are unknown until fan-out, so it must fit them all. Inbox pings are left out: a ping
    # that cannot carry the data fails alone, and the inbox still has the message.
    platforms = LIMITED_PLATFORMS if audience.topics else {target.platform for target in explicit}
    check_payload_fits(publication_id, content, platforms)  # before the charge: a refused publish costs nothing
    limits.charge_publication(app_id)  # 429 once the app's publications this minute are spent
    now = epoch_seconds(utc_now())
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
    queues.expand(jobs)
    return publication


def get_publication(app_id: str, publication_id: str) -> Publication:
    """The publication with its counters; NotFound also for another app's id."""
    publication = publication_store.get_publication(app_id, publication_id) if is_sortable_id(publication_id) else None
    if publication is None:
        raise NotFound("No such message.", code="message_not_found")
    return publication


def list_receipts(app_id: str, publication_id: str, cursor: str | None, limit: int) -> tuple[list[Receipt], str | None]:
    """A page of the publication's receipts; Conflict when it was published without ``receipts: true``."""
    publication = get_publication(app_id, publication_id)
    if not publication.content.receipts:
        raise Conflict("This message was published without receipts: true.", code="receipts_not_kept")
    return receipt_store.page(app_id, publication_id, cursor, limit)
