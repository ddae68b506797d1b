"""Delivering a message to a batch of targets and tallying the outcome.

Inbox targets are delivered by storing the message for polling. Push platforms (APNs, FCM, Web Push,
webhooks) get their providers in the provider layer; until a platform's provider exists its targets
are counted as failed with a reason, never silently dropped.
"""

from collections import Counter
from dataclasses import dataclass, field

from push_core.models import InboxMessage, Platform, Target
from push_core.observability import logger
from push_core.storage import inbox as inbox_store


@dataclass
class DeliveryReport:
    """How a batch went: the counts that go into the publication."""

    passed: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)


def deliver(
    app_id: str, message: InboxMessage, targets: list[Target], inbox_expires_at: int
) -> DeliveryReport:
    """Deliver one message to targets; returns the tally."""
    report = DeliveryReport()
    inbox_ids = [t.device_id for t in targets if t.platform is Platform.INBOX]
    if inbox_ids:
        inbox_store.write_messages(app_id, inbox_ids, message, inbox_expires_at)
        report.passed += len(inbox_ids)
    for target in targets:
        if target.platform is not Platform.INBOX:
            report.failed += 1
            report.failures[f"{target.platform.value}:no_provider"] += 1
    if report.failures:
        logger.warning("targets without a provider", extra={"failures": dict(report.failures)})
    return report
