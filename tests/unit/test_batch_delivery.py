"""The deliver stage's crash windows, against the in-memory ledger: no AWS, no moto.

Each test kills, duplicates or delays an invocation at one step of a batch and checks what every target
received and what the publication counted. The same windows are crossed on moto and DynamoDB Local by
tests/integration/test_provider_delivery.py and the chaos test; tests/integration/test_batch_ledger.py
holds the fake to the DynamoDB ledger's promises.
"""

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from push_core.models import FeedbackEvent, InboxMessage, MessageContent, Platform, Receipt, Target
from push_core.pipeline.deliver import POSSIBLE_DUPLICATES_LOG, QUOTA_EXCEEDED, BatchDelivery, BatchRules, retry_job
from push_core.pipeline.jobs import DeliveryJob
from push_core.pipeline.ledger import BatchKey, BatchLedger, Progress, RetryNote, SliceRecord, Tally
from push_core.pipeline.send import DeliveryReport
from push_core.providers.contract import InvalidTarget
from push_core.usage import Usage
from tests.fixtures.memory_ledger import MemoryBatchLedger

APP, PUBLICATION = "app1", "pub1"
LEASE_S = 60.0


class Killed(BaseException):
    """The execution environment vanishing mid-invocation: no code of ours catches it."""


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ProviderDouble:
    """Stands in for the providers behind DeliveryService: remembers every target sent and answers per
    device id: "ok", "retry", "dead" or "broken" (accepted, but on a connection that broke: may repeat)."""

    answers: dict[str, str] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)

    def deliver(
        self,
        app_id: str,
        message: InboxMessage,
        targets: Sequence[Target],
        *,
        inbox_expires_at: int,
        final_attempt: bool,
    ) -> DeliveryReport:
        report = DeliveryReport(receipts=[] if message.content.receipts else None)
        for target in targets:
            self.sent.append(target.device_id)
            answer = self.answers.get(target.device_id, "ok")
            if answer in ("ok", "broken"):
                report.passed += 1
                report.note(target, "delivered")
            if answer == "broken":
                report.ambiguous.append(target)
            elif answer == "retry" and not final_attempt:
                report.retry.append(target)
            elif answer == "retry":
                report.fail("apns:unavailable")
            elif answer == "dead":
                report.fail("apns:Unregistered")
                report.dead.append((target, InvalidTarget("Unregistered")))
        return report


@dataclass
class QueueDouble:
    """The delivery and feedback queues: what was sent, and optionally an environment that dies sending."""

    requeued: list[tuple[DeliveryJob, int]] = field(default_factory=list)
    dead: list[FeedbackEvent] = field(default_factory=list)
    dies_on_requeue: bool = False

    def requeue(self, job: DeliveryJob, delay_s: int = 0) -> None:
        if self.dies_on_requeue:
            raise Killed
        self.requeued.append((job, delay_s))

    def report_dead(self, events: list[FeedbackEvent]) -> None:
        self.dead.extend(events)


@dataclass
class DiesRecording:
    """The ledger as seen by an environment that vanishes as it is about to record slice ``index``."""

    ledger: MemoryBatchLedger
    index: int

    def claim(self, batch: BatchKey, owner: str, now: float, lease_until: float) -> Progress:
        return self.ledger.claim(batch, owner, now, lease_until)

    def record_slice(self, batch: BatchKey, owner: str, record: SliceRecord) -> None:
        if record.index == self.index:
            raise Killed
        self.ledger.record_slice(batch, owner, record)

    def release(self, batch: BatchKey, owner: str) -> None:
        self.ledger.release(batch, owner)

    def finish(
        self, batch: BatchKey, owner: str, last: SliceRecord, total: Tally, used: Usage, retry: RetryNote | None
    ) -> bool:
        return self.ledger.finish(batch, owner, last, total, used, retry)


@dataclass
class World:
    ledger: MemoryBatchLedger = field(default_factory=MemoryBatchLedger)
    providers: ProviderDouble = field(default_factory=ProviderDouble)
    queues: QueueDouble = field(default_factory=QueueDouble)
    clock: Clock = field(default_factory=Clock)
    receipts: list[Receipt] = field(default_factory=list)
    quota: int = 10**9

    def __post_init__(self) -> None:
        self.counts = self.ledger.add_publication(APP, PUBLICATION)

    def stage(self, ledger: BatchLedger | None = None, slice_size: int = 2, margin_s: float = 10.0) -> BatchDelivery:
        return BatchDelivery(
            ledger=ledger or self.ledger,
            sender=self.providers,
            queues=self.queues,
            receipts=lambda app_id, publication_id, receipts, expires_at: self.receipts.extend(receipts),
            quota=self.take_quota,
            rules=BatchRules(slice_size=slice_size, handback_margin_s=margin_s, default_lease_s=LEASE_S),
            clock=self.clock,
        )

    def take_quota(self, app_id: str, wanted: int) -> int:
        granted = min(self.quota, wanted)
        self.quota -= granted
        return granted


def batch(devices: int, *, receipts: bool = False, attempt: int = 0) -> DeliveryJob:
    return DeliveryJob(
        app_id=APP,
        publication_id=PUBLICATION,
        created_at=1,
        content=MessageContent(body="hello", receipts=receipts),
        targets=[Target(device_id=f"d{n}", platform=Platform.APNS, token=f"t{n}") for n in range(devices)],
        origin="expand-page",
        index=0,
        attempt=attempt,
    )


def remaining(seconds: list[float]) -> Callable[[], float]:
    """An invocation's time left, shrinking by one step at each question."""
    return lambda: seconds.pop(0) if len(seconds) > 1 else seconds[0]


def test_a_batch_is_sent_slice_by_slice_and_counted_once():
    world, job = World(), batch(5)
    world.stage().deliver(job)

    assert world.providers.sent == [f"d{n}" for n in range(5)]
    assert (world.counts.passed, world.counts.delivery_batches_done, world.counts.possible_duplicates) == (5, 1, 0)
    world.stage().deliver(job)  # SQS delivers the message again: the batch is done
    assert len(world.providers.sent) == 5
    assert world.counts.delivery_batches_done == 1


def test_a_slice_sent_but_not_recorded_is_sent_again_counted_and_logged(caplog: pytest.LogCaptureFixture):
    # Given an invocation that dies after sending the second slice, before recording it
    world, job = World(), batch(6)
    with pytest.raises(Killed):
        world.stage(DiesRecording(world.ledger, index=1)).deliver(job)
    assert world.counts.delivery_batches_done == 0

    # When the message comes back before the dead holder's lease ran out, then after
    world.stage().deliver(job)
    assert world.providers.sent == ["d0", "d1", "d2", "d3"]  # the copy stepped aside
    world.clock.now += LEASE_S + 1
    world.stage().deliver(job)

    # Then only the interrupted slice went out twice, and it is counted and logged as possible duplicates
    assert Counter(world.providers.sent) == {"d0": 1, "d1": 1, "d2": 2, "d3": 2, "d4": 1, "d5": 1}
    assert (world.counts.passed, world.counts.possible_duplicates, world.counts.delivery_batches_done) == (6, 2, 1)
    [logged] = [r for r in caplog.records if r.getMessage() == POSSIBLE_DUPLICATES_LOG]
    assert logged.__dict__["device_ids"] == ["d2", "d3"]


def test_an_invocation_that_ran_past_its_lease_stops_without_writing():
    # Given a holder that sends its first slice, then stalls past its lease while another takes over
    world, job = World(), batch(4)
    stalled = world.stage()
    taken_over: list[bool] = []

    def stall_then_take_over() -> float:
        if not taken_over:
            taken_over.append(True)
            return LEASE_S
        world.clock.now += LEASE_S + 1
        world.stage().deliver(job)  # the message came back: a second invocation does the batch
        return LEASE_S

    stalled.deliver(job, stall_then_take_over)

    # Then the stalled holder's late slice is not counted: every target counts once, the overlap as duplicates
    assert (world.counts.passed, world.counts.delivery_batches_done) == (4, 1)
    assert world.counts.possible_duplicates == 2  # slice 1, which the stalled holder was "sending"
    assert Counter(world.providers.sent) == {"d0": 1, "d1": 1, "d2": 2, "d3": 2}


def test_transient_failures_become_one_registered_retry_sent_after_the_finish():
    world, job = World(), batch(5)
    world.providers.answers.update(d1="retry", d4="retry")
    world.stage().deliver(job)

    [(retry, delay_s)] = world.queues.requeued
    assert [t.device_id for t in retry.targets] == ["d1", "d4"]
    assert retry.job_key == retry_job(job, []).job_key
    assert retry.attempt == 1
    assert delay_s >= 1
    assert world.counts.retries_registered == [retry.job_key]
    assert (world.counts.passed, world.counts.failed) == (3, 0)  # the retry counts d1 and d4

    world.providers.answers.clear()  # the provider is back
    world.stage().deliver(retry)
    assert (world.counts.passed, world.counts.delivery_batches_done) == (5, 2)


def test_a_retry_lost_with_its_invocation_is_sent_by_the_next_copy_of_the_batch():
    # Given an invocation that finishes the batch and dies before queueing the retry it registered
    world, job = World(), batch(3)
    world.providers.answers.update(d0="retry")
    world.queues.dies_on_requeue = True
    with pytest.raises(Killed):
        world.stage().deliver(job)
    assert world.counts.delivery_batches_done == 1
    assert world.queues.requeued == []

    # When the batch's message comes back
    world.queues.dies_on_requeue = False
    world.stage().deliver(job)

    # Then nothing is sent again, and the registered retry goes out (its key makes a second copy harmless)
    assert world.providers.sent == ["d0", "d1", "d2"]
    [(retry, _)] = world.queues.requeued
    assert retry.job_key == world.counts.retries_registered[0]
    assert [t.device_id for t in retry.targets] == ["d0"]


def test_a_holder_short_of_time_hands_the_rest_back_and_the_next_resumes():
    world, job = World(), batch(6)
    world.stage().deliver(job, remaining([30.0, 30.0, 5.0]))  # time for two slices, then too little

    assert world.providers.sent == ["d0", "d1", "d2", "d3"]
    [(handed_back, delay_s)] = world.queues.requeued
    assert handed_back == job
    assert delay_s == 0
    world.stage().deliver(handed_back)  # no lease to wait out: it was released
    assert world.providers.sent == [f"d{n}" for n in range(6)]
    assert (world.counts.passed, world.counts.possible_duplicates, world.counts.delivery_batches_done) == (6, 0, 1)


def test_targets_a_broken_connection_may_have_reached_twice_are_counted():
    world, job = World(), batch(3)
    world.providers.answers.update(d2="broken")
    world.stage().deliver(job)
    assert (world.counts.passed, world.counts.possible_duplicates) == (3, 1)


def test_dead_targets_go_to_feedback_and_targets_over_the_quota_fail_unsent():
    world, job = World(quota=3), batch(5, receipts=True)
    world.providers.answers.update(d1="dead")
    world.stage().deliver(job)

    assert world.providers.sent == ["d0", "d1", "d2"]
    assert [(e.device_id, e.reason) for e in world.queues.dead] == [("d1", "Unregistered")]
    assert (world.counts.passed, world.counts.failed) == (2, 3)
    refused = [r.device_id for r in world.receipts if r.reason == QUOTA_EXCEEDED]
    assert refused == ["d3", "d4"]


def test_the_final_attempt_counts_transient_failures_as_failed():
    world, job = World(), batch(2, attempt=BatchRules().max_attempts - 1)
    world.providers.answers.update(d0="retry")
    world.stage().deliver(job)
    assert world.queues.requeued == []
    assert (world.counts.passed, world.counts.failed) == (1, 1)


def test_a_batch_of_a_deleted_publication_finishes_without_counting():
    world, job = World(), batch(2)
    del world.ledger.publications[(APP, PUBLICATION)]
    world.stage().deliver(job)
    assert world.providers.sent == ["d0", "d1"]
    assert world.ledger.runs[BatchKey(APP, PUBLICATION, job.job_key)].finished is False
