"""The scale model's counting and timing: held against DynamoDB's rules, pushlane's real code, and moto."""

from dataclasses import replace

import pytest

from bench import calls, fanout_cost, latency, scale_model
from bench.calls import AWS, MOTO, Message, Shape, count, cut, item_bytes, plan_shard
from push_core import assembly
from push_core.models import MessageContent, Platform, Target
from push_core.pipeline import expand
from push_core.pipeline.jobs import ExpandJob, _request_groups

CONTENT = MessageContent(title="Sale", body="Today only")


@pytest.fixture(scope="module")
def population() -> scale_model.Population:
    return scale_model.Population.synthesize(12_000)


def test_item_sizes_are_names_plus_values_as_dynamodb_counts_them():
    assert item_bytes({"pk": "APP#1", "sk": "DEV#2"}) == 2 + 5 + 2 + 5
    assert calls.value_bytes(12_345) == 4  # three bytes for five digits, one more
    assert calls.value_bytes(True) == 1
    assert calls.value_bytes({"a": "xy"}) == 3 + 1 + 2 + 1


def test_pages_stop_at_the_limit_or_one_megabyte_and_dynamodb_hands_out_a_key_at_the_limit():
    assert [(s, e, n) for s, e, _, n in cut([100] * 5, 2, AWS)] == [(0, 2, True), (2, 4, True), (4, 5, False)]
    # Exactly at the limit: DynamoDB still returns LastEvaluatedKey (an empty page follows); moto looks ahead.
    assert [n for *_, n in cut([100] * 4, 2, AWS)] == [True, True, False]
    assert [n for *_, n in cut([100] * 4, 2, MOTO)] == [True, False]
    by_size = cut([400_000] * 3, 10_000, AWS)
    assert [(s, e) for s, e, *_ in by_size] == [(0, 2), (2, 3)]


def test_planned_batches_and_requests_are_those_pushlane_builds():
    web = {"p256dh": "B" * 87, "auth": "A" * 22}
    targets = [
        Target(device_id=f"{i:026d}", platform=Platform.WEBPUSH if i % 3 else Platform.APNS, token="t" * 64, push=web)
        for i in range(700)
    ]
    job = ExpandJob(app_id="A" * 26, publication_id="P" * 26, created_at=1_800_000_000, content=CONTENT, topic="*")
    message = Message(job.app_id, job.publication_id, job.created_at, CONTENT, "*")
    shape = Shape(page_limit=10_000, message_bytes=16_384, inline_max=0, slice_size=500)
    sizes = [len(t.model_dump_json(exclude_none=True)) + 1 for t in targets]
    (page,) = plan_shard(0, [200] * len(targets), sizes, shape, message, AWS)

    real = [b.model_dump_json(exclude_none=True) for b in expand.delivery_batches(job, targets, shape.message_bytes)]
    assert page.batch_targets == tuple(len(b.targets) for b in expand.delivery_batches(job, targets, 16_384))
    assert page.batch_bytes == tuple(len(body.encode()) for body in real)
    assert [list(call) for call in page.sends] == [
        [real.index(body) for body in group] for group in _request_groups(real, shape.message_bytes)
    ]


@pytest.mark.parametrize(
    ("shards", "limit"),
    [
        (2, 10_000),  # pages end at 1 MB
        (4, 1_000),  # pages end at Limit
        (4, 0),  # Limit = the shard's size: DynamoDB still hands out a key, and an empty page follows
    ],
)
def test_counted_calls_are_the_calls_the_real_expand_code_makes(
    population: scale_model.Population, shards: int, limit: int
):
    audience = 12_000
    first = len(population.members(audience, shards)[0])
    message = scale_model.message_for(population)
    environment = {"EXPAND_PAGE_SIZE": str(limit or first)}
    chain = scale_model.run_real_chain(population, audience, shards, 0, message, environment=environment)
    check = scale_model.check_chain(population, audience, shards, 0, chain)
    assert check["match"], check
    assert check["targets"] == first
    if not limit:
        assert check["pages"] == 2


def test_simulation_keeps_within_the_concurrency_and_the_chain_sets_the_pace(population: scale_model.Population):
    message = scale_model.message_for(population)
    shape = replace(Shape.defaults(), page_limit=500)
    plans = population.plan(12_000, 2, shape, message)
    cpu = scale_model.CpuProfile(20e-6, 5e-6, 40e-9, 21e-6, 1, 1)
    deployment = scale_model.Deployment(
        topic_shards=2, expand_batch_size=10, expand_memory_mb=1024, deliver_memory_mb=1024
    )
    timing = latency.column("typical")

    warm = scale_model.Simulation(plans, shape, deployment, cpu, timing).run()
    narrow = scale_model.Simulation(plans, shape, replace(deployment, concurrency=2), cpu, timing).run()
    cold = scale_model.Simulation(plans, shape, deployment, cpu, timing, from_idle=True).run()
    slow = scale_model.Simulation(plans, shape, deployment, cpu, latency.column("pessimistic")).run()

    links = max(len(plan) for plan in plans)
    assert warm.expand_done_s >= links * timing.sqs_to_lambda_s
    assert warm.wall_s > warm.expand_done_s
    assert narrow.peak_concurrency == 2 < warm.peak_concurrency
    assert narrow.wall_s > warm.wall_s
    assert cold.wall_s > warm.wall_s
    assert slow.wall_s > warm.wall_s
    tally = count(plans, shape, message, AWS)
    assert tally.deliveries == 12_000 == sum(p.targets for plan in plans for p in plan)


def test_metered_usage_of_a_real_run_on_moto_is_what_the_model_counts(monkeypatch: pytest.MonkeyPatch):
    """The handlers on moto across every path: chained pages, pages of several batches, several slices, inline."""
    from dev.emulators.suite import EmulatorSuite

    suite = EmulatorSuite().start()
    try:
        with assembly.replaced(slice_size=40):
            measured = fanout_cost.measure(
                suite.describe(),
                320,
                topic_shards=2,
                environment={"EXPAND_PAGE_SIZE": "120", "JOB_MESSAGE_BYTES": "16384", "INLINE_DELIVERY_MAX": "60"},
                few_every=8,
            )
    finally:
        suite.stop()
    check = fanout_cost.cross_check(measured)
    assert check["metered"] == pytest.approx(check["analytic"], abs=0.01), check
    assert all(p["passed"] == p["total"] > 0 for p in check["publications"].values())
    assert check["max_pages_per_shard"] >= 2
    assert check["max_batches_per_page"] >= 2
    assert check["max_slices_per_batch"] >= 2
    assert check["inline_batches"] >= 1
