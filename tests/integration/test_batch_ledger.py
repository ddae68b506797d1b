"""The batch ledger's promises, held against the DynamoDB ledger (moto, tables from template.yaml) and the
in-memory one the unit tests use: a promise the fake keeps and DynamoDB does not fails here."""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import pytest

from push_core.identifiers import new_sortable_id
from push_core.models import MessageContent, Publication
from push_core.pipeline.ledger import (
    BatchFinished,
    BatchKey,
    BatchLeased,
    BatchLedger,
    LeaseLost,
    RetryNote,
    SliceRecord,
    Tally,
)
from push_core.storage import publications as publication_store
from push_core.storage.batch_progress import DynamoBatchLedger
from push_core.usage import Usage
from tests.fixtures.memory_ledger import MemoryBatchLedger
from tests.integration.harness import LocalAws

NOTHING_USED = Usage()


class Counted(Protocol):
    """A publication's counters as a ledger's finish moves them (a stored Publication, or the fake's)."""

    @property
    def passed(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def possible_duplicates(self) -> int: ...
    @property
    def delivery_batches_done(self) -> int: ...


@dataclass
class Subject:
    ledger: BatchLedger
    batch: BatchKey
    counted: "CountReader"


class CountReader(Protocol):
    def __call__(self) -> Counted: ...


@pytest.fixture(params=["dynamodb", "memory"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    """A ledger and a batch of a publication that exists, with a way to read the publication's counters."""
    app_id, publication_id = "ledger-app", new_sortable_id()
    batch = BatchKey(app_id, publication_id, f"batch-{new_sortable_id()}")
    if request.param == "memory":
        memory = MemoryBatchLedger()
        counts = memory.add_publication(app_id, publication_id)
        yield Subject(memory, batch, lambda: counts)
        return
    aws: LocalAws = request.getfixturevalue("aws")
    assert aws is not None
    publication = Publication(
        app_id=app_id, publication_id=publication_id, content=MessageContent(body="x"), created_at=1
    )
    publication_store.create_publication(publication, int(time.time()) + 3600)

    def read() -> Counted:
        stored = publication_store.get_publication(app_id, publication_id)
        assert stored is not None
        return stored

    yield Subject(DynamoBatchLedger(), batch, read)


def test_a_fresh_batch_starts_at_its_first_slice_and_a_held_one_is_refused(subject: Subject):
    now = time.time()
    progress = subject.ledger.claim(subject.batch, "first", now=now, lease_until=now + 60)
    assert (progress.next_slice, progress.interrupted_slice, progress.passed) == (0, None, 0)
    with pytest.raises(BatchLeased):
        subject.ledger.claim(subject.batch, "second", now=now + 59, lease_until=now + 119)


def test_a_lapsed_lease_is_taken_over_where_the_last_record_left_it(subject: Subject):
    now = time.time()
    subject.ledger.claim(subject.batch, "first", now=now, lease_until=now + 60)
    subject.ledger.record_slice(subject.batch, "first", SliceRecord(0, passed=2, failed=1, retry_positions=(2,)))
    progress = subject.ledger.claim(subject.batch, "second", now=now + 61, lease_until=now + 121)
    assert (progress.next_slice, progress.interrupted_slice) == (1, 1)
    assert (progress.passed, progress.failed, progress.retry_positions) == (2, 1, (2,))
    with pytest.raises(LeaseLost):  # the first holder, back from its stall, writes nothing
        subject.ledger.record_slice(subject.batch, "first", SliceRecord(1, passed=3, failed=0))


def test_records_must_come_in_order_from_the_holder(subject: Subject):
    now = time.time()
    subject.ledger.claim(subject.batch, "holder", now=now, lease_until=now + 60)
    with pytest.raises(LeaseLost):
        subject.ledger.record_slice(subject.batch, "holder", SliceRecord(1, passed=1, failed=0))
    with pytest.raises(LeaseLost):
        subject.ledger.release(subject.batch, "someone else")


def test_a_released_batch_is_taken_at_once_and_not_as_interrupted(subject: Subject):
    now = time.time()
    subject.ledger.claim(subject.batch, "first", now=now, lease_until=now + 60)
    subject.ledger.record_slice(subject.batch, "first", SliceRecord(0, passed=1, failed=0))
    subject.ledger.release(subject.batch, "first")
    progress = subject.ledger.claim(subject.batch, "second", now=now + 1, lease_until=now + 61)
    assert (progress.next_slice, progress.interrupted_slice, progress.passed) == (1, None, 1)


def test_the_finish_counts_the_batch_once_and_a_later_copy_learns_its_retry(subject: Subject):
    now = time.time()
    subject.ledger.claim(subject.batch, "holder", now=now, lease_until=now + 60)
    retry = RetryNote("retry-key", [0, 3], 30)
    finished = subject.ledger.finish(
        subject.batch, "holder", SliceRecord(0, passed=3, failed=1), Tally(3, 1, 2), NOTHING_USED, retry
    )
    assert finished is True
    counted = subject.counted()
    assert (counted.passed, counted.failed, counted.possible_duplicates, counted.delivery_batches_done) == (3, 1, 2, 1)
    with pytest.raises(BatchFinished) as done:
        subject.ledger.claim(subject.batch, "copy", now=now + 1, lease_until=now + 61)
    assert done.value.retry == retry


def test_a_finish_after_a_takeover_is_refused_and_counts_nothing(subject: Subject):
    now = time.time()
    subject.ledger.claim(subject.batch, "first", now=now, lease_until=now + 60)
    subject.ledger.claim(subject.batch, "second", now=now + 61, lease_until=now + 121)
    with pytest.raises(LeaseLost):
        subject.ledger.finish(subject.batch, "first", SliceRecord(0, 1, 0), Tally(1, 0, 0), NOTHING_USED, None)
    assert subject.counted().delivery_batches_done == 0


def test_a_batch_of_a_vanished_publication_finishes_as_false(subject: Subject):
    now = time.time()
    orphan = BatchKey(subject.batch.app_id, new_sortable_id(), "orphan-batch")
    subject.ledger.claim(orphan, "holder", now=now, lease_until=now + 60)
    assert subject.ledger.finish(orphan, "holder", SliceRecord(0, 1, 0), Tally(1, 0, 0), NOTHING_USED, None) is False
