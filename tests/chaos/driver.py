"""The chaos driver: Lambda's SQS event sources, run by several workers, with kills and duplicates.

Each worker is one Lambda execution environment: its own handler modules (so its own Powertools batch
processor) and its own delivery service (so its own provider connections). Workers receive from the
template's queues in moto with each event source's batch size, invoke the real handler, and delete what
the handler did not report as failed, as Lambda does.

The world misbehaves on a seeded schedule:
- a killed invocation stops at its k-th AWS call (before a checkpoint, after a provider accepted, or
  anywhere between; if it makes fewer calls, after its handler returned) with an exception no handler
  code catches; its messages are not deleted and come back after the queue's visibility timeout, and
  its environment is replaced, as a crashed Lambda's is;
- a duplicated message is sent to its queue once more, so another worker may run it at the same time.
Each decision is drawn from a random stream seeded by (seed, what is decided about), not by the order
in which workers happen to get there, so a seed gives the same decisions however threads interleave.

Time is virtual for everything that waits in SQS (delays, visibility timeouts) and for leases: when
every worker is idle and nothing is visible, the clock jumps to the next message's due time, so hours
of back-off pass in moments.
"""

import hashlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from moto.sqs.models import sqs_backends

from dev.local_stack.poller import failed_message_ids, sqs_record
from dev.local_stack.runtime import LocalFunction
from dev.local_stack.stack import DeployedStack
from dev.local_stack.template import SamApp

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef


_COPY = "chaos_copy"  # marks the second copy of a duplicated message


class Killed(BaseException):
    """The execution environment vanished mid-invocation (timeout, out of memory, host failure)."""


class VirtualClock:
    """Seconds since the epoch, moved on only by the driver."""

    def __init__(self) -> None:
        self.now = time.time()

    def seconds(self) -> float:
        return self.now

    def millis(self) -> float:
        return self.now * 1000

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@dataclass
class Tally:
    invocations: int = 0
    killed: int = 0
    duplicated: int = 0
    clock_jumps: int = 0
    by_function: dict[str, int] = field(default_factory=dict)


@dataclass
class _Invocation:
    kill_at: int | None
    calls: int = 0


class ChaosDriver:
    def __init__(
        self,
        app: SamApp,
        stack: DeployedStack,
        clock: VirtualClock,
        *,
        seed: int,
        workers: int,
        kill_rate: float,
        duplicate_rate: float,
        new_container: Callable[[], None],
    ) -> None:
        self.app, self.stack, self.clock = app, stack, clock
        self.seed, self.workers = seed, workers
        self.kill_rate, self.duplicate_rate = kill_rate, duplicate_rate
        self.new_container = new_container
        self.tally = Tally()
        self.errors: list[BaseException] = []
        self._local = threading.local()
        self._cond = threading.Condition()
        self._idle = 0
        self._done = False
        self._sqs = boto3.client("sqs")
        self._sources = [
            s for s in app.sqs_sources if s.function in ("FanoutFunction", "DeliverFunction", "FeedbackFunction")
        ]
        self._queue_names = {stack.queue_urls[s.queue].rsplit("/", 1)[1] for s in self._sources}

    # --- decisions -------------------------------------------------------------------------------------

    def _stream(self, *about: str) -> random.Random:
        return random.Random("|".join((str(self.seed), *about)))

    @staticmethod
    def _identity(message: "MessageTypeDef") -> tuple[str, str, str]:
        """What a delivery of a message is: its body, which copy, which receive (not its random id)."""
        marker = message.get("MessageAttributes", {}).get(_COPY)
        copy = marker.get("StringValue", "0") if marker else "0"
        body = hashlib.sha256(message["Body"].encode()).hexdigest()
        return body, copy, message["Attributes"]["ApproximateReceiveCount"]

    def _kill_point(self, messages: list["MessageTypeDef"]) -> int | None:
        stream = self._stream("kill", *self._identity(messages[0]))
        killed = stream.random() < self.kill_rate
        point = stream.randint(1, 10)
        return point if killed else None

    def _duplicate(self, message: "MessageTypeDef") -> bool:
        body, copy, receive = self._identity(message)
        if copy != "0":
            return False  # a copy is not copied again
        return self._stream("dup", body, receive).random() < self.duplicate_rate

    # --- the kill switch, on pushlane's own boto3 clients ------------------------------------------------

    def before_aws_call(self, **_: Any) -> None:
        invocation: _Invocation | None = getattr(self._local, "invocation", None)
        if invocation is None or invocation.kill_at is None:
            return
        invocation.calls += 1
        if invocation.calls >= invocation.kill_at:
            invocation.kill_at = None
            raise Killed

    # --- workers ---------------------------------------------------------------------------------------

    def run(self, functions_for_worker: Callable[[int], dict[str, LocalFunction]]) -> None:
        threads = [
            threading.Thread(target=self._work, args=(n, functions_for_worker(n)), name=f"lambda-{n}")
            for n in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.errors:
            raise self.errors[0]

    def _work(self, number: int, functions: dict[str, LocalFunction]) -> None:
        self.new_container()
        turn = number
        try:
            while not self._done:
                source = self._sources[turn % len(self._sources)]
                turn += 1
                if self._serve(source, functions):
                    with self._cond:
                        self._cond.notify_all()  # what it sent may be work for an idle worker
                    continue
                if turn % len(self._sources) == number % len(self._sources):
                    self._rest()
        except BaseException as error:  # noqa: BLE001 - reported to the test thread
            self.errors.append(error)
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _serve(self, source: Any, functions: dict[str, LocalFunction]) -> bool:
        url = self.stack.queue_urls[source.queue]
        messages = self._sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(source.batch_size, 10),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return False
        for message in messages:
            if self._duplicate(message):
                self._sqs.send_message(
                    QueueUrl=url,
                    MessageBody=message["Body"],
                    MessageAttributes={_COPY: {"DataType": "Number", "StringValue": "1"}},
                )
                self.tally.duplicated += 1
        arn = self.stack.queue_arns[source.queue]
        event = {"Records": [sqs_record(message, arn) for message in messages]}
        self._local.invocation = _Invocation(self._kill_point(messages))
        self.tally.invocations += 1
        self.tally.by_function[source.function] = self.tally.by_function.get(source.function, 0) + 1
        try:
            response = functions[source.function].invoke(event)
            if self._local.invocation.kill_at is not None:
                raise Killed  # its kill point lay past its last AWS call: it dies before Lambda deletes
        except Killed:
            self.tally.killed += 1
            self._local.invocation = None
            functions.update(execution_environment(functions, "_"))
            self.new_container()
            return True  # nothing deleted: the messages come back after their visibility timeout
        self._local.invocation = None
        failed = failed_message_ids(response, [m["MessageId"] for m in messages])
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            deleted = self._sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
            )
            if deleted.get("Failed"):
                raise RuntimeError(f"SQS did not delete handled messages: {deleted['Failed']}")
        return True

    def _rest(self) -> None:
        """Nothing to do here: wait for others, or, when everyone is idle, move the clock on (or stop)."""
        with self._cond:
            self._idle += 1
            try:
                if self._idle == self.workers:
                    if not self._advance_clock():
                        self._done = True
                    self._cond.notify_all()
                else:
                    # Woken when another worker finishes an invocation; idle polling would take the GIL
                    # (and moto's lock) from the workers that have something to do.
                    self._cond.wait(timeout=0.5)
            finally:
                self._idle -= 1

    def _advance_clock(self) -> bool:
        """Jump to when the next message becomes visible; False when no message is left anywhere."""
        account = next(iter(self.stack.queue_arns.values())).split(":")[4]
        backend = sqs_backends[account][self.stack.region]
        due: list[float] = []
        for name in self._queue_names:
            for message in backend.queues[name]._messages:
                due.append(max(getattr(message, "visible_at", 0) or 0, getattr(message, "delayed_until", 0) or 0))
        if not due:
            return False
        upcoming = max(min(due) / 1000, self.clock.now)
        if upcoming > self.clock.now:
            self.clock.now = upcoming + 0.001
            self.tally.clock_jumps += 1
        return True


def execution_environment(functions: dict[str, LocalFunction], suffix: str) -> dict[str, LocalFunction]:
    """The same functions in a new execution environment: their handler modules are imported afresh."""
    fresh = {}
    for logical_id, function in functions.items():
        replacement = LocalFunction(
            function.spec,
            function_name=function.function_name,
            function_arn=function.function_arn,
            log_group_name=function.log_group_name,
        )
        replacement.module_name = function.module_name + suffix
        fresh[logical_id] = replacement
    return fresh
