"""Scale model: one publication fanned out to 10k ... 1M synthetic APNs subscribers, on paper and in part for real.

What is real: the subscriptions (built by storage/devices.subscription_item, sharded by storage/keys.shard_of,
sized as DynamoDB counts items), the page and batch shapes (DynamoDB's page rules, pushlane's own packing),
and the CPU of pushlane's code: one whole shard chain of the 1M audience runs through the real
``AudienceExpansion.expand`` against a wire-level DynamoDB/SQS double (bench/aws_double.py), which also checks that
bench/calls.py counts exactly the calls that code makes. Delivery CPU per target is the APNs figure
`make bench` measured.

What is modeled: AWS's side. Calls and capacity are counted by bench/calls.py; wall time comes from a
small event simulation of the two queues with the service timings of bench/latency.py (one table, both
columns reported): each topic shard's pages form a chain (Query, register, send, SQS hop to the next
page's invocation), the chains run side by side, delivery batches start as pages send them, and at
most `concurrency` invocations run at once. Wall time is when the last batch finishes.

    python -m bench.scale_model            # ~1-2 minutes; merges into bench/results.json, draws bench/scale.png
"""

import argparse
import gc
import heapq
import itertools
import json
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import fanout_cost, latency, prices, scale_document
from bench.aws_double import AwsDouble, answering
from bench.calls import (
    AWS,
    MIB,
    CapacityRules,
    Message,
    Page,
    Shape,
    Tally,
    add_containers,
    count,
    item_bytes,
    plan_shard,
    value_bytes,
)
from bench.documents import RESULTS, SCALE_FIGURES, merge_results
from push_core.identifiers import new_sortable_id
from push_core.models import DeviceRecord, MessageContent, Platform, Target
from push_core.storage.devices import subscription_item
from push_core.storage.keys import shard_of, topic_pk

REPO = Path(__file__).resolve().parents[1]
PLOT = REPO / "bench" / "scale.png"
SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)
SHARD_OPTIONS = (4, 16, 64)
CONCURRENCY = 1_000
TARGET_S = 60.0
TOPIC = "*"  # every device of the app: the audience a 1M publication has
CONTENT = MessageContent(title="Sale", body="Today only")
EPOCH_MS = 1_767_225_600_000  # devices registered from 2026-01-01, one a millisecond: ids sort by age


# --- the audience ---------------------------------------------------------------------------------


@dataclass
class Population:
    """Synthetic APNs devices, sorted by id: any prefix, and every shard of it, comes in sort-key order."""

    app_id: str
    device_ids: list[str]
    tokens: list[str]
    # DynamoDB size of each subscription item without its pk (the pk varies with the shard).
    item_bytes_without_pk: list[int]
    # Each target's JSON plus the comma between targets, as pack_targets counts it.
    target_bytes: list[int]
    _shards: dict[int, list[int]] = field(default_factory=dict, repr=False)

    @classmethod
    def synthesize(cls, count: int, seed: int = 7) -> "Population":
        rng = random.Random(seed)
        app_id = new_sortable_id(EPOCH_MS - 86_400_000)
        ids = [new_sortable_id(EPOCH_MS + i) for i in range(count)]
        tokens = [rng.randbytes(32).hex() for _ in range(count)]
        items, targets = [], []
        for device_id, token in zip(ids, tokens, strict=True):
            item = subscription_item(_device(app_id, device_id, token), TOPIC, 1)
            items.append(item_bytes(item) - 2 - value_bytes(item["pk"]))
            target = Target(
                device_id=device_id,
                platform=Platform(item["platform"]),
                token=item.get("token"),
                push=item.get("push") or {},
            )  # as subscriber_page builds it
            targets.append(len(target.model_dump_json(exclude_none=True)) + 1)
        return cls(app_id, ids, tokens, items, targets)

    def shard_of_each(self, shards: int) -> list[int]:
        if shards not in self._shards:
            self._shards[shards] = [shard_of(d, shards) for d in self.device_ids]
        return self._shards[shards]

    def members(self, audience: int, shards: int) -> list[list[int]]:
        """Indexes of the first `audience` devices, by shard, in sort-key order."""
        buckets: list[list[int]] = [[] for _ in range(shards)]
        for index, shard in enumerate(self.shard_of_each(shards)[:audience]):
            buckets[shard].append(index)
        return buckets

    def plan(
        self, audience: int, shards: int, shape: Shape, message: Message, rules: CapacityRules = AWS
    ) -> list[list[Page]]:
        """Every shard's pages, batches and requests for a publication to the first `audience` devices."""
        plans = []
        for shard, members in enumerate(self.members(audience, shards)):
            pk = 2 + value_bytes(topic_pk(self.app_id, TOPIC, shard))
            items = [self.item_bytes_without_pk[i] + pk for i in members]
            targets = [self.target_bytes[i] for i in members]
            plans.append(plan_shard(shard, items, targets, shape, message, rules))
        return plans


def _device(app_id: str, device_id: str, token: str) -> DeviceRecord:
    return DeviceRecord(
        app_id=app_id,
        device_id=device_id,
        platform=Platform.APNS,
        token=token,
        created_at=0,
        registered_at=0,
        key_id="scale",
    )


class ShardPartition:
    """One topic shard of a Population, as the AWS double serves it."""

    def __init__(self, population: Population, members: list[int], shards: int) -> None:
        self._population, self._members, self._shards = population, members, shards
        self.sort_keys = [f"DEV#{population.device_ids[i]}" for i in members]

    def item(self, index: int) -> dict[str, Any]:
        i = self._members[index]
        device = _device(self._population.app_id, self._population.device_ids[i], self._population.tokens[i])
        return subscription_item(device, TOPIC, self._shards)


def message_for(population: Population) -> Message:
    return Message(population.app_id, new_sortable_id(EPOCH_MS + 10**10), EPOCH_MS // 1000 + 10**7, CONTENT, TOPIC)


# --- pushlane's CPU, measured on its real code ------------------------------------------------------


@dataclass(frozen=True)
class CpuProfile:
    """CPU seconds of pushlane's own code on the bench machine (Lambda's share is applied later)."""

    expand_read_per_target: float  # Query response parsed into Targets (before the follow-up is sent)
    expand_rest_per_target: float  # packing, job JSON, SendMessageBatch requests, transactions
    deliver_parse_per_byte: float  # a batch's SQS body into a DeliveryJob
    deliver_per_target: float  # the APNs delivery path, from `make bench` (pushlane-apns CPU per notification)
    measured_pages: int
    measured_targets: int


@contextmanager
def _small_heap() -> Iterator[None]:
    """Measure as in a Lambda, whose heap is small: full collections here would rescan a million devices."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_real_chain(
    population: Population,
    audience: int,
    shards: int,
    shard: int,
    message: Message,
    *,
    environment: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Expand one shard page by page through pushlane's real code; what it called, sent and spent.

    The shard must be too large for inline delivery: the double answers the expand path only.
    """
    from push_core import assembly
    from push_core.config import get_settings
    from push_core.pipeline.jobs import ExpandJob, fanout_job_adapter, sqs_client
    from push_core.storage import subscriptions as subscription_store
    from push_core.storage.table import dynamodb_client, dynamodb_table

    members = population.members(audience, shards)
    double = AwsDouble(
        {topic_pk(population.app_id, TOPIC, s): ShardPartition(population, m, shards) for s, m in enumerate(members)}
    )
    # Per page: (targets, CPU reading the page, CPU of the whole expand job), the double's own CPU taken out.
    measured: list[tuple[int, float, float]] = []
    reading: list[tuple[int, float]] = []
    bodies: list[str] = []
    original = subscription_store.subscriber_page

    def timed_page(*args: Any, **kwargs: Any) -> Any:
        own, started = double.own_cpu_s, time.process_time()
        page = original(*args, **kwargs)
        reading.append((len(page.targets), time.process_time() - started - (double.own_cpu_s - own)))
        return page

    with answering(double, environment), _small_heap():
        shape = Shape.of(get_settings())
        # Clients are built at a cold start, not per page: build them before anything is timed.
        dynamodb_table(), dynamodb_client(), sqs_client()
        job: ExpandJob | None = ExpandJob(
            app_id=message.app_id,
            publication_id=message.publication_id,
            created_at=message.created_at,
            content=message.content,
            topic=TOPIC,
            shard=shard,
        )
        subscription_store.subscriber_page = timed_page
        try:
            while job is not None:
                own, started = double.own_cpu_s, time.process_time()
                assembly.audience_expansion().expand(job)
                spent = time.process_time() - started - (double.own_cpu_s - own)
                measured.append((*reading.pop(), spent))
                bodies += double.take("DELIVERY_QUEUE_URL")
                follow = double.take("FANOUT_QUEUE_URL")
                parsed = fanout_job_adapter.validate_json(follow[0]) if follow else None
                job = parsed if isinstance(parsed, ExpandJob) else None
        finally:
            subscription_store.subscriber_page = original
    # The median over full pages: the bench machine is shared, and one slow page should not set the rate.
    full = [m for m in measured if m[0] >= max(n for n, *_ in measured) / 2] or measured
    return {
        "double": double,
        "shape": shape,
        "message": message,
        "pages": len(measured),
        "targets": sum(n for n, *_ in measured),
        "read_cpu_per_target": statistics.median(read / max(1, n) for n, read, _ in full),
        "rest_cpu_per_target": statistics.median((total - read) / max(1, n) for n, read, total in full),
        "delivery_bodies": bodies,
    }


def check_chain(
    population: Population, audience: int, shards: int, shard: int, chain: Mapping[str, Any]
) -> dict[str, Any]:
    """The real chain's calls beside bench/calls.py's count for the same shard (AWS rules)."""
    double: AwsDouble = chain["double"]
    message: Message = chain["message"]
    plan = population.plan(audience, shards, chain["shape"], message)[shard]
    tally = count([plan], chain["shape"], message, AWS)
    keys = ("dynamodb_requests", "dynamodb_read_units", "dynamodb_write_units", "sqs_requests")
    real = [{k: c[k] for k in keys} for c in double.checkpoints]
    counted = [{k: float(p[k]) for k in keys} for p in tally.per_page]
    planned_bytes = [b for page in plan for b in page.batch_bytes]
    real_bytes = [len(body.encode()) for body in chain["delivery_bodies"]]
    calls = Counter(call.operation for call in double.calls)
    return {
        "subscribers": audience,
        "topic_shards": shards,
        "shard": shard,
        "pages": chain["pages"],
        "targets": chain["targets"],
        "delivery_batches": len(real_bytes),
        "calls": dict(calls),
        "pages_match": chain["pages"] == len(plan),
        "metered_usage_match": real == counted,
        "batch_bytes_match": real_bytes == planned_bytes,
        "match": chain["pages"] == len(plan) and real == counted and real_bytes == planned_bytes,
    }


def deliver_parse_cpu(bodies: Sequence[str], rounds: int = 3) -> float:
    """CPU per byte to turn a delivery batch's SQS body into a DeliveryJob (the deliver handler's first step)."""
    from push_core.pipeline.deliver import BatchRules, slices
    from push_core.pipeline.jobs import delivery_job_adapter

    sample = list(bodies[:20])
    best = math.inf
    with _small_heap():
        for _ in range(rounds):
            started = time.process_time()
            for body in sample:
                slices(delivery_job_adapter.validate_json(body).targets, BatchRules().slice_size)
            best = min(best, time.process_time() - started)
    return best / max(1, sum(len(b.encode()) for b in sample))


# --- time: the two queues at `concurrency` invocations ----------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """What template.yaml says about the functions and event sources the fan-out runs on."""

    topic_shards: int
    expand_batch_size: int
    expand_memory_mb: int
    deliver_memory_mb: int
    concurrency: int = CONCURRENCY

    @classmethod
    def from_template(cls) -> "Deployment":
        from dev.local_stack.template import load_sam_app

        app = load_sam_app()
        batch = {s.function: s.batch_size for s in app.sqs_sources}
        assert batch["DeliverFunction"] == 1, "the model assumes one delivery batch per invocation"
        return cls(
            topic_shards=int(app.template["Parameters"]["TopicShards"]["Default"]),
            expand_batch_size=batch["FanoutFunction"],
            expand_memory_mb=app.functions["FanoutFunction"].memory_mb,
            deliver_memory_mb=app.functions["DeliverFunction"].memory_mb,
        )


@dataclass(frozen=True)
class Timeline:
    wall_s: float
    expand_done_s: float
    peak_concurrency: int
    peak_expand: int
    peak_deliver: int
    expand_lambda_s: float
    deliver_lambda_s: float
    inline_deliveries: bool
    # Transactions touching the publication's item in the busiest second (its partition takes 1,000
    # write units a second; each transactional item costs two).
    publication_writes_peak_per_s: int

    def lambda_gb_seconds(self, deployment: Deployment) -> float:
        return (
            self.expand_lambda_s * deployment.expand_memory_mb + self.deliver_lambda_s * deployment.deliver_memory_mb
        ) / 1024

    @property
    def delivering_environments(self) -> int:
        """Environments that load credentials and the APNs token: one per concurrent deliverer."""
        return self.peak_deliver + (self.peak_expand if self.inline_deliveries else 0)


class Simulation:
    """Invocations of both functions over time, each started when its message arrives and a slot is free."""

    def __init__(
        self,
        plans: Sequence[Sequence[Page]],
        shape: Shape,
        deployment: Deployment,
        cpu: CpuProfile,
        timing: latency.Latency,
        *,
        from_idle: bool = False,
    ) -> None:
        self.plans, self.shape, self.deployment, self.cpu, self.timing = plans, shape, deployment, cpu, timing
        self.from_idle = from_idle
        # Python runs on one vCPU at most, and below 1,769 MB on that fraction of one.
        self.expand_cpu = max(1.0, timing.lambda_mb_per_vcpu / deployment.expand_memory_mb) * timing.cpu_slowdown
        self.deliver_cpu = max(1.0, timing.lambda_mb_per_vcpu / deployment.deliver_memory_mb) * timing.cpu_slowdown

    def delivery_s(self, targets: int, body_bytes: int, *, inline: bool) -> float:
        """A batch: lease, slices of SLICE_SIZE (all in flight, then recorded), finish."""
        t, cpu = self.timing, (self.expand_cpu if inline else self.deliver_cpu)
        spent = 0.0 if inline else t.lambda_invoke_overhead_s + self.cpu.deliver_parse_per_byte * body_bytes * cpu
        spent += 2 * t.dynamodb_item_op_s
        for start in range(0, targets, self.shape.slice_size):
            n = min(self.shape.slice_size, targets - start)
            spent += self.cpu.deliver_per_target * n * cpu + t.apns_slice_s + t.dynamodb_item_op_s
        return spent + t.dynamodb_item_op_s + t.dynamodb_transaction_s

    def expand_s(self, page: Page) -> tuple[float, float | None, list[tuple[float, int, int]], list[float]]:
        """One expand record: its duration, when its follow-up and its batches were sent, its PUB writes."""
        t, cpu = self.timing, self.expand_cpu
        spent = 2 * t.dynamodb_item_op_s + t.dynamodb_query_mb_s * page.page_bytes / MIB
        spent += self.cpu.expand_read_per_target * page.targets * cpu
        follow_up, writes, batches = None, [], []
        if page.has_next:
            spent += t.dynamodb_transaction_s
            writes.append(spent)
            spent += t.sqs_send_batch_s
            follow_up = spent
        spent += self.cpu.expand_rest_per_target * page.targets * cpu
        for _ in page.registers:
            spent += t.dynamodb_transaction_s
            writes.append(spent)
        if page.inline:
            spent += self.delivery_s(page.batch_targets[0], page.batch_bytes[0], inline=True)
            writes.append(spent)
        for call in page.sends:
            spent += t.sqs_send_batch_s
            batches += [(spent, page.batch_targets[i], page.batch_bytes[i]) for i in call]
        spent += t.dynamodb_transaction_s
        writes.append(spent)
        return spent, follow_up, batches, writes

    def run(self) -> Timeline:
        t = self.timing
        functions = ("expand", "deliver")
        queues: dict[str, list[tuple[float, int, Any]]] = {f: [] for f in functions}
        order = itertools.count()
        first_ready: dict[str, float] = {}

        def push(function: str, ready: float, payload: Any) -> None:
            heapq.heappush(queues[function], (ready, next(order), payload))
            first_ready[function] = min(ready, first_ready.get(function, math.inf))

        # The publish sends every shard's first job at once; a receive takes up to BatchSize of them,
        # and one invocation works through its records one after another.
        firsts = [(shard, 0) for shard in range(len(self.plans))]
        for i in range(0, len(firsts), self.deployment.expand_batch_size):
            push("expand", t.sqs_to_lambda_s, firsts[i : i + self.deployment.expand_batch_size])
        running: list[tuple[float, str]] = []
        active = dict.fromkeys(functions, 0)
        peak = dict.fromkeys(functions, 0)
        busy = dict.fromkeys(functions, 0.0)
        writes: list[float] = []
        now = wall = expand_done = 0.0
        peak_total = 0
        per_second = t.esm_added_per_minute / 60

        def may_start(function: str) -> bool:
            if sum(active.values()) >= self.deployment.concurrency:
                return False
            if not self.from_idle:
                return True
            ramp = t.esm_initial_batches + per_second * (now - first_ready[function])
            return active[function] < min(self.deployment.concurrency, math.floor(ramp))

        while any(queues.values()):
            while running and running[0][0] <= now:
                active[heapq.heappop(running)[1]] -= 1
            started = False
            for function in functions:
                queue = queues[function]
                while queue and queue[0][0] <= now and may_start(function):
                    payload = heapq.heappop(queue)[2]
                    cold = t.lambda_cold_start_s if self.from_idle and active[function] == peak[function] else 0.0
                    active[function] += 1
                    peak[function] = max(peak[function], active[function])
                    peak_total = max(peak_total, sum(active.values()))
                    begin = now + cold + t.lambda_invoke_overhead_s
                    if function == "expand":
                        for shard, index in payload:
                            spent, follow_up, batches, page_writes = self.expand_s(self.plans[shard][index])
                            if follow_up is not None:
                                push("expand", begin + follow_up + t.sqs_to_lambda_s, [(shard, index + 1)])
                            for sent, targets, body in batches:
                                push("deliver", begin + sent + t.sqs_to_lambda_s, (targets, body))
                            writes += [begin + w for w in page_writes]
                            begin += spent
                        end = begin
                        expand_done = max(expand_done, end)
                    else:
                        end = now + cold + self.delivery_s(*payload, inline=False)
                        writes.append(end)
                    heapq.heappush(running, (end, function))
                    busy[function] += end - now
                    wall = max(wall, end)
                    started = True
            if started:
                continue
            upcoming = [q[0][0] for q in queues.values() if q and q[0][0] > now]
            upcoming += [running[0][0]] if running else []
            if self.from_idle:  # the next step of an event source's ramp
                upcoming += [
                    first_ready[f] + (active[f] + 1 - t.esm_initial_batches) / per_second
                    for f in functions
                    if queues[f] and queues[f][0][0] <= now
                ]
            now = min(u for u in upcoming if u > now)
        return Timeline(
            wall_s=wall,
            expand_done_s=expand_done,
            peak_concurrency=peak_total,
            peak_expand=peak["expand"],
            peak_deliver=peak["deliver"],
            expand_lambda_s=busy["expand"],
            deliver_lambda_s=busy["deliver"],
            inline_deliveries=any(page.inline for plan in self.plans for page in plan),
            publication_writes_peak_per_s=_busiest_second(writes),
        )


def _busiest_second(times: list[float]) -> int:
    ordered, best, low = sorted(times), 0, 0
    for high, moment in enumerate(ordered):
        while ordered[low] <= moment - 1.0:
            low += 1
        best = max(best, high - low + 1)
    return best


# --- the figures -----------------------------------------------------------------------------------

# name: (timing column, from idle). "from_idle": every environment starts cold and each event source
# ramps up as AWS documents; the others assume warm environments and 1,000 concurrent invocations.
SCENARIOS: dict[str, tuple[str, bool]] = {
    "typical": ("typical", False),
    "pessimistic": ("pessimistic", False),
    "from_idle": ("typical", True),
}


def evaluate(
    population: Population,
    audience: int,
    shards: int,
    shape: Shape,
    deployment: Deployment,
    cpu: CpuProfile,
    message: Message,
) -> dict[str, Any]:
    """Calls, cost and modeled wall time of one publication to the first `audience` devices."""
    plans = population.plan(audience, shards, shape, message)
    counted = count(plans, shape, message, AWS)
    deployed = replace(deployment, topic_shards=shards)
    timelines = {
        name: Simulation(plans, shape, deployed, cpu, latency.column(column), from_idle=idle).run()
        for name, (column, idle) in SCENARIOS.items()
    }
    per_million = 1_000_000 / audience

    def priced(timeline: Timeline) -> tuple[Tally, dict[str, float]]:
        tally = replace(counted)
        add_containers(tally, timeline.delivering_environments, AWS, token_minted=True)
        return tally, fanout_cost.dollars(tally, timeline.lambda_gb_seconds(deployed), timeline.wall_s)

    tally, cost = priced(timelines["typical"])
    _, cold_cost = priced(timelines["from_idle"])
    batches = [b for plan in plans for page in plan for b in page.batch_targets]
    return {
        "subscribers": audience,
        "topic_shards": shards,
        "expand_jobs": tally.expand_jobs,
        "delivery_batches": tally.delivery_batches,
        "inline_batches": tally.inline_batches,
        "pages_per_shard_max": max(len(plan) for plan in plans),
        "targets_per_batch_max": max(batches),
        "modeled_seconds": {name: round(tl.wall_s, 2) for name, tl in timelines.items()},
        "expand_done_seconds": {name: round(tl.expand_done_s, 2) for name, tl in timelines.items()},
        "peak_concurrency": {name: tl.peak_concurrency for name, tl in timelines.items()},
        "publication_writes_peak_per_s": timelines["typical"].publication_writes_peak_per_s,
        "lambda_gb_seconds": round(timelines["typical"].lambda_gb_seconds(deployed), 2),
        "calls": tally.billed(),
        "calls_per_million": {k: round(v * per_million, 1) for k, v in tally.billed().items()},
        "cost_breakdown_per_million_usd": {k: round(v * per_million, 6) for k, v in cost.items()},
        "cost_per_million_usd": round(sum(cost.values()) * per_million, 5),
        "cost_per_million_from_idle_usd": round(sum(cold_cost.values()) * per_million, 5),
    }


def apns_cpu_per_delivery(results: Mapping[str, Any]) -> float:
    """pushlane's APNs CPU per notification from a `make bench` run (results.json): the shared workload's, the
    one a fan-out of one publication to healthy tokens has."""
    try:
        return 1 / float(results["details"]["apns_vs_aioapns"]["workloads"]["shared"]["pushlane"]["per_cpu_s"])
    except KeyError:
        raise SystemExit(
            "bench/results.json has no APNs figure: run `python -m bench --only apns_vs_aioapns`"
        ) from None


def run(
    *,
    cpu_per_delivery: float,
    sizes: Sequence[int] = SIZES,
    shard_options: Sequence[int] = SHARD_OPTIONS,
    cross_check: Mapping[str, Any] | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The whole scale model; returns the keys it adds to bench/results.json."""
    started = time.perf_counter()
    deployment = Deployment.from_template()
    options = sorted({*shard_options, deployment.topic_shards})
    biggest = max(sizes)
    say(f"scale model: {biggest:,} synthetic APNs subscribers ...")
    population = Population.synthesize(biggest)
    message = message_for(population)
    shape = Shape.defaults()
    # One whole shard chain of the largest publication through the real expand code: CPU, and a check
    # that bench/calls.py counts what that code calls.
    chain = run_real_chain(population, biggest, deployment.topic_shards, 0, message)
    check = check_chain(population, biggest, deployment.topic_shards, 0, chain)
    if not check["match"]:
        raise AssertionError(f"bench/calls.py disagrees with the real expand code: {check}")
    cpu = CpuProfile(
        expand_read_per_target=chain["read_cpu_per_target"],
        expand_rest_per_target=chain["rest_cpu_per_target"],
        deliver_parse_per_byte=deliver_parse_cpu(chain["delivery_bodies"]),
        deliver_per_target=cpu_per_delivery,
        measured_pages=chain["pages"],
        measured_targets=chain["targets"],
    )
    runs = [evaluate(population, n, s, shape, deployment, cpu, message) for s in options for n in sorted(sizes)]
    headline = next(r for r in runs if r["subscribers"] == biggest and r["topic_shards"] == deployment.topic_shards)
    what_if = _what_ifs(population, biggest, shape, deployment, cpu, message, headline)
    meets = {
        str(r["topic_shards"]): {
            "typical_s": r["modeled_seconds"]["typical"],
            "pessimistic_s": r["modeled_seconds"]["pessimistic"],
            "from_idle_s": r["modeled_seconds"]["from_idle"],
            "meets_60_s": r["modeled_seconds"]["typical"] <= TARGET_S,
            "meets_60_s_pessimistic": r["modeled_seconds"]["pessimistic"] <= TARGET_S,
        }
        for r in runs
        if r["subscribers"] == biggest
    }
    scale = {
        "subscribers": sorted(sizes),
        "topic_shards_options": options,
        "default_topic_shards": deployment.topic_shards,
        "concurrency": deployment.concurrency,
        "deployment": asdict(deployment),
        "shape": asdict(shape),
        "prices_date": prices.PRICES_DATE,
        "latency_table": "bench/latency.py",
        "assumptions": latency.as_rows(),
        "cpu_bench_machine": asdict(cpu),
        "real_code_check": check,
        "runs": runs,
        "at_1m": meets,
        "what_if": what_if,
        "model_seconds": round(time.perf_counter() - started, 1),
    }
    cost = {
        "prices_date": prices.PRICES_DATE,
        "design": "two-stage: expand jobs (FanoutQueue, BatchSize 10) pack pages into batches near the SQS "
        "message limit; deliver (DeliveryQueue, BatchSize 1) sends them in slices of 500 under a lease",
        "subscribers": biggest,
        "topic_shards": deployment.topic_shards,
        "deliveries": biggest,
        "deliver_memory_mb": deployment.deliver_memory_mb,
        "calls_per_million": headline["calls_per_million"],
        "cost_breakdown_per_million_usd": headline["cost_breakdown_per_million_usd"],
        "cost_per_million_usd": headline["cost_per_million_usd"],
        "cost_per_million_from_idle_usd": headline["cost_per_million_from_idle_usd"],
        "sns_mobile_push_per_million_usd": prices.SNS_MOBILE_PUSH_PER_DELIVERY * 1_000_000,
        "timing": "typical column of bench/latency.py, warm environments",
        **({"cross_check": dict(cross_check)} if cross_check else {}),
    }
    return {
        "scale_model": scale,
        "fanout_1m_modeled_seconds": headline["modeled_seconds"]["typical"],
        "cost_model": cost,
        "cost_per_million_usd": headline["cost_per_million_usd"],
    }


def _what_ifs(
    population: Population,
    audience: int,
    shape: Shape,
    deployment: Deployment,
    cpu: CpuProfile,
    message: Message,
    headline: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """The largest publication again with one setting changed: levers the figures point at."""
    # A 1 MB page holds ~3.1 full batches: a Limit of whole batches drops the small remainder batch.
    per_page = max(
        p.targets for plan in population.plan(audience, deployment.topic_shards, shape, message) for p in plan
    )
    aligned = replace(
        shape, page_limit=per_page // headline["targets_per_batch_max"] * headline["targets_per_batch_max"]
    )
    # A delivery batch mostly waits on APNs: half the memory halves the GB-seconds, its CPU share takes longer.
    smaller = replace(deployment, deliver_memory_mb=deployment.deliver_memory_mb // 2)
    variants = (
        (f"EXPAND_PAGE_SIZE={aligned.page_limit} (whole batches per page)", aligned, deployment, None),
        (f"DeliverFunction MemorySize {smaller.deliver_memory_mb}", shape, smaller, None),
        ("both of the above", aligned, smaller, None),
        ("FanoutFunction BatchSize 1, TopicShards 64", shape, replace(deployment, expand_batch_size=1), 64),
    )
    changed = []
    for change, shape_, deployment_, shards in variants:
        r = evaluate(population, audience, shards or deployment.topic_shards, shape_, deployment_, cpu, message)
        changed.append(
            {
                "change": change,
                "topic_shards": r["topic_shards"],
                "delivery_batches": r["delivery_batches"],
                "modeled_seconds": r["modeled_seconds"],
                "cost_per_million_usd": r["cost_per_million_usd"],
            }
        )
    return changed


def report(results: Mapping[str, Any], say: Callable[[str], None] = print) -> None:
    """Print the scale model and the cost per million."""
    scale, cost = results["scale_model"], results["cost_model"]
    check, cpu = scale["real_code_check"], scale["cpu_bench_machine"]
    say(
        f"\nReal expand code, shard {check['shard']} of {check['subscribers']:,} subscribers / "
        f"{check['topic_shards']} shards: {check['pages']} pages, {check['targets']:,} targets, "
        f"{check['delivery_batches']} batches, calls {check['calls']}: "
        f"{'same as bench/calls.py counts' if check['match'] else 'DIFFERENT from bench/calls.py'}"
    )
    lambda_share = latency.column("typical").lambda_mb_per_vcpu / scale["deployment"]["deliver_memory_mb"]
    say(
        f"CPU on the bench machine: reading a page {cpu['expand_read_per_target'] * 1e6:.1f} µs/target, "
        f"packing and sending {cpu['expand_rest_per_target'] * 1e6:.1f} µs/target, batch body "
        f"{cpu['deliver_parse_per_byte'] * 1e9:.1f} ns/byte, APNs delivery {cpu['deliver_per_target'] * 1e6:.1f} "
        f"µs/target (x{lambda_share:.2f} on Lambda)"
    )
    say(f"\nModeled on AWS, {scale['concurrency']:,} concurrent invocations (timings: {scale['latency_table']})")
    say(
        f"{'shards':>6} {'subscribers':>11} {'pages':>6} {'batches':>7} {'typical s':>9} {'pessim. s':>9} "
        f"{'idle s':>7} {'peak':>5} {'DDB req/M':>9} {'SQS req/M':>9} {'Lambda/M':>8} {'$ per M':>8} {'PUB w/s':>7}"
    )
    for r in scale["runs"]:
        m, per = r["modeled_seconds"], r["calls_per_million"]
        say(
            f"{r['topic_shards']:>6} {r['subscribers']:>11,} {r['expand_jobs']:>6} {r['delivery_batches']:>7} "
            f"{m['typical']:>9.1f} {m['pessimistic']:>9.1f} {m['from_idle']:>7.1f} "
            f"{r['peak_concurrency']['typical']:>5} {per['dynamodb_requests']:>9,.0f} "
            f"{per['sqs_requests']:>9,.0f} {per['lambda_invocations']:>8,.0f} {r['cost_per_million_usd']:>8.4f} "
            f"{r['publication_writes_peak_per_s']:>7}"
        )
    say("\n1M subscribers, target <= 60 s:")
    for shards, figures in scale["at_1m"].items():
        verdict = "meets" if figures["meets_60_s"] else "misses"
        also = "also pessimistic" if figures["meets_60_s_pessimistic"] else "not pessimistic"
        say(
            f"  TopicShards {shards:>2}: {figures['typical_s']:5.1f} s typical, {figures['pessimistic_s']:5.1f} s "
            f"pessimistic, {figures['from_idle_s']:5.1f} s from idle: {verdict} ({also})"
        )
    say(f"What if, at {max(scale['subscribers']):,} subscribers:")
    for variant in scale["what_if"]:
        seconds = variant["modeled_seconds"]
        say(
            f"  {variant['change']}: {variant['delivery_batches']} batches, {seconds['typical']:.1f} s typical "
            f"({seconds['pessimistic']:.1f} s pessimistic), ${variant['cost_per_million_usd']:.4f} per million"
        )
    say(f"\nAWS cost per million APNs deliveries ({cost['subscribers']:,} subscribers, {cost['prices_date']} prices):")
    for item, dollars in cost["cost_breakdown_per_million_usd"].items():
        say(f"  {item:18} ${dollars:.5f}")
    say(
        f"  {'total':18} ${cost['cost_per_million_usd']:.5f}  (every environment cold: "
        f"${cost['cost_per_million_from_idle_usd']:.5f}; SNS mobile push "
        f"${cost['sns_mobile_push_per_million_usd']:.2f})"
    )
    for call, number in cost["calls_per_million"].items():
        say(f"  {call:26} {number:12,.0f} per million deliveries")
    if "cross_check" in cost:
        cross = cost["cross_check"]
        say(
            f"  moto cross-check, {cross['devices']:,} devices through the real handlers: metered {cross['metered']} "
            f"vs counted {cross['analytic']}: {'match' if cross['match'] else 'MISMATCH'}"
        )


def plot(results: Mapping[str, Any], path: Path = PLOT) -> None:
    """Wall time and calls against subscribers (log x): bench/scale.png."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = results["scale_model"]
    figure, (times, calls) = plt.subplots(1, 2, figsize=(12, 4.8))
    for shards in scale["topic_shards_options"]:
        runs = [r for r in scale["runs"] if r["topic_shards"] == shards]
        x = [r["subscribers"] for r in runs]
        (line,) = times.plot(
            x, [r["modeled_seconds"]["typical"] for r in runs], marker="o", label=f"TopicShards {shards}"
        )
        times.plot(x, [r["modeled_seconds"]["pessimistic"] for r in runs], ls="--", color=line.get_color())
    times.axhline(TARGET_S, color="grey", lw=1, ls=":")
    times.annotate("60 s target", (scale["subscribers"][0], TARGET_S), va="bottom", color="grey")
    times.set(xscale="log", yscale="log", xlabel="subscribers", ylabel="modeled wall time (s)")
    ticks = [1, 2, 5, 10, 20, 30, 60]
    times.set_yticks(ticks, labels=[str(t) for t in ticks])
    times.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    times.set_title("Fan-out wall time, 1,000 concurrent (solid typical, dashed pessimistic)", fontsize=10)
    times.legend()
    runs = [r for r in scale["runs"] if r["topic_shards"] == scale["default_topic_shards"]]
    x = [r["subscribers"] for r in runs]
    for name, label in (
        ("dynamodb_requests", "DynamoDB requests"),
        ("dynamodb_write_units", "DynamoDB write units"),
        ("sqs_requests", "SQS requests (billed)"),
        ("lambda_invocations", "Lambda invocations"),
    ):
        calls.plot(x, [r["calls"][name] for r in runs], marker="o", label=label)
    calls.set(xscale="log", yscale="log", xlabel="subscribers", ylabel="per publication")
    cost = results["cost_model"]["cost_per_million_usd"]
    calls.set_title(
        f"AWS calls, TopicShards {scale['default_topic_shards']} (${cost:.4f} per million at 1M)", fontsize=10
    )
    calls.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_document() -> None:
    """docs/PERFORMANCE.md's scale figures, from bench/results.json as it now stands."""
    SCALE_FIGURES.write(scale_document.figures(json.loads(RESULTS.read_text())))


def moto_cross_check(devices: int) -> dict[str, Any]:
    """The default deployment's fan-out of `devices` through the real handlers on moto, beside the count."""
    from dev.emulators.suite import EmulatorSuite

    suite = EmulatorSuite().start()
    try:
        return fanout_cost.cross_check(fanout_cost.measure(suite.describe(), devices))
    finally:
        suite.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_model", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--shards", type=int, nargs="+", default=list(SHARD_OPTIONS))
    parser.add_argument(
        "--cross-check", type=int, default=2000, metavar="DEVICES",
        help="devices for the moto run that checks the call counting (0: skip)",
    )  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print only; leave results.json and scale.png")
    args = parser.parse_args(argv)
    if not args.no_write and 1_000_000 not in args.sizes:
        parser.error("results.json keeps the 1M figures: add 1000000 to --sizes, or pass --no-write")
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    cross = moto_cross_check(args.cross_check) if args.cross_check else None
    results = run(
        cpu_per_delivery=apns_cpu_per_delivery(existing), sizes=args.sizes, shard_options=args.shards, cross_check=cross
    )
    report(results)
    if not args.no_write:
        merge_results(results)
        plot(results)
        write_document()
        print(f"wrote {RESULTS.relative_to(REPO)}, {PLOT.relative_to(REPO)} and docs/PERFORMANCE.md's scale figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
