"""Delivering one message to a page of targets, and tallying what happened.

Inbox targets are delivered by storing the message for polling (plus a silent "ping" push when the
device registered a push token for it). Push targets go through their app's provider for the platform;
every target ends up passed, failed (with a reason), dead (failed, and pruned through feedback), or
due for a retry.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from push_core import credentials
from push_core.config import get_settings
from push_core.models import InboxMessage, Ping, Platform, Receipt, ReceiptOutcome, Target
from push_core.observability import logger
from push_core.providers.contract import Delivered, InvalidTarget, Outcome, PushMessage, Rejected, Transient
from push_core.providers.pool import ProviderPool
from push_core.storage import inbox as inbox_store
from push_core.storage.provider_tokens import DynamoTokenStore


@dataclass
class DeliveryReport:
    """How a page went: counts for the publication, and what to do next."""

    passed: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    retry: list[Target] = field(default_factory=list)
    retry_after_s: float = 0.0
    dead: list[tuple[Target, InvalidTarget]] = field(default_factory=list)
    # Retried targets whose failed attempt may have reached the provider anyway (see Transient.ambiguous).
    ambiguous: list[Target] = field(default_factory=list)
    receipts: list[Receipt] | None = None  # collected only when the publication asked for them

    def merge(self, other: "DeliveryReport") -> None:
        """Fold another slice's report into this one."""
        self.passed += other.passed
        self.failed += other.failed
        self.failures.update(other.failures)
        self.retry.extend(other.retry)
        self.retry_after_s = max(self.retry_after_s, other.retry_after_s)
        self.dead.extend(other.dead)
        self.ambiguous.extend(other.ambiguous)
        if self.receipts is not None and other.receipts:
            self.receipts.extend(other.receipts)

    def fail(self, reason: str) -> None:
        self.failed += 1
        self.failures[reason] += 1

    def refuse(self, targets: Sequence[Target], reason: str) -> None:
        """Count targets pushlane did not send (an app over its quota) as failed, with why."""
        for target in targets:
            self.fail(reason)
            self.note(target, "failed", reason)

    def note(
        self, target: Target, outcome: ReceiptOutcome, reason: str | None = None, provider_id: str | None = None
    ) -> None:
        """Keep a receipt for target, if this publication keeps receipts."""
        if self.receipts is not None:
            self.receipts.append(
                Receipt(
                    device_id=target.device_id,
                    platform=target.platform,
                    outcome=outcome,
                    reason=reason,
                    provider_id=provider_id,
                    at=int(time.time()),
                )
            )


def push_message(message: InboxMessage, *, silent: bool = False) -> PushMessage:
    """The provider view of a stored message."""
    content = message.content
    return PushMessage(
        publication_id=message.publication_id,
        content=content,
        ttl_s=content.ttl,
        collapse_key=content.collapse_key,
        silent=silent,
        overrides=content.overrides,
    )


def ping_target(target: Target) -> Target | None:
    """The push target an inbox device registered for being told to sync, if any."""
    ping = Ping.of(target.push)
    return ping.target(target.device_id) if ping else None


class DeliveryService:
    """Sends through the providers on one event loop kept for the container's life (so connections persist)."""

    def __init__(self, pool: ProviderPool) -> None:
        self._pool = pool
        self._runner: asyncio.Runner | None = None

    def _run(self, groups: list[tuple[Platform, list[Target], PushMessage]], app_id: str) -> list[list[Outcome] | None]:
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self._send_groups(groups, app_id))

    async def _send_groups(
        self, groups: list[tuple[Platform, list[Target], PushMessage]], app_id: str
    ) -> list[list[Outcome] | None]:
        retired, self._pool.retired = self._pool.retired, []
        await asyncio.gather(*(provider.close() for provider in retired))
        sends = []
        for platform, targets, message in groups:
            provider = self._pool.provider(app_id, platform)
            sends.append(provider.send(targets, message) if provider is not None else _nothing())
        return list(await asyncio.gather(*sends))

    def deliver(
        self,
        app_id: str,
        message: InboxMessage,
        targets: Sequence[Target],
        *,
        inbox_expires_at: int,
        final_attempt: bool,
    ) -> DeliveryReport:
        """Deliver message to targets and report; transient failures on the final attempt count as failed."""
        report = DeliveryReport(receipts=[] if message.content.receipts else None)
        inbox = [t for t in targets if t.platform is Platform.INBOX]
        if inbox:
            inbox_store.write_messages(app_id, [t.device_id for t in inbox], message, inbox_expires_at)
            report.passed += len(inbox)
            for target in inbox:
                report.note(target, "delivered")
        by_platform: dict[Platform, list[Target]] = {}
        for target in targets:
            if target.platform is not Platform.INBOX:
                by_platform.setdefault(target.platform, []).append(target)
        pings = [p for p in (ping_target(t) for t in inbox) if p is not None]
        groups = [(platform, group, push_message(message)) for platform, group in by_platform.items()]
        ping_groups: dict[Platform, list[Target]] = {}
        for ping in pings:
            ping_groups.setdefault(ping.platform, []).append(ping)
        groups += [(platform, group, push_message(message, silent=True)) for platform, group in ping_groups.items()]
        if not groups:
            return report
        results, doubtful = self._resend_after_broken_connections(groups, self._run(groups, app_id), app_id)
        for number, ((platform, group, push), outcomes) in enumerate(zip(groups, results, strict=True)):
            if push.silent:  # pings: the inbox already has the message; a failed ping only delays the sync
                continue
            if outcomes is None:
                for target in group:
                    report.fail(f"{platform.value}:no_credentials")
                    report.note(target, "failed", "no_credentials")
                continue
            for index, (target, outcome) in enumerate(zip(group, outcomes, strict=True)):
                self._tally(report, platform, target, outcome, final_attempt)
                # A send that may have got through (a first, broken attempt, or this one) followed by
                # another (this delivery, or the retry to come) may reach the device twice.
                reached = (number, index) in doubtful or (isinstance(outcome, Transient) and outcome.ambiguous)
                again = isinstance(outcome, Delivered) or (isinstance(outcome, Transient) and not final_attempt)
                if reached and again:
                    report.ambiguous.append(target)
        if report.failures:
            logger.info("delivery failures", extra={"failures": dict(report.failures)})
        return report

    def _resend_after_broken_connections(
        self,
        groups: list[tuple[Platform, list[Target], PushMessage]],
        results: list[list[Outcome] | None],
        app_id: str,
    ) -> tuple[list[list[Outcome] | None], set[tuple[int, int]]]:
        """Send once more, at once and on a fresh connection, what a broken connection took down.

        A reset connection fails every request in flight on it, most of which the provider never saw:
        waiting for a queued retry would only slow them down. Failures the provider answered (5xx, 429)
        and timeouts wait for the delayed retry. Returns the outcomes and, by (group, index), the
        targets whose first attempt may have got through before the break.
        """
        again: list[tuple[Platform, list[Target], PushMessage]] = []
        places: list[tuple[int, list[int]]] = []
        for number, ((platform, group, push), outcomes) in enumerate(zip(groups, results, strict=True)):
            broken = [i for i, outcome in enumerate(outcomes or []) if _broken_connection(outcome)]
            if broken:
                again.append((platform, [group[i] for i in broken], push))
                places.append((number, broken))
        doubtful: set[tuple[int, int]] = set()
        if not again:
            return results, doubtful
        merged = [list(outcomes) if outcomes is not None else None for outcomes in results]
        for (number, broken), outcomes in zip(places, self._run(again, app_id), strict=True):
            target_outcomes = merged[number]
            if target_outcomes is None or outcomes is None:
                continue
            for i, outcome in zip(broken, outcomes, strict=True):
                first = target_outcomes[i]
                if isinstance(first, Transient) and first.ambiguous:
                    doubtful.add((number, i))
                target_outcomes[i] = outcome
        return merged, doubtful

    @staticmethod
    def _tally(report: DeliveryReport, platform: Platform, target: Target, outcome: Outcome, final: bool) -> None:
        match outcome:
            case Delivered(provider_id=provider_id):
                report.passed += 1
                report.note(target, "delivered", provider_id=provider_id)
            case InvalidTarget(reason=reason):
                report.fail(f"{platform.value}:{reason}")
                report.dead.append((target, outcome))
                report.note(target, "failed", reason)
            case Rejected(reason=reason):
                report.fail(f"{platform.value}:{reason}")
                report.note(target, "failed", reason)
            case Transient(reason=reason, retry_after_s=after):
                if final:
                    report.fail(f"{platform.value}:{reason}")
                    report.note(target, "failed", reason)
                else:
                    report.retry.append(target)
                    report.retry_after_s = max(report.retry_after_s, after or 0.0)
                    report.note(target, "retrying", reason)


def _broken_connection(outcome: Outcome) -> bool:
    return isinstance(outcome, Transient) and outcome.reason in _CONNECTION_FAILURES


_CONNECTION_FAILURES = frozenset({"ConnectionLost", "ConnectError"})


async def _nothing() -> None:
    return None


@lru_cache(maxsize=1)
def delivery_service() -> DeliveryService:
    """The container's delivery service (providers and their connections live as long as it does)."""
    return DeliveryService(ProviderPool(get_settings(), token_store=DynamoTokenStore(), load=credentials.load))
