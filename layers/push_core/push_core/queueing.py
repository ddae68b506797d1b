"""Jobs on the fan-out and feedback queues, and sending them without losing any."""

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Literal

import boto3
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from push_core import usage
from push_core.errors import ServiceUnavailable
from push_core.models import MessageContent, Platform, Target

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

SQS_BATCH_LIMIT = 10
MAX_DELAY_S = 900  # SQS DelaySeconds ceiling
_SEND_ATTEMPTS = 4


class Job(BaseModel):
    model_config = ConfigDict(frozen=True)


class ExpandJob(Job):
    """Read one page of an audience and deliver to it; continuation jobs carry the next cursor."""

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
    # Retries: the job whose transient failures this one retries (its key), which attempt this is, and
    # which slice of that job's failures (they are split so each job stays well inside SQS's size limit).
    retry_of: str | None = None
    attempt: int = 0
    chunk: int = 0

    @property
    def job_key(self) -> str:
        """Deterministic per page (and per retry), so a redelivered or re-sent job finds its own checkpoint."""
        if self.retry_of is not None:
            where = f"R|{self.retry_of}|{self.attempt}|{self.chunk}"
        elif self.topic is not None:
            where = f"T|{self.topic}|{self.shard}|{self.cursor or ''}"
        else:
            where = "D"
        return hashlib.sha256(where.encode()).hexdigest()[:32]


class PurgeAppJob(Job):
    """Delete a deleted app's devices, a page at a time (its keys are already gone)."""

    kind: Literal["purge_app"] = "purge_app"
    app_id: str
    shard: int
    cursor: str | None = None


FanoutJob = Annotated[ExpandJob | PurgeAppJob, Field(discriminator="kind")]
fanout_job_adapter: TypeAdapter[ExpandJob | PurgeAppJob] = TypeAdapter(FanoutJob)


class FeedbackEvent(BaseModel):
    """A provider said a target is dead (or the target vanished): prune it."""

    model_config = ConfigDict(frozen=True)

    app_id: str
    device_id: str
    platform: Platform
    reason: str
    provider_timestamp_ms: int | None = None
    observed_at: int


_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@lru_cache(maxsize=1)
def sqs_client() -> "SQSClient":
    """The SQS client of this container, built lazily."""
    client: SQSClient = usage.instrument(boto3.client("sqs", config=_BOTO_CONFIG))
    return client


def send_jobs(queue_url: str, jobs: Sequence[BaseModel], *, delay_s: int = 0) -> None:
    """Send jobs in batches of ten, re-sending any entry SQS reports as failed; raise if some never go."""
    bodies = [job.model_dump_json(exclude_none=True) for job in jobs]
    delay = max(0, min(MAX_DELAY_S, delay_s))
    for start in range(0, len(bodies), SQS_BATCH_LIMIT):
        pending = {str(i): body for i, body in enumerate(bodies[start : start + SQS_BATCH_LIMIT])}
        for _ in range(_SEND_ATTEMPTS):
            response = sqs_client().send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": i, "MessageBody": b, "DelaySeconds": delay} for i, b in pending.items()],
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
