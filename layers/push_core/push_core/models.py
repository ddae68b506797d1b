"""Domain records: what pushlane stores and passes between publish, fan-out and inbox."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field


class Platform(StrEnum):
    """How a device receives messages."""

    INBOX = "inbox"
    APNS = "apns"
    FCM = "fcm"
    WEBPUSH = "webpush"
    WEBHOOK = "webhook"


KeyRole = Literal["secret", "public", "device"]
ALL_DEVICES_TOPIC = "*"
TOPIC_PATTERN = r"^[A-Za-z0-9_.~-]{1,128}$"


def utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch (DynamoDB TTL and JSON timestamps)."""
    return int(moment.timestamp())


class Record(BaseModel):
    """Base of stored records: immutable once read."""

    model_config = ConfigDict(frozen=True)


class AppRecord(Record):
    app_id: str
    name: str
    icon: str | None = None
    # Where pushlane POSTs a signed event each time it prunes one of the app's devices.
    feedback_url: str | None = None
    created_at: int
    live_secret_keys: int = 0
    live_public_keys: int = 0


class KeyRecord(Record):
    key_id: str
    app_id: str
    role: KeyRole
    secret_sha256: str
    created_at: int
    revoked_at: int | None = None
    device_id: str | None = None

    @property
    def revoked(self) -> bool:
        """Whether the key no longer authenticates."""
        return self.revoked_at is not None


class DeviceRecord(Record):
    app_id: str
    device_id: str
    platform: Platform
    # APNs/FCM token, Web Push endpoint, webhook URL, or an inbox device's own client-chosen id.
    token: str | None = None
    # Platform extras: Web Push keys (p256dh, auth), APNs environment.
    push: dict[str, str] = Field(default_factory=dict)
    name: str | None = None
    created_at: int
    registered_at: int
    enabled: bool = True
    key_id: str


class Target(Record):
    """One device as fan-out sees it: enough to deliver without reading the device item."""

    device_id: str
    platform: Platform
    token: str | None = None
    # Platform extras copied from the device, as stored: each platform reads them through its typed view
    # (providers/apns/target.py ApnsExtras, providers/webpush/target.py SubscriptionKeys, Ping below).
    push: dict[str, str] = Field(default_factory=dict)


_PING_PLATFORM, _PING_TOKEN = "ping_platform", "ping_token"  # keys in an inbox device's stored extras


@dataclass(frozen=True, slots=True)
class Ping:
    """A push token an inbox device also registered: a silent push to it tells the app to sync at once."""

    platform: Platform
    token: str
    extras: dict[str, str]  # the push platform's own extras (APNs: its environment)

    @classmethod
    def of(cls, push: Mapping[str, str]) -> Self | None:
        """Read from an inbox target's extras; None when the device registered no ping."""
        platform, token = push.get(_PING_PLATFORM), push.get(_PING_TOKEN)
        if not platform or not token:
            return None
        extras = {key: value for key, value in push.items() if key not in (_PING_PLATFORM, _PING_TOKEN)}
        return cls(Platform(platform), token, extras)

    def as_push(self) -> dict[str, str]:
        return {_PING_PLATFORM: self.platform.value, _PING_TOKEN: self.token, **self.extras}

    def target(self, device_id: str) -> Target:
        """The push target the ping goes to."""
        return Target(device_id=device_id, platform=self.platform, token=self.token, push=self.extras)


class MessageContent(Record):
    """What a publisher sends; rendered per platform by the providers."""

    title: str | None = None
    body: str
    link: str | None = None
    importance: int = Field(default=3, ge=1, le=5)
    data: dict[str, Any] | None = None
    # How long providers should keep trying (seconds; 0 = now or never) and what replaces what.
    ttl: int | None = None
    collapse_key: str | None = None
    # Per-target receipts cost a write each, so they are kept only when the publisher asks.
    receipts: bool = False
    # Platform-specific additions merged last: {"apns": {"headers": {...}, "payload": {...}}, "fcm": {...}}.
    overrides: dict[str, dict[str, Any]] | None = None


class FeedbackEvent(Record):
    """A provider said a target is dead (or the target vanished): prune it. Queued to the feedback
    function, and kept as the app's feedback record."""

    app_id: str
    device_id: str
    platform: Platform
    reason: str
    provider_timestamp_ms: int | None = None
    observed_at: int


ReceiptOutcome = Literal["delivered", "failed", "retrying"]


class Receipt(Record):
    """What happened to one target of a publication (kept only for publications with receipts)."""

    device_id: str
    platform: Platform
    outcome: ReceiptOutcome
    reason: str | None = None
    provider_id: str | None = None
    at: int


class InboxMessage(Record):
    """A message waiting in a device's inbox until the device confirms it."""

    publication_id: str
    content: MessageContent
    created_at: int


class PublicationStatus(StrEnum):
    """Where a publication's fan-out stands; only ever moves forward, in this order."""

    QUEUED = "queued"
    EXPANDING = "expanding"
    DELIVERING = "delivering"
    COMPLETED = "completed"


class Publication(Record):
    app_id: str
    publication_id: str
    content: MessageContent
    topics: list[str] = Field(default_factory=list)
    device_ids: list[str] = Field(default_factory=list)
    created_at: int
    total: int = 0
    passed: int = 0
    failed: int = 0
    confirmed: int = 0
    # Targets in slices a killed invocation may have sent before recording them (an upper bound).
    possible_duplicates: int = 0
    # Jobs of each kind, counted when registered (before they are sent) and when done: expand jobs (a
    # topic shard's pages, the explicit targets) and delivery batches (a page's, and each batch's retry).
    expand_jobs: int = 0
    expand_jobs_done: int = 0
    delivery_batches: int = 0
    delivery_batches_done: int = 0
    # AWS consumption of the fan-out so far (read/write capacity units, requests), for cost per delivery.
    usage_read_units: float = 0.0
    usage_write_units: float = 0.0
    usage_dynamodb_requests: int = 0
    usage_sqs_requests: int = 0

    @property
    def pending(self) -> int:
        """Targets found but not yet delivered or failed (a batch's targets join the total when it is
        registered, before it can count any of them)."""
        return self.total - self.passed - self.failed

    @property
    def status(self) -> PublicationStatus:
        """Derived from the counters, so it can never disagree with them.

        Expand jobs only register jobs while they are outstanding, and a batch registers its retry in the
        write that marks it done, so each step below, once reached, holds.
        """
        if self.expand_jobs_done < self.expand_jobs:
            started = self.expand_jobs_done > 0 or self.delivery_batches > 0
            return PublicationStatus.EXPANDING if started else PublicationStatus.QUEUED
        if self.delivery_batches_done < self.delivery_batches or self.pending > 0:
            return PublicationStatus.DELIVERING
        return PublicationStatus.COMPLETED
