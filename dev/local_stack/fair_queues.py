"""SQS fair queues for the local stack, which moto does not have.

On AWS a standard queue whose messages carry a MessageGroupId (a tenant) is a fair queue: when one
tenant's backlog grows, SQS hands out the other tenants' messages first, so a noisy tenant does not
add to the quiet ones' dwell time. moto 5.2.1 accepts the group id on a standard queue but receives
oldest first. ``install`` makes moto's standard queues receive the way a fair queue does: tenants in
turn, the ones with the fewest messages in flight first, each tenant's messages oldest first.
FIFO queues and messages without a group keep moto's order.
"""

from __future__ import annotations

from collections import Counter
from itertools import zip_longest

from moto.sqs.models import Message, Queue

_moto_order = Queue.messages


def _fair_order(queue: Queue) -> list[Message]:
    visible: list[Message] = _moto_order.fget(queue)  # type: ignore[attr-defined]
    if queue.fifo_queue or not any(message.group_id for message in visible):
        return visible
    # A snapshot first: the moto server receives on several threads, and a set that changes under iteration raises.
    in_flight = Counter(message.group_id for message in tuple(queue.pending_messages) if not message.visible)
    tenants: dict[str | None, list[Message]] = {}
    for message in visible:
        tenants.setdefault(message.group_id, []).append(message)
    # Quietest first: fewest in flight, then the shortest backlog; dict order (oldest first) breaks ties.
    turn = sorted(tenants.values(), key=lambda waiting: (in_flight[waiting[0].group_id], len(waiting)))
    return [message for round_ in zip_longest(*turn) for message in round_ if message is not None]


def install() -> None:
    """Make every moto standard queue in this process a fair queue (idempotent)."""
    Queue.messages = property(_fair_order)  # type: ignore[method-assign,assignment]
