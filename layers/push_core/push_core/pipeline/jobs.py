"""Jobs on the fan-out and feedback queues, and sending them without losing any."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Literal

import boto3
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from push_core import usage
from push_core.errors import ServiceUnavailable
from push_core.models import FeedbackEvent, MessageContent, Target

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

SQS_BATCH_LIMIT = 10
MAX_DELAY_S = 900  # SQS DelaySeconds ceiling
# SQS's message size limit (also the limit of one SendMessageBatch call in total). 256 KiB holds in every
# region; where the queue allows 1 MiB, JOB_MESSAGE_BYTES raises it.
DEFAULT_MESSAGE_BYTES = 262_144
_SEND_ATTEMPTS = 4


class Job(BaseModel):
    model_config = ConfigDict(frozen=True)


class ExpandJob(Job):
    """Read one page of an audience and pack it into delivery batches; continuation jobs carry the next cursor."""

    kind: Literal["expand"] = "expand"
    app_id: str
    publication_id: str
    created_at: int
    content: MessageContent
    # Exactly one of: a topic shard to page through, or explicit targets.
    topic: str | None = None
    shard: int = 0
    cursor: str | None = None
    targets: list[Target] = Field(default_factory=list)
    # Topics listed before this one in the publication: their subscribers already got the message.
    earlier_topics: list[str] = Field(default_factory=list)
    explicit_device_ids: list[str] = Field(default_factory=list)

    @property
    def job_key(self) -> str:
        """Deterministic per page, so a redelivered or re-sent job finds its own checkpoint."""
        where = f"T|{self.topic}|{self.shard}|{self.cursor or ''}" if self.topic is not None else "D"
        return hashlib.sha256(where.encode()).hexdigest()[:32]


class DeliveryJob(Job):
    """Deliver one message to a packed batch of targets; checkpointed slice by slice under a lease.

    Batches come from an expand job (origin = its key, index = the batch's place in it), or are the
    retry of one slice of another batch (origin = that batch's key, index = the slice).
    """

    kind: Literal["deliver"] = "deliver"
    app_id: str
    publication_id: str
    created_at: int
    content: MessageContent
    targets: list[Target]
    origin: str
    index: int
    attempt: int = 0

    @property
    def job_key(self) -> str:
        """Unique down every chain: a batch's key is derived from the key of the job that made it."""
        return hashlib.sha256(f"B|{self.origin}|{self.index}".encode()).hexdigest()[:32]


class PurgeAppJob(Job):
    """Delete a deleted app's devices, a page at a time (its keys are already gone)."""

    kind: Literal["purge_app"] = "purge_app"
    app_id: str
    shard: int
    cursor: str | None = None


FanoutJob = Annotated[ExpandJob | PurgeAppJob, Field(discriminator="kind")]
fanout_job_adapter: TypeAdapter[ExpandJob | PurgeAppJob] = TypeAdapter(FanoutJob)
delivery_job_adapter: TypeAdapter[DeliveryJob] = TypeAdapter(DeliveryJob)


def pack_targets(targets: Sequence[Target], envelope: DeliveryJob, limit_bytes: int) -> list[list[Target]]:
    """Split targets into batches whose DeliveryJob bodies stay under limit_bytes (each batch at least one).

    Sizes are measured on the JSON each target becomes, so a batch of Web Push targets (~400 bytes each)
    holds fewer than one of APNs tokens (~150 bytes), and every batch fills the message close to the limit.
    """
    room = limit_bytes - len(envelope.model_dump_json(exclude_none=True)) - _ENVELOPE_SLACK
    if room <= 0:
        raise ValueError("the message content leaves no room for targets in a queue message")
    sizes = [len(target.model_dump_json(exclude_none=True)) + 1 for target in targets]  # each with its comma
    return [[targets[i] for i in group] for group in _fill(sizes, room, max_count=len(targets))]


def _fill(sizes: Sequence[int], room: int, max_count: int) -> list[list[int]]:
    """Greedy, in order: indexes grouped so no group exceeds room bytes or max_count members."""
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, size in enumerate(sizes):
        if current and (len(current) == max_count or used + size > room):
            groups.append(current)
            current, used = [], 0
        current.append(index)
        used += size
    if current:
        groups.append(current)
    return groups


# Room for the envelope's own numbers growing (index, attempt) after it was measured.
_ENVELOPE_SLACK = 256


# Every kind of message the queues carry (docs/ARCHITECTURE.md names each with its fields; a test checks).
QUEUE_MESSAGES: tuple[type[BaseModel], ...] = (ExpandJob, PurgeAppJob, DeliveryJob, FeedbackEvent)

_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@lru_cache(maxsize=1)
def sqs_client() -> "SQSClient":
    """The SQS client of this container, built lazily."""
    client: SQSClient = usage.instrument(boto3.client("sqs", config=_BOTO_CONFIG))
    return client


def _request_groups(bodies: list[str], limit_bytes: int) -> list[list[str]]:
    """Group bodies into SendMessageBatch calls: at most ten entries and limit_bytes in all per call."""
    sizes = [len(body.encode()) for body in bodies]
    if sizes and max(sizes) > limit_bytes:
        raise ValueError(f"a job of {max(sizes)} bytes exceeds the queue's message limit of {limit_bytes}")
    return [[bodies[i] for i in group] for group in _fill(sizes, limit_bytes, max_count=SQS_BATCH_LIMIT)]


def send_jobs(
    queue_url: str,
    jobs: Sequence[BaseModel],
    *,
    delay_s: int = 0,
    limit_bytes: int = DEFAULT_MESSAGE_BYTES,
    client: "SQSClient | None" = None,
) -> None:
    """Send jobs in batch calls, re-sending any entry SQS reports as failed; raise if some never go.

    client: the SQS client to use (the container's by default).
    """
    sqs = client or sqs_client()
    bodies = [job.model_dump_json(exclude_none=True) for job in jobs]
    # SQS fair queues: each app is a message group of the standard queue, so one app's backlog does not
    # hold back another app's jobs (the body names its app, so equal bodies share their group).
    app_of = {body: str(getattr(job, "app_id", "")) for body, job in zip(bodies, jobs, strict=True)}
    delay = max(0, min(MAX_DELAY_S, delay_s))
    for group in _request_groups(bodies, limit_bytes):
        pending = {str(i): body for i, body in enumerate(group)}
        for _ in range(_SEND_ATTEMPTS):
            response = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[_entry(i, b, delay, app_of[b]) for i, b in pending.items()],
            )
            failed = response.get("Failed", [])
            # Sender faults (malformed entry) will not get better by retrying.
            if any(f.get("SenderFault") for f in failed):
                raise ValueError(f"SQS rejected a job: {failed[0].get('Message')}")
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            if not pending:
                break
        if pending:
            raise ServiceUnavailable(
                "The job queue did not accept the message; retry shortly.", code="queue_unavailable"
            )


def _entry(entry_id: str, body: str, delay_s: int, app_id: str) -> "SendMessageBatchRequestEntryTypeDef":
    entry: SendMessageBatchRequestEntryTypeDef = {"Id": entry_id, "MessageBody": body, "DelaySeconds": delay_s}
    if app_id:
        entry["MessageGroupId"] = app_id
    return entry


@dataclass(frozen=True)
class JobQueues:
    """The deployment's three job queues, as the stages send to them."""

    fanout_url: str
    delivery_url: str
    feedback_url: str
    message_bytes: int = DEFAULT_MESSAGE_BYTES

    def expand(self, jobs: Sequence[BaseModel]) -> None:
        """Expand and purge jobs onto the fan-out queue (they are far below any message limit)."""
        send_jobs(self.fanout_url, jobs)

    def deliver(self, jobs: Sequence["DeliveryJob"], delay_s: int = 0) -> None:
        """Delivery batches onto the delivery queue."""
        send_jobs(self.delivery_url, jobs, delay_s=delay_s, limit_bytes=self.message_bytes)

    def requeue(self, job: "DeliveryJob", delay_s: int = 0) -> None:
        """One batch back onto the delivery queue: a hand-back, or a retry after delay_s."""
        self.deliver([job], delay_s)

    def report_dead(self, events: list[FeedbackEvent]) -> None:
        """Dead targets onto the feedback queue, to be pruned."""
        send_jobs(self.feedback_url, events, limit_bytes=self.message_bytes)
