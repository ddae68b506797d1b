"""The batch ledger: where a delivery batch's lease and per-slice progress are kept.

The deliver stage talks to it only through ``BatchLedger``, in the shape of Powertools' idempotency
persistence layer (a protocol here, a DynamoDB adapter in ``storage/batch_progress.py``), so its crash
windows can be exercised against any ledger that keeps the same promises:

- ``claim`` takes the lease in one step and says where the batch stands (or that it is done or held);
- ``record_slice`` and ``release`` succeed only while the caller still holds the lease;
- ``finish`` records the last slice, marks the batch done and counts it into its publication at once.
"""

from dataclasses import dataclass
from typing import Protocol

from push_core.usage import Usage


@dataclass(frozen=True)
class BatchKey:
    """Names one delivery batch: its publication, and the batch's deterministic job key."""

    app_id: str
    publication_id: str
    job_key: str


@dataclass(frozen=True)
class RetryNote:
    """The batch's retry as its finish registered it: which targets (by position in the batch), after how long."""

    job_key: str
    positions: list[int]
    delay_s: int


@dataclass(frozen=True)
class Progress:
    """What the ledger said of the batch when this invocation took the lease."""

    next_slice: int
    # The slice a previous holder may have been sending when it vanished (its lease ran out): those
    # targets may have been delivered without being recorded, so they may now be delivered twice.
    interrupted_slice: int | None
    # Counts the recorded slices hold so far, and the targets (by position) they left for the retry.
    passed: int = 0
    failed: int = 0
    duplicates: int = 0
    retry_positions: tuple[int, ...] = ()
    retry_delay_s: int = 0


@dataclass(frozen=True)
class SliceRecord:
    """How one slice went: its counts, its possible duplicates, and which targets it leaves for the retry."""

    index: int
    passed: int
    failed: int
    duplicates: int = 0
    retry_positions: tuple[int, ...] = ()
    retry_delay_s: int = 0  # the batch's retry delay so far (the longest any slice asked for)


@dataclass
class Tally:
    """What a batch's slices counted: recorded ones, and those this holder is adding."""

    passed: int = 0
    failed: int = 0
    duplicates: int = 0

    def add(self, record: SliceRecord) -> None:
        self.passed += record.passed
        self.failed += record.failed
        self.duplicates += record.duplicates


class BatchFinished(Exception):
    """The batch was already delivered and counted (a redelivered or duplicated message).

    retry: the retry its last slice asked for; the holder may have died before sending it.
    """

    def __init__(self, job_key: str, retry: RetryNote | None = None) -> None:
        super().__init__(job_key)
        self.retry = retry


class BatchLeased(Exception):
    """Another invocation holds the batch right now; its own message comes back if it dies."""


class LeaseLost(Exception):
    """This invocation ran past its lease and another took the batch over: stop without writing."""


class BatchLedger(Protocol):
    """Keeps each delivery batch's lease and progress; see the module docstring for the promises."""

    def claim(self, batch: BatchKey, owner: str, now: float, lease_until: float) -> Progress:
        """Take the lease; BatchFinished or BatchLeased when the batch is not the caller's to do."""
        ...

    def record_slice(self, batch: BatchKey, owner: str, record: SliceRecord) -> None:
        """Record a finished slice (not the last); LeaseLost if another holder took over."""
        ...

    def release(self, batch: BatchKey, owner: str) -> None:
        """Give the lease up cleanly; LeaseLost if it was no longer the caller's."""
        ...

    def finish(
        self, batch: BatchKey, owner: str, last: SliceRecord, total: Tally, used: Usage, retry: RetryNote | None
    ) -> bool:
        """Record the last slice, mark the batch done and count total (and used) into its publication, once.

        Registers retry with it. LeaseLost if another holder took over; False when the publication is gone.
        """
        ...
