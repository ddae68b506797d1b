"""Devices reading their inbox: poll (cursor, optional long-poll) and confirm."""

import time
from collections import Counter
from dataclasses import dataclass

from push_core.config import get_settings
from push_core.models import InboxMessage
from push_core.storage import inbox as inbox_store
from push_core.storage import publications as publication_store

_LONG_POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class PollResult:
    messages: list[InboxMessage]
    cursor: str | None


def poll(app_id: str, device_id: str, after: str | None, limit: int, wait_seconds: int) -> PollResult:
    """Pending messages oldest first; with wait, hold the request until one arrives or time is up."""
    wait = min(wait_seconds, get_settings().long_poll_max_seconds)
    deadline = time.monotonic() + wait
    while True:
        messages = inbox_store.pending_messages(app_id, device_id, after, limit)
        remaining = deadline - time.monotonic()
        if messages or remaining <= 0:
            break
        time.sleep(min(_LONG_POLL_INTERVAL_S, remaining))
    return PollResult(messages=messages, cursor=messages[-1].publication_id if messages else after)


def confirm(app_id: str, device_id: str, publication_ids: list[str], up_to: str | None) -> int:
    """Confirm messages (and everything up to `up_to`); returns how many were pending and now are not."""
    wanted = list(dict.fromkeys(publication_ids))
    if up_to is not None:
        wanted += [m for m in inbox_store.publication_ids_up_to(app_id, device_id, up_to) if m not in wanted]
    per_publication: Counter[str] = Counter()
    for publication_id in wanted:
        # Only a delete that removed something counts, so a repeated confirm never double-counts.
        if inbox_store.remove_message(app_id, device_id, publication_id):
            per_publication[publication_id] += 1
    for publication_id, count in per_publication.items():
        publication_store.add_confirmations(app_id, publication_id, count)
    return sum(per_publication.values())
