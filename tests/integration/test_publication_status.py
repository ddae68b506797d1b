"""A publication's status and counters as a client sees them, sampled at every step of its fan-out.

The queues are driven one message (one invocation) at a time, and the status is read through the API
after each invocation and after each transaction that moves the publication's counters, inside the
invocation, where an inline delivery runs between registering its batch and checkpointing its page.
"""

import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from push_core.storage import batch_progress
from push_core.storage import publications as publication_store
from push_core.storage.table import TransactionItem
from tests.integration.harness import LocalAws, local_aws

# Two shards of pages of 60; inbox targets with 256-character tokens fill a 16 KB delivery batch at
# about 45, so a full page packs into two batches, and a shard of at most two devices is delivered inline.
SETTINGS = {"TOPIC_SHARDS": "2", "EXPAND_PAGE_SIZE": "60", "JOB_MESSAGE_BYTES": "16384", "INLINE_DELIVERY_MAX": "2"}
ORDER = ("queued", "expanding", "delivering", "completed")


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(settings=SETTINGS) as deployed:
        yield deployed


def _poller(aws: LocalAws, function: str) -> Any:
    return next(p for p in aws.pollers if p.source.function == function)


@dataclass
class StatusSampler:
    """Reads GET /v1/messages/{id} and checks that what it says is true at that moment."""

    aws: LocalAws
    app: Mapping[str, str]
    message_id: str
    samples: list[dict[str, Any]] = field(default_factory=list)
    inside: bool = False  # sampling from within an invocation, whose own message is still in flight
    # What samples inside invocations found false (the handler's batch processing would swallow it).
    violations: list[str] = field(default_factory=list)

    def outstanding(self) -> int:
        """Fan-out and delivery messages not yet processed (visible, in flight or delayed)."""
        return sum(_poller(self.aws, f).in_flight() for f in ("FanoutFunction", "DeliverFunction"))

    def sample(self, moment: str) -> dict[str, Any]:
        report = self.aws.publication(self.app, self.message_id)
        where = f"{moment}: {report}"
        assert report["pending"] == report["total"] - report["passed"] - report["failed"], where
        assert report["pending"] >= 0, where
        assert report["passed"] + report["failed"] <= report["total"], where
        if self.samples:
            assert ORDER.index(report["status"]) >= ORDER.index(self.samples[-1]["status"]), (
                f"{moment}: went from {self.samples[-1]['status']} back to {report['status']}"
            )
        if report["status"] == "completed":
            assert report["pending"] == 0, where
            assert self.outstanding() <= (1 if self.inside else 0), f"{where} with jobs outstanding"
        self.samples.append(report)
        return report

    def sample_inside(self) -> None:
        """Sample from inside an invocation, as a client would at that moment (not metered as its work)."""
        self.inside = True
        try:
            contextvars.Context().run(self.sample, "inside an invocation")
        except AssertionError as violation:
            self.violations.append(str(violation))
            raise
        finally:
            self.inside = False

    @property
    def statuses(self) -> list[str]:
        return [s["status"] for s in self.samples]


def _sample_after_every_counter_write(monkeypatch: pytest.MonkeyPatch, sampler: StatusSampler) -> None:
    """Every write that moves a publication's counters is a transaction in these two modules."""
    for module in (publication_store, batch_progress):
        original: Callable[..., None] = module.transact_write

        def write(
            ops: Sequence[TransactionItem], table_name: str | None = None, _original: Callable[..., None] = original
        ) -> None:
            _original(ops, table_name)
            sampler.sample_inside()

        monkeypatch.setattr(module, "transact_write", write)


def _run_one(aws: LocalAws, function: str, sampler: StatusSampler) -> int:
    """Process one message of the function's queue (BatchSize 1: one invocation) and sample; 0 if none."""
    received = _poller(aws, function).poll_once()
    assert not sampler.violations, sampler.violations[0]
    if received:
        sampler.sample(f"after a {function} invocation")
    return int(received)


def test_status_and_counters_are_true_at_every_step_of_a_multi_page_multi_batch_fanout(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch
):
    # Given a topic whose shards take several pages of several delivery batches each, and a device named directly
    app = aws.new_app()
    devices = [aws.new_device(app, ["crowd"], token=f"{i:03d}" + "t" * 253) for i in range(130)]
    direct = aws.new_device(app, token="direct" + "d" * 250)

    # When it is published and the queues are worked one invocation at a time, a page, then a batch
    message_id = aws.publish(app, topics=["crowd"], devices=[direct["id"]])
    sampler = StatusSampler(aws, app, message_id)
    assert sampler.sample("after publishing")["status"] == "queued"
    _sample_after_every_counter_write(monkeypatch, sampler)
    delivery_queue = _poller(aws, "DeliverFunction")
    pages = batches = most_batches_of_a_page = 0
    while True:
        before = delivery_queue.in_flight()
        expanded = _run_one(aws, "FanoutFunction", sampler)
        most_batches_of_a_page = max(most_batches_of_a_page, delivery_queue.in_flight() - before)
        delivered = _run_one(aws, "DeliverFunction", sampler)
        pages, batches = pages + expanded, batches + delivered
        if not expanded and not delivered and not sampler.outstanding():
            break

    # Then every sample was true, the status went queued → expanding → delivering → completed, and the
    # counters ended exact
    assert pages > 3  # the shape this test is about: shards of several pages, pages of several batches
    assert batches > pages
    assert most_batches_of_a_page >= 2
    assert [s for i, s in enumerate(sampler.statuses) if i == 0 or sampler.statuses[i - 1] != s] == list(ORDER)
    final = sampler.samples[-1]
    total = len(devices) + 1
    assert (final["status"], final["total"], final["passed"], final["failed"], final["pending"]) == (
        "completed",
        total,
        total,
        0,
        0,
    )
    for device in (*devices[:3], direct):
        assert [m["id"] for m in aws.poll(device)["messages"]] == [message_id]


def test_pending_never_goes_negative_while_small_audiences_are_delivered_inline(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch
):
    # Given shards of at most two subscribers and two devices named directly: every batch is delivered inline
    app = aws.new_app()
    subscribers = [aws.new_device(app, ["few"]) for _ in range(2)]
    named = [aws.new_device(app) for _ in range(2)]

    # When it is published and the fan-out queue is worked one invocation at a time
    message_id = aws.publish(app, topics=["few"], devices=[d["id"] for d in named])
    sampler = StatusSampler(aws, app, message_id)
    sampler.sample("after publishing")
    _sample_after_every_counter_write(monkeypatch, sampler)
    while _run_one(aws, "FanoutFunction", sampler):
        pass

    # Then no sample, inside or between invocations, had more delivered than found, and it completed exactly
    assert _poller(aws, "DeliverFunction").in_flight() == 0  # nothing went through the delivery queue
    assert len(sampler.samples) > 4
    final = sampler.samples[-1]
    assert (final["status"], final["total"], final["passed"], final["pending"]) == ("completed", 4, 4, 0)
    for device in (*subscribers, *named):
        assert [m["id"] for m in aws.poll(device)["messages"]] == [message_id]
