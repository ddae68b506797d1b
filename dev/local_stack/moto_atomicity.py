"""One DynamoDB request at a time inside the local stack's moto server, as DynamoDB's requests are atomic.

moto's DynamoDB backend is not thread-safe: a TransactWriteItems deep-copies the tables it touches for its
rollback while another request thread adds items, and fails with "dictionary changed size during
iteration" (a 500 the handlers see as a ClientError). The moto server answers each request on its own
thread, so every DynamoDB request holds one lock. SQS stays unlocked, since its long polls hold a request
for seconds; its backend is not thread-safe within one queue either, so the local stack's pollers take
turns at each queue (dev/local_stack/poller.py).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler

_lock = threading.RLock()
_unlocked = DynamoHandler.call_action


@functools.wraps(_unlocked)
def _atomic_call_action(self: DynamoHandler) -> Any:
    with _lock:
        return _unlocked(self)


def install() -> None:
    """Make every DynamoDB request to moto in this process atomic (idempotent)."""
    DynamoHandler.call_action = _atomic_call_action  # type: ignore[method-assign]
