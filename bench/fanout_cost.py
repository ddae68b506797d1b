"""What a fan-out costs on AWS: a real run on moto to check the call counting, and dollars from the calls.

``measure`` runs the real publish, expand and deliver handlers on moto (the stack built from
template.yaml) against the APNs emulator and reads back each publication's metered usage and the
subscription items it went through. ``cross_check`` counts the same publications with bench/calls.py
under moto's capacity rules: the counting is right when the two agree. ``dollars`` prices the calls
of the two-stage design, as bench/scale_model.py counts them under DynamoDB's billing rules, together
with the Lambda time its timeline models.
"""

import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from bench import prices
from bench.calls import MOTO, Message, Shape, Tally, count, item_bytes, plan_shard

# Every invocation writes Lambda's START/END/REPORT lines and one Powertools metrics blob; an expand
# job adds its "expanded a page" line. About 1.5 KB each (an assumption, not measured).
LOG_BYTES_PER_INVOCATION = 1_500
# X-Ray's default sampling rule: the first request each second, then 5 % of the rest.
XRAY_RESERVOIR_PER_S = 1.0
XRAY_FIXED_RATE = 0.05
# The moto run publishes to "all" (every device) and, when asked, to "few" (every few_every-th device).
TOPICS = ("all", "few")


@contextmanager
def _isolated() -> Iterator[None]:
    from dev.local_stack.runtime import forget_container_state

    saved = dict(os.environ)
    forget_container_state()
    try:
        yield
    finally:
        forget_container_state()
        os.environ.clear()
        os.environ.update(saved)


def measure(
    emulators: Mapping[str, Any],
    devices: int,
    *,
    topic_shards: int | None = None,
    environment: Mapping[str, str] | None = None,
    few_every: int = 0,
) -> dict[str, Any]:
    """Publish to `devices` APNs devices through the real handlers on moto; return usage and audiences.

    topic_shards overrides the template's TopicShards, environment the functions' settings
    (EXPAND_PAGE_SIZE, ...); with few_every, every few_every-th device is also on topic "few", which is
    published too, so that small shards take the inline path.
    """
    from moto import mock_aws
    from werkzeug.test import Client

    from dev.local_stack.emulated_providers import provider_parameters
    from dev.local_stack.gateway import Gateway
    from dev.local_stack.launcher import LOCAL_ENV_OVERRIDES, use_fake_aws_environment
    from dev.local_stack.poller import drain, event_source_pollers
    from dev.local_stack.runtime import load_functions
    from dev.local_stack.stack import deploy
    from dev.local_stack.template import load_sam_app
    from push_core.auth import new_admin_key
    from push_core.config import get_settings
    from push_core.models import MessageContent

    with _isolated():
        use_fake_aws_environment()
        admin = new_admin_key()
        parameters = {
            "AdminKeySha256": admin.sha256,
            **provider_parameters(emulators),
            **({"TopicShards": str(topic_shards)} if topic_shards else {}),
        }
        with mock_aws():
            app = load_sam_app(parameters=parameters)
            stack = deploy(app, parameters)
            functions = load_functions(app, stack, {**LOCAL_ENV_OVERRIDES, **(environment or {})})
            pollers = event_source_pollers(app, stack, functions)
            client = Client(Gateway(app.routes, functions))

            def call(method: str, path: str, key: str, body: Any) -> Any:
                response = client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {key}"})
                assert response.status_code < 300, response.get_data(as_text=True)
                return json.loads(response.get_data(as_text=True))

            created = call("POST", "/v1/apps", admin.token, {"name": "cost"})
            app_id, secret, public = created["app"]["id"], created["secret_key"]["key"], created["public_key"]["key"]
            key = emulators["apns"]["key"]
            credentials = {
                "platform": "apns",
                "topic": key["topics"][0],
                "team_id": key["team_id"],
                "key_id": key["key_id"],
                "private_key": key["private_key_pem"],
            }
            call("PUT", f"/v1/apps/{app_id}/credentials", secret, credentials)
            # A few devices through the API, the rest written straight to the table in batches: moto's
            # transactions copy the whole table, and registration cost is not part of the cost per delivery.
            for i in range(min(devices, 20)):
                device = call("POST", "/v1/devices", public, {"platform": "apns", "token": f"{i:064x}"})
                call("PUT", f"/v1/devices/{device['device']['id']}/topics/all", secret, None)
            shards = int(stack.function_environments["FanoutFunction"]["TOPIC_SHARDS"])
            _seed_devices(app_id, range(20, devices), shards, few_every)
            content = {"title": "Sale", "body": "Today only"}
            topics = TOPICS if few_every else TOPICS[:1]
            published = {t: call("POST", "/v1/messages", secret, {"topics": [t], **content}) for t in topics}
            started = time.perf_counter()
            drain(pollers, timeout_s=600)
            wall = time.perf_counter() - started
            reports = {t: call("GET", f"/v1/messages/{m['id']}", secret, None) for t, m in published.items()}
            shape = Shape.of(get_settings())
            audiences = {t: _audience(app_id, t, shards) for t in topics}
    return {
        "devices": devices,
        "topic_shards": shards,
        "app_id": app_id,
        "content": MessageContent.model_validate(content),
        "reports": reports,
        "audiences": audiences,
        "shape": shape,
        "drain_wall_s": wall,
    }


def _seed_devices(app_id: str, numbers: range, shards: int, few_every: int) -> None:
    """Subscribed APNs devices written as the registry would store them, in batch writes."""
    from push_core.identifiers import new_sortable_id
    from push_core.models import DeviceRecord, Platform
    from push_core.storage.devices import subscription_item
    from push_core.storage.keys import device_pk
    from push_core.storage.table import dynamodb_table, reset_clients

    reset_clients()
    with dynamodb_table(os.environ["TABLE_NAME"]).batch_writer() as batch:
        for i in numbers:
            device = DeviceRecord(
                app_id=app_id,
                device_id=new_sortable_id(),
                platform=Platform.APNS,
                token=f"{i:064x}",
                created_at=0,
                registered_at=0,
                key_id="bench",
            )
            batch.put_item(
                Item={"pk": device_pk(app_id, device.device_id), "sk": "DEV", **device.model_dump(exclude_none=True)}
            )
            for topic in TOPICS if few_every and i % few_every == 0 else TOPICS[:1]:
                batch.put_item(Item=subscription_item(device, topic, shards))
                batch.put_item(Item={"pk": device_pk(app_id, device.device_id), "sk": f"SUB#{topic}", "created_at": 0})


def _audience(app_id: str, topic: str, shards: int) -> list[tuple[list[int], list[int]]]:
    """Each shard's subscriptions as the fan-out met them: item bytes and packed target bytes, in order."""
    from boto3.dynamodb.conditions import Key

    from push_core.storage.keys import topic_pk
    from push_core.storage.subscriptions import subscriber_page
    from push_core.storage.table import dynamodb_table

    audience = []
    for shard in range(shards):
        items = dynamodb_table().query(KeyConditionExpression=Key("pk").eq(topic_pk(app_id, topic, shard)))["Items"]
        targets = subscriber_page(app_id, topic, shard, None, 100_000).targets  # the fan-out's own reading
        assert [t.device_id for t in targets] == [str(i["device_id"]) for i in items]
        audience.append(
            ([item_bytes(i) for i in items], [len(t.model_dump_json(exclude_none=True)) + 1 for t in targets])
        )
    return audience


def cross_check(measured: Mapping[str, Any]) -> dict[str, Any]:
    """The metered usage of the moto run beside the same publications counted by bench/calls.py."""
    shape: Shape = measured["shape"]
    reports: Mapping[str, Any] = measured["reports"]
    tallies: dict[str, Tally] = {}
    slices = chain = per_page = 0
    for topic, report in reports.items():
        message = Message(measured["app_id"], report["id"], report["created_at"], measured["content"], topic)
        plans = [
            plan_shard(shard, items, targets, shape, message, MOTO)
            for shard, (items, targets) in enumerate(measured["audiences"][topic])
        ]
        tallies[topic] = count(plans, shape, message, MOTO)
        slices = max([slices, *(-(-b // shape.slice_size) for plan in plans for p in plan for b in p.batch_targets)])
        chain = max([chain, *(len(plan) for plan in plans)])
        per_page = max([per_page, *(len(p.batch_targets) for plan in plans for p in plan)])
    names = ("dynamodb_requests", "dynamodb_read_units", "dynamodb_write_units", "sqs_requests", "fanout_jobs")
    metered = {n: float(sum(r["usage"][n] for r in reports.values())) for n in names}
    analytic = {n: float(sum(t.metered()[n] for t in tallies.values())) for n in names}
    # One process plays every container: the APNs token is read, minted and stored once in the run.
    analytic["dynamodb_requests"] += 2
    analytic["dynamodb_read_units"] += MOTO.strong_read(0)
    analytic["dynamodb_write_units"] += MOTO.put(0)
    pages = sum(t.expand_jobs for t in tallies.values())
    batches = sum(t.delivery_batches for t in tallies.values())
    return {
        "devices": measured["devices"],
        "publications": {t: {"total": r["total"], "passed": r["passed"]} for t, r in reports.items()},
        "shape": asdict(shape),
        "expand_jobs": pages,
        "delivery_batches": batches,
        "inline_batches": sum(t.inline_batches for t in tallies.values()),
        "max_pages_per_shard": chain,
        "max_batches_per_page": per_page,
        "max_slices_per_batch": slices,
        "metered": metered,
        "analytic": analytic,
        "match": all(abs(metered[n] - analytic[n]) < 0.01 for n in names),
    }


def dollars(tally: Tally, lambda_gb_seconds: float, wall_s: float) -> dict[str, float]:
    """The AWS bill of one publication's fan-out, by service."""
    billed = tally.billed()
    invocations = billed["lambda_invocations"]
    traces = min(invocations, XRAY_RESERVOIR_PER_S * wall_s + XRAY_FIXED_RATE * invocations)
    return {
        "lambda_requests": invocations * prices.LAMBDA_PER_REQUEST,
        "lambda_duration": lambda_gb_seconds * prices.LAMBDA_PER_GB_SECOND_ARM64,
        "sqs": billed["sqs_requests"] * prices.SQS_PER_REQUEST,
        "dynamodb_reads": billed["dynamodb_read_units"] * prices.DYNAMODB_PER_READ_UNIT,
        "dynamodb_writes": billed["dynamodb_write_units"] * prices.DYNAMODB_PER_WRITE_UNIT,
        "secrets_manager": billed["secrets_manager_requests"] * prices.SECRETS_MANAGER_PER_REQUEST,
        "cloudwatch_logs": invocations * LOG_BYTES_PER_INVOCATION / 1e9 * prices.CLOUDWATCH_LOGS_PER_GB,
        "xray_traces": traces * prices.XRAY_PER_TRACE,
    }
