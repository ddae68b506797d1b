"""The AWS calls of one publication's fan-out, counted from pushlane's code paths instead of run.

Stage one (``AudienceExpansion.expand_page``), per Query page of a topic shard:
  GetItem (checkpoint there?) · Query · when a page follows: TransactWriteItems (JOB#, PUB) and a
  SendMessageBatch of the next page's job · one TransactWriteItems per 99 delivery batches (register) ·
  SendMessageBatch calls of at most 10 bodies and the message limit in bytes · TransactWriteItems
  checkpoint (BATCH#, PUB). A shard whose whole audience is one batch of at most inline_delivery_max
  targets is delivered by the expand job itself instead of sent.
Stage two (``BatchDelivery.deliver_slices``), per batch: UpdateItem (the lease, returning the item) ·
  UpdateItem (the app's hourly deliveries quota) ·
  UpdateItem per slice of SLICE_SIZE but the last · TransactWriteItems (finish and last slice: RUN#, PUB).
Per execution environment that delivers: the shared APNs token's GetItem (and one PutItem by whoever
  mints it) and one Secrets Manager GetSecretValue (credentials are cached for 5 minutes).
Not metered by pushlane: the publish (PutItem + SendMessageBatch of the expand jobs), the event
  sources' ReceiveMessage and DeleteMessageBatch, Lambda invocations.

Pages are cut the way DynamoDB cuts them and packed with pushlane's own ``jobs._fill``, the
function ``pack_targets`` and ``send_jobs`` use, so the batch and request shapes are the real ones.
tests/unit/test_scale_model.py holds the counts against the usage a real run on moto meters and
against the calls the real expand code makes.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from push_core import assembly
from push_core.config import Settings
from push_core.models import MessageContent, Publication
from push_core.pipeline.deliver import BatchRules
from push_core.pipeline.jobs import (
    _ENVELOPE_SLACK,
    DEFAULT_MESSAGE_BYTES,
    SQS_BATCH_LIMIT,
    DeliveryJob,
    ExpandJob,
    _fill,
)
from push_core.storage.keys import publication_pk
from push_core.storage.publications import _JOBS_PER_TRANSACTION
from push_core.usage import SQS_BILLING_CHUNK

# JOB#, BATCH# and RUN# items hold keys, a lease and a few counters: well under 1 KB, one unit each.
SMALL_ITEM_BYTES = 300
MIB = 1024 * 1024


def value_bytes(value: Any) -> int:
    """Size of an attribute value as DynamoDB counts it (strings and binary by length, numbers by digits)."""
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float | Decimal):
        digits = Decimal(str(value)).normalize().as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, Mapping):
        return 3 + sum(len(str(k).encode()) + value_bytes(v) + 1 for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return 3 + sum(value_bytes(v) + 1 for v in value)
    raise TypeError(f"not a DynamoDB value: {type(value).__name__}")


def item_bytes(item: Mapping[str, Any]) -> int:
    """Size of an item as DynamoDB counts it for capacity and the 1 MB page: names plus values."""
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


@dataclass(frozen=True)
class CapacityRules:
    """How requests turn into capacity units: as DynamoDB bills them, or as moto reports them."""

    name: str
    page_cap_bytes: int
    # DynamoDB returns a LastEvaluatedKey whenever a page stops at Limit, even with nothing after it;
    # moto looks ahead and leaves it out.
    limit_ends_page: bool
    moto: bool

    def strong_read(self, size: int) -> float:
        """GetItem with ConsistentRead (an absent item costs the minimum)."""
        return 0.5 if self.moto else max(1, math.ceil(size / 4096))

    def query(self, page_bytes: int) -> float:
        """An eventually consistent Query page: half a unit per 4 KB read, rounded up over the page."""
        return 1.0 if self.moto else 0.5 * max(1, math.ceil(page_bytes / 4096))

    def update(self, size: int) -> float:
        return 0.5 if self.moto else max(1, math.ceil(size / 1024))

    def put(self, size: int) -> float:
        return 1.0 if self.moto else max(1, math.ceil(size / 1024))

    def transaction(self, sizes: Sequence[int]) -> float:
        """Two units per item per KB (what usage.py meters for every emulator too: two per item)."""
        return float(sum(2 if self.moto else 2 * max(1, math.ceil(s / 1024)) for s in sizes))


AWS = CapacityRules("aws", page_cap_bytes=MIB, limit_ends_page=True, moto=False)
MOTO = CapacityRules("moto", page_cap_bytes=1_000_000, limit_ends_page=False, moto=True)


@dataclass(frozen=True)
class Shape:
    """What shapes pages, batches and requests: the deployment's settings and pushlane's constants."""

    page_limit: int
    message_bytes: int
    inline_max: int
    slice_size: int
    register_chunk: int = _JOBS_PER_TRANSACTION
    send_entries: int = SQS_BATCH_LIMIT

    @classmethod
    def of(cls, settings: Settings) -> "Shape":
        # The slice size read now, not at import: the moto cross-check runs with smaller slices.
        return cls(
            page_limit=settings.expand_page_size,
            message_bytes=settings.job_message_bytes,
            inline_max=settings.inline_delivery_max,
            slice_size=assembly.batch_rules().slice_size,
        )

    @classmethod
    def defaults(cls) -> "Shape":
        fields = Settings.model_fields
        return cls(
            page_limit=int(fields["expand_page_size"].default),
            message_bytes=int(fields["job_message_bytes"].default),
            inline_max=int(fields["inline_delivery_max"].default),
            slice_size=BatchRules().slice_size,
        )


@dataclass(frozen=True)
class Message:
    """The publication being fanned out, for the sizes of the jobs that carry it."""

    app_id: str
    publication_id: str
    created_at: int
    content: MessageContent
    topic: str

    def envelope_bytes(self) -> int:
        """A delivery job without targets, as pack_targets measures it (origin: a 32-hex job key)."""
        envelope = DeliveryJob(
            app_id=self.app_id,
            publication_id=self.publication_id,
            created_at=self.created_at,
            content=self.content,
            targets=[],
            origin="0" * 32,
            index=0,
        )
        return len(envelope.model_dump_json(exclude_none=True))

    def follow_up_bytes(self, shard: int, cursor: str) -> int:
        """The next page's expand job as sent."""
        return self.expand_job_bytes(shard, cursor)

    def expand_job_bytes(self, shard: int, cursor: str | None = None) -> int:
        """An expand job as sent: the first page's by the publish, a next page's by the page before."""
        job = ExpandJob(
            app_id=self.app_id,
            publication_id=self.publication_id,
            created_at=self.created_at,
            content=self.content,
            topic=self.topic,
            shard=shard,
            cursor=cursor,
        )
        return len(job.model_dump_json(exclude_none=True))

    def publication_item_bytes(self, audience: int, pages: int, batches: int) -> int:
        """The PUB item with its counters grown to this audience (as create_publication lays it out)."""
        jobs = pages + batches
        publication = Publication(
            app_id=self.app_id,
            publication_id=self.publication_id,
            content=self.content,
            topics=[self.topic],
            created_at=self.created_at,
            total=audience,
            passed=audience,
            expand_jobs=pages,
            expand_jobs_done=pages,
            delivery_batches=batches,
            delivery_batches_done=batches,
            usage_read_units=audience / 10 + 0.5,
            usage_write_units=audience / 100 + 0.5,
            usage_dynamodb_requests=jobs * 10,
            usage_sqs_requests=jobs * 4,
        )
        item = {
            "pk": publication_pk(self.app_id, self.publication_id),
            "sk": "PUB",
            **publication.model_dump(exclude={"content"}, exclude_none=True),
            "content": self.content.model_dump_json(exclude_none=True),
            "expires_at": self.created_at + 30 * 86_400,
        }
        return item_bytes(item)


@dataclass(frozen=True)
class Page:
    """One expand job: a Query page and what becomes of it."""

    shard: int
    targets: int
    page_bytes: int
    has_next: bool
    inline: bool
    batch_targets: tuple[int, ...]
    batch_bytes: tuple[int, ...]
    # Delivery batches per SendMessageBatch call, by index (empty when delivered inline).
    sends: tuple[tuple[int, ...], ...]
    registers: tuple[int, ...]  # jobs per register transaction


def cut(item_sizes: Sequence[int], limit: int, rules: CapacityRules) -> list[tuple[int, int, int, bool]]:
    """(start, end, bytes, has_next) of each Query page over one partition, in sort-key order."""
    pages: list[tuple[int, int, int, bool]] = []
    start, count = 0, len(item_sizes)
    while True:
        end, used = start, 0
        while end < count and end - start < limit and used + item_sizes[end] <= rules.page_cap_bytes:
            used += item_sizes[end]
            end += 1
        has_next = end < count or (rules.limit_ends_page and end - start == limit)
        pages.append((start, end, used, has_next))
        if not has_next:
            return pages
        start = end


def plan_shard(
    shard: int,
    item_sizes: Sequence[int],
    target_sizes: Sequence[int],
    shape: Shape,
    message: Message,
    rules: CapacityRules,
) -> list[Page]:
    """The pages of one topic shard and their batches and requests; target_sizes as pack_targets counts them."""
    envelope = message.envelope_bytes()
    room = shape.message_bytes - envelope - _ENVELOPE_SLACK
    pages = []
    for start, end, used, has_next in cut(item_sizes, shape.page_limit, rules):
        sizes = list(target_sizes[start:end])
        groups = _fill(sizes, room, max_count=len(sizes)) if sizes else []
        batch_targets = tuple(len(group) for group in groups)
        # The body is the envelope with its index, and the targets joined by commas (sizes count one each).
        batch_bytes = tuple(
            envelope + len(str(index)) - 1 + sum(sizes[i] for i in group) - 1 for index, group in enumerate(groups)
        )
        whole = start == 0 and not has_next
        inline = whole and len(groups) == 1 and batch_targets[0] <= shape.inline_max
        sends = () if inline else tuple(tuple(g) for g in _fill(batch_bytes, shape.message_bytes, shape.send_entries))
        registers = tuple(
            min(shape.register_chunk, len(groups) - i) for i in range(0, len(groups), shape.register_chunk)
        )
        pages.append(Page(shard, end - start, used, has_next, inline, batch_targets, batch_bytes, sends, registers))
    return pages


def _chunks(payload_bytes: int) -> int:
    """SQS bills every 64 KB of a request's payload as one request."""
    return max(1, math.ceil(payload_bytes / SQS_BILLING_CHUNK))


@dataclass
class Tally:
    """The calls and capacity of one publication's fan-out."""

    deliveries: int = 0
    expand_jobs: int = 0
    delivery_batches: int = 0
    inline_batches: int = 0
    # Metered into the publication (its usage in GET /v1/messages/{id}).
    dynamodb_requests: int = 0
    dynamodb_read_units: float = 0.0
    dynamodb_write_units: float = 0.0
    sqs_requests: int = 0
    # Outside pushlane's metering.
    publish_dynamodb_requests: int = 0
    publish_write_units: float = 0.0
    publish_sqs_requests: int = 0
    sqs_receive_requests: int = 0
    sqs_delete_requests: int = 0
    expand_invocations: int = 0
    deliver_invocations: int = 0
    secrets_requests: int = 0
    containers: int = 0
    per_page: list[dict[str, float]] = field(default_factory=list, repr=False)

    def metered(self) -> dict[str, float]:
        """What the publication's usage reports, in the same names."""
        return {
            "dynamodb_read_units": self.dynamodb_read_units,
            "dynamodb_write_units": self.dynamodb_write_units,
            "dynamodb_requests": self.dynamodb_requests,
            "sqs_requests": self.sqs_requests,
            "fanout_jobs": self.expand_jobs + self.delivery_batches,
        }

    def billed(self) -> dict[str, float]:
        """Every request and unit AWS bills for this publication."""
        return {
            "dynamodb_requests": self.dynamodb_requests + self.publish_dynamodb_requests,
            "dynamodb_read_units": self.dynamodb_read_units,
            "dynamodb_write_units": self.dynamodb_write_units + self.publish_write_units,
            "sqs_requests": self.sqs_requests
            + self.publish_sqs_requests
            + self.sqs_receive_requests
            + self.sqs_delete_requests,
            "lambda_invocations": self.expand_invocations + self.deliver_invocations,
            "secrets_manager_requests": self.secrets_requests,
            "expand_jobs": self.expand_jobs,
            "delivery_batches": self.delivery_batches,
        }

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "per_page"}


def _batch(tally: Tally, targets: int, shape: Shape, rules: CapacityRules, publication: int) -> None:
    slices = math.ceil(targets / shape.slice_size)
    tally.delivery_batches += 1
    tally.deliveries += targets
    tally.dynamodb_requests += 1 + 1 + (slices - 1) + 1
    # the lease, the app's hourly deliveries count (limits.take_deliveries), every slice but the last
    tally.dynamodb_write_units += rules.update(SMALL_ITEM_BYTES) * (slices + 1)
    tally.dynamodb_write_units += rules.transaction([SMALL_ITEM_BYTES, publication])


def count(
    shards: Sequence[Sequence[Page]],
    shape: Shape,
    message: Message,
    rules: CapacityRules,
    *,
    containers: int = 0,
    token_minted: bool = False,
) -> Tally:
    """Count a publication's calls from its pages (one list per topic shard, in chain order)."""
    audience = sum(page.targets for pages in shards for page in pages)
    page_count = sum(len(chain) for chain in shards)
    batch_count = sum(len(page.batch_targets) for chain in shards for page in chain)
    publication = message.publication_item_bytes(audience, page_count, batch_count)
    tally = Tally()
    tally.publish_dynamodb_requests = 1
    tally.publish_write_units = rules.put(publication)
    first_jobs = [message.expand_job_bytes(shard) for shard in range(len(shards))]
    for group in _fill(first_jobs, DEFAULT_MESSAGE_BYTES, SQS_BATCH_LIMIT):  # publish sends with the default limit
        tally.publish_sqs_requests += _chunks(sum(first_jobs[i] for i in group))
    follow_up = message.follow_up_bytes(len(shards) - 1, "D" * 30)
    for pages in shards:
        for page in pages:
            before = (
                tally.dynamodb_requests,
                tally.dynamodb_read_units,
                tally.dynamodb_write_units,
                tally.sqs_requests,
            )
            tally.expand_jobs += 1
            tally.expand_invocations += 1  # counted one per message: BatchSize 10 rarely finds 10 waiting
            tally.sqs_receive_requests += 1
            tally.sqs_delete_requests += 1
            tally.dynamodb_requests += 2
            tally.dynamodb_read_units += rules.strong_read(0) + rules.query(page.page_bytes)
            if page.has_next:
                tally.dynamodb_requests += 1
                tally.dynamodb_write_units += rules.transaction([SMALL_ITEM_BYTES, publication])
                tally.sqs_requests += _chunks(follow_up)
            for jobs_in_call in page.registers:
                tally.dynamodb_requests += 1
                tally.dynamodb_write_units += rules.transaction([SMALL_ITEM_BYTES] * jobs_in_call + [publication])
            for call in page.sends:
                tally.sqs_requests += _chunks(sum(page.batch_bytes[i] for i in call))
            tally.dynamodb_requests += 1  # the checkpoint
            tally.dynamodb_write_units += rules.transaction([SMALL_ITEM_BYTES, publication])
            # What this expand job's checkpoint adds to the publication (an inline batch is metered apart).
            tally.per_page.append(
                {
                    "targets": page.targets,
                    "dynamodb_requests": tally.dynamodb_requests - before[0],
                    "dynamodb_read_units": tally.dynamodb_read_units - before[1],
                    "dynamodb_write_units": tally.dynamodb_write_units - before[2],
                    "sqs_requests": tally.sqs_requests - before[3],
                }
            )
            for index, targets in enumerate(page.batch_targets):
                _batch(tally, targets, shape, rules, publication)
                if page.inline:
                    tally.inline_batches += 1
                else:
                    tally.deliver_invocations += 1
                    tally.sqs_receive_requests += _chunks(page.batch_bytes[index])
                    tally.sqs_delete_requests += 1
    add_containers(tally, containers, rules, token_minted=token_minted)
    return tally


def add_containers(tally: Tally, containers: int, rules: CapacityRules, *, token_minted: bool = False) -> None:
    """Each execution environment that delivers reads the shared APNs token and the app's credentials once."""
    tally.containers += containers
    tally.dynamodb_requests += containers + (1 if token_minted else 0)
    tally.dynamodb_read_units += containers * rules.strong_read(SMALL_ITEM_BYTES)
    tally.dynamodb_write_units += rules.put(SMALL_ITEM_BYTES) if token_minted else 0.0
    tally.secrets_requests += containers
