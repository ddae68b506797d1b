"""Keep the moto server's memory flat however long the local stack runs.

What grows, found with tracemalloc on a moto server sending, receiving and deleting SQS messages
(about 1.9 KB a message, for good):

- every moto model instance is appended to its class's ``instances_tracked`` list when it is created
  (``BaseModel.__new__``), and nothing but moto's reset API ever empties it. It serves moto's dashboard
  and S3's reset only. So every SQS message ever sent, and the copy each receive makes, stays alive with
  its body, attributes and handles (and in moto's DynamoDB, when it serves DynamoDB, every item version).
- moto's SQS queue remembers the receipt handles of every message it ever deleted
  (``Queue.deleted_messages``, only added to), so that deleting a message twice is not an error.

``install`` stops tracking instances (except S3's, whose reset closes their files) and bounds the
deleted handles to the most recent ones, more than any client could still hold (a receipt handle is
only worth deleting with while its visibility timeout runs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.core.common_models import BaseModel
from moto.sqs.models import Queue

# Handles kept per queue; a second delete of anything older answers ReceiptHandleIsInvalid, as AWS may.
RECENT_DELETIONS = 10_000


class _RecentReceiptHandles:
    """The part of a set moto's Queue uses (``update``, ``in``, ``len``), forgetting the oldest beyond a bound."""

    def __init__(self) -> None:
        self._limit = RECENT_DELETIONS
        self._handles: dict[str, None] = {}  # insertion-ordered: the oldest first

    def update(self, handles: Iterable[str]) -> None:
        for handle in handles:
            self._handles[handle] = None
        while len(self._handles) > self._limit:
            del self._handles[next(iter(self._handles))]

    def __contains__(self, handle: object) -> bool:
        return handle in self._handles

    def __len__(self) -> int:
        return len(self._handles)


_moto_init = Queue.__init__


def _init_with_bounded_deletions(self: Queue, *args: Any, **kwargs: Any) -> None:
    _moto_init(self, *args, **kwargs)
    self.deleted_messages = _RecentReceiptHandles()  # type: ignore[assignment]  # the set operations moto uses


def _new_untracked(cls: type[BaseModel], *args: Any, **kwargs: Any) -> BaseModel:
    instance: BaseModel = super(BaseModel, cls).__new__(cls)
    if cls.__module__.startswith("moto.s3."):
        cls.instances_tracked.append(instance)  # type: ignore[attr-defined]
    return instance


def install() -> None:
    """Stop tracking moto model instances and bound every SQS queue created from now on (idempotent)."""
    BaseModel.__new__ = _new_untracked  # type: ignore[method-assign]
    Queue.__init__ = _init_with_bounded_deletions  # type: ignore[method-assign]
