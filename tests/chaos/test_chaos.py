"""The chaos test: 10 apps x 1,000 devices x 10 publications through faulty providers, kills and duplicates.

What runs for real: the template's stack, its tables in DynamoDB Local (AWS's own engine, so its limits and
validation hold) and everything else in moto in-process (see moto_speedups for what makes moto fast and
atomic), the publish, fan-out, delivery and feedback handlers with their Powertools batch processing,
pushlane's providers over HTTP/2 + TLS, and the APNs, FCM and Web Push emulators in their own process
(their own core), keyed faults on. The emulators' ledgers are the truth every count is checked against.
CHAOS_DYNAMODB=moto keeps DynamoDB in moto too; the default, auto, does so only where DynamoDB Local
cannot run (no Java or no jar: `make` installs it), and the summary says which ran.

Seeded: CHAOS_SEED=<seed> .venv/bin/python -m pytest tests/chaos -s (CHAOS_WORKERS=1 runs the Lambda
invocations one at a time). Every decision is drawn from the seed by what it is about, not by when it
is made: a request's fault by (request, occurrence), a kill or duplicate by (message body, copy, receive
count). So a seed gives the same decision for the same event in every run. What stays timing-dependent
is which events happen: a timeout or a connection reset fails whatever else was in flight at that
moment, which changes which targets a retry batch holds (and so its body). A failure's seed therefore
reproduces the same faults at the same rates and, for most events, the same decisions; the printed
ledger totals and the logged windows of the failing run say what happened.
"""

import json
import logging
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws
from werkzeug.test import Client

from dev.local_stack import dynamodb_local
from dev.local_stack.emulated_providers import provider_parameters
from dev.local_stack.gateway import Gateway
from dev.local_stack.launcher import LOCAL_ENV_OVERRIDES, use_fake_aws_environment
from dev.local_stack.runtime import forget_container_state, load_functions
from dev.local_stack.stack import deploy
from dev.local_stack.template import load_sam_app
from push_core import assembly
from push_core.auth import new_admin_key
from push_core.config import get_settings
from push_core.credentials import load as load_credentials
from push_core.identifiers import new_sortable_id
from push_core.models import ALL_DEVICES_TOPIC, DeviceRecord, InboxMessage, Platform, Target
from push_core.observability import logger as push_logger
from push_core.pipeline import jobs
from push_core.pipeline.deliver import POSSIBLE_DUPLICATES_LOG
from push_core.pipeline.send import DeliveryReport, DeliveryService
from push_core.providers.pool import ProviderPool
from push_core.storage.devices import subscription_item
from push_core.storage.keys import device_pk, token_pk
from push_core.storage.provider_tokens import DynamoTokenStore
from push_core.storage.table import dynamodb_client, dynamodb_table
from tests.chaos.driver import ChaosDriver, VirtualClock, execution_environment
from tests.chaos.moto_speedups import fast_atomic_moto

REPO = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("CHAOS_SEED", "20261123"))
APPS = int(os.environ.get("CHAOS_APPS", "10"))
DEVICES_PER_APP = int(os.environ.get("CHAOS_DEVICES", "1000"))
PUBLICATIONS_PER_APP = int(os.environ.get("CHAOS_PUBLICATIONS", "10"))
WORKERS = int(os.environ.get("CHAOS_WORKERS", "6"))
DYNAMODB = os.environ.get("CHAOS_DYNAMODB", "auto")  # see dynamodb_local.CHOICES
FAULTS = {
    "internal_error_rate": 0.05,  # 500
    "unavailable_rate": 0.05,  # 503 with Retry-After: 10% 5xx in all
    "throttle_rate": 0.05,  # 429 with Retry-After
    "reset_rate": 0.03,  # the connection is reset
    "hang_rate": 0.02,  # never answered: pushlane's request timeout ends it
    "retry_after_s": 30,
}
KILL_RATE = 0.05
DUPLICATE_RATE = 0.02
# Device mix per app: half iPhones, a third Android, the rest browsers.
PLATFORM_SHARES = ((Platform.APNS, 0.5), (Platform.FCM, 0.35), (Platform.WEBPUSH, 0.15))


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[dynamodb_local.Selection]:
    with dynamodb_local.running(DYNAMODB) as selection:
        yield selection


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "dev.emulators", "--seed", str(SEED)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    info: dict[str, Any] = json.loads(process.stdout.readline())
    try:
        yield info
    finally:
        process.terminate()
        process.wait(timeout=30)


class Admin:
    """The emulators' admin API."""

    def __init__(self, ca_path: str) -> None:
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_path

    def post(self, base: str, path: str, body: dict[str, Any]) -> Any:
        response = self.session.post(f"{base}/_emulator/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def ledger(self, base: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        since = 0
        while True:
            page = self.session.get(f"{base}/_emulator/ledger", params={"since": since, "limit": 5000}, timeout=60)
            page.raise_for_status()
            body = page.json()
            if not body["entries"]:
                return entries
            entries += body["entries"]
            since = body["next"]


class CrashWindows(logging.Handler):
    """Collects the (publication, device) pairs pushlane logged as possibly delivered twice."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.pairs: set[tuple[str, str]] = set()
        self.logged = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == POSSIBLE_DUPLICATES_LOG:
            self.logged += 1
            publication = str(record.__dict__["publication_id"])
            self.pairs.update((publication, device) for device in record.__dict__["device_ids"])


def _seed_devices(
    app_id: str, app_number: int, admin: Admin, emulators: dict[str, Any], shards: int
) -> list[DeviceRecord]:
    """Devices as registration stores them (device, token and '*' subscription items), in batch writes."""
    devices = []
    counts = [int(DEVICES_PER_APP * share) for _, share in PLATFORM_SHARES]
    counts[0] += DEVICES_PER_APP - sum(counts)
    for (platform, _), count in zip(PLATFORM_SHARES, counts, strict=True):
        for n in range(count):
            push: dict[str, str] = {}
            if platform is Platform.APNS:
                token = f"{app_number:04d}{n:060x}"
            elif platform is Platform.FCM:
                token = f"fcm-{app_number}-{n}-" + "x" * 100
            else:
                subscription = admin.post(emulators["webpush"]["url"], "subscriptions", {})
                token, push = subscription["endpoint"], dict(subscription["keys"])
            devices.append(
                DeviceRecord(
                    app_id=app_id,
                    device_id=new_sortable_id(),
                    platform=platform,
                    token=token,
                    push=push,
                    created_at=0,
                    registered_at=0,
                    key_id="chaos",
                )
            )
    with dynamodb_table().batch_writer() as batch:
        for device in devices:
            assert device.token is not None
            batch.put_item(
                Item={"pk": token_pk(app_id, device.platform, device.token), "sk": "TOK", "device_id": device.device_id}
            )
            batch.put_item(
                Item={"pk": device_pk(app_id, device.device_id), "sk": "DEV", **device.model_dump(exclude_none=True)}
            )
            batch.put_item(Item=subscription_item(device, ALL_DEVICES_TOPIC, shards))
    return devices


class EnvironmentSender:
    """Sends through the DeliveryService of the worker thread's execution environment: the chaos driver runs
    each worker as a Lambda environment of its own, with its own providers and event loop."""

    def __init__(self, environment: threading.local) -> None:
        self.environment = environment

    def deliver(
        self,
        app_id: str,
        message: InboxMessage,
        targets: Sequence[Target],
        *,
        inbox_expires_at: int,
        final_attempt: bool,
    ) -> DeliveryReport:
        service: DeliveryService = self.environment.service
        return service.deliver(app_id, message, targets, inbox_expires_at=inbox_expires_at, final_attempt=final_attempt)


def test_every_message_is_delivered_once_through_faults_kills_and_duplicates(
    emulators: dict[str, Any],
    dynamodb: dynamodb_local.Selection,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = Admin(emulators["ca_path"])
    for name in ("apns", "fcm", "webpush"):
        admin.post(emulators[name]["url"], "faults", {"defaults": True, **FAULTS, "seed": SEED, "keyed": True})
    saved_environ = dict(os.environ)
    use_fake_aws_environment()
    if dynamodb.endpoint:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb.endpoint
    forget_container_state()
    key = new_admin_key()
    parameters = {
        "AdminKeySha256": key.sha256,
        **provider_parameters(emulators),
        "TopicShards": "2",  # shards of ~500 devices: two pages each, so every shard's pages chain
    }
    windows = CrashWindows()
    std_logger: logging.Logger = push_logger._logger
    std_logger.addHandler(windows)
    level = std_logger.level
    std_logger.setLevel(logging.WARNING)  # a line per job would be most of the run's output
    try:
        with mock_aws(), fast_atomic_moto(monkeypatch), ExitStack() as pipeline_parts:
            sam_app = load_sam_app(parameters=parameters)
            stack = deploy(sam_app, parameters, dynamodb_endpoint=dynamodb.endpoint)
            functions = load_functions(
                sam_app,
                stack,
                {
                    **LOCAL_ENV_OVERRIDES,
                    "EXPAND_PAGE_SIZE": "300",  # pages of 300 and ~200
                    "INLINE_DELIVERY_MAX": "0",  # every audience through the delivery queue
                    "PROVIDER_TIMEOUT_S": "0.5",
                },
            )
            pipeline_parts.enter_context(assembly.replaced(slice_size=125))  # 2-3 slices a batch: kills land mid-batch
            client = Client(Gateway(sam_app.routes, functions))

            def call(method: str, path: str, bearer: str, body: Any = None) -> Any:
                response = client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {bearer}"})
                assert response.status_code < 300, response.get_data(as_text=True)
                return json.loads(response.get_data(as_text=True))

            shards = int(stack.function_environments["RegistryFunction"]["TOPIC_SHARDS"])
            apps: list[dict[str, Any]] = []
            for number in range(APPS):
                created = call("POST", "/v1/apps", key.token, {"name": f"chaos {number}"})
                app_id, secret = created["app"]["id"], created["secret_key"]["key"]
                topic = f"com.example.chaos{number}"
                apns_key = admin.post(
                    emulators["apns"]["url"],
                    "keys",
                    {"team_id": f"TEAM{number:06d}", "key_id": f"KEY{number:07d}", "topics": [topic]},
                )
                project = f"chaos-{number}"
                account = admin.post(emulators["fcm"]["url"], "service-accounts", {"project_id": project})
                for credentials in (
                    {
                        "platform": "apns",
                        "topic": topic,
                        "team_id": apns_key["team_id"],
                        "key_id": apns_key["key_id"],
                        "private_key": apns_key["private_key_pem"],
                    },
                    {"platform": "fcm", "service_account": account},
                    {"platform": "webpush", "subject": "mailto:chaos@example.com"},
                ):
                    call("PUT", f"/v1/apps/{app_id}/credentials", secret, credentials)
                devices = _seed_devices(app_id, number, admin, emulators, shards)
                apps.append({"id": app_id, "secret": secret, "topic": topic, "project": project, "devices": devices})
            publications = {
                call(
                    "POST",
                    "/v1/messages",
                    app["secret"],
                    {"topics": [ALL_DEVICES_TOPIC], "title": f"#{n}", "body": "chaos"},
                )["id"]: app
                for n in range(PUBLICATIONS_PER_APP)
                for app in apps
            }

            # The world from here on: virtual time for SQS and leases, Lambda environments per worker.
            clock = VirtualClock()
            monkeypatch.setattr("moto.sqs.models.unix_time", clock.seconds)
            monkeypatch.setattr("moto.sqs.models.unix_time_millis", clock.millis)
            environment = threading.local()

            def new_container() -> None:
                environment.service = DeliveryService(
                    ProviderPool(get_settings(), token_store=DynamoTokenStore(), load=load_credentials)
                )

            pipeline_parts.enter_context(assembly.replaced(clock=clock.seconds, sender=EnvironmentSender(environment)))
            driver = ChaosDriver(
                sam_app,
                stack,
                clock,
                seed=SEED,
                workers=WORKERS,
                kill_rate=KILL_RATE,
                duplicate_rate=DUPLICATE_RATE,
                new_container=new_container,
            )
            for aws_client in (dynamodb_client(), dynamodb_table().meta.client, jobs.sqs_client()):
                aws_client.meta.events.register("before-call.*.*", driver.before_aws_call)

            driver.run(lambda number: execution_environment(functions, f"_worker{number}"))

            reports = {pid: call("GET", f"/v1/messages/{pid}", app["secret"]) for pid, app in publications.items()}
            sqs = boto3.client("sqs")
            depths = {
                logical_id: sum(
                    int(v)
                    for v in sqs.get_queue_attributes(
                        QueueUrl=url,
                        AttributeNames=[
                            "ApproximateNumberOfMessages",
                            "ApproximateNumberOfMessagesNotVisible",
                            "ApproximateNumberOfMessagesDelayed",
                        ],
                    )["Attributes"].values()
                )
                for logical_id, url in stack.queue_urls.items()
            }
    finally:
        std_logger.removeHandler(windows)
        std_logger.setLevel(level)
        forget_container_state()
        os.environ.clear()
        os.environ.update(saved_environ)

    # --- what the providers saw ---
    owner: dict[str, tuple[dict[str, Any], DeviceRecord]] = {}
    for app in apps:
        for device in app["devices"]:
            owner[device.token] = (app, device)
    delivered: Counter[tuple[str, str]] = Counter()  # (publication, device) → copies
    unexpected: list[dict[str, Any]] = []
    ledgers: dict[str, int] = {}
    for name in ("apns", "fcm", "webpush"):
        entries = [e for e in admin.ledger(emulators[name]["url"]) if e["outcome"] == "delivered"]
        ledgers[name] = len(entries)
        for entry in entries:
            data = entry["data"]
            if name == "apns":
                token, publication, credential_ok = data["token"], data["payload"].get("pushlane_id"), True
                credential_ok = token in owner and data["topic"] == owner[token][0]["topic"]
            elif name == "fcm":
                token = data["target"]["token"]
                publication = data["message"].get("data", {}).get("pushlane_id")
                credential_ok = token in owner and data["project"] == owner[token][0]["project"]
            else:
                token = data["endpoint"]
                publication = json.loads(data["plaintext"] or "{}").get("pushlane_id")
                credential_ok = token in owner
            app_of_publication = publications.get(publication or "")
            if not credential_ok or app_of_publication is None or app_of_publication is not owner[token][0]:
                unexpected.append(entry)
                continue
            delivered[(publication, owner[token][1].device_id)] += 1
    expected = {(pid, device.device_id) for pid, app in publications.items() for device in app["devices"]}
    lost = expected - set(delivered)
    duplicates = {pair: copies for pair, copies in delivered.items() if copies > 1}
    outside_windows = {pair for pair in duplicates if pair not in windows.pairs}
    counters = Counter[str]()
    for report in reports.values():
        counters.update({k: report[k] for k in ("total", "passed", "failed", "pending", "possible_duplicates")})
    with capsys.disabled():  # the totals belong in every run's output, passing or not
        print(
            f"\nchaos seed {SEED}: {len(publications)} publications to {APPS} apps x {DEVICES_PER_APP} devices, "
            f"DynamoDB: {dynamodb.description}\n"
            f"  ledgers: delivered {sum(ledgers.values()):,} ({ledgers}), distinct {len(delivered):,} of "
            f"{len(expected):,} expected, lost {len(lost)}, unexpected {len(unexpected)}, "
            f"duplicates {sum(c - 1 for c in duplicates.values())} ({len(outside_windows)} outside logged windows)\n"
            f"  counters: {dict(counters)}\n"
            f"  driver: {driver.tally.invocations:,} invocations {driver.tally.by_function}, killed "
            f"{driver.tally.killed}, duplicated messages {driver.tally.duplicated}, crash windows logged "
            f"{windows.logged} ({len(windows.pairs)} targets), clock jumps {driver.tally.clock_jumps}\n"
            f"  queues left: {depths}"
        )
    assert not lost, f"{len(lost)} lost, e.g. {sorted(lost)[:3]}"
    assert not unexpected, f"{len(unexpected)} unexpected deliveries, e.g. {unexpected[:2]}"
    assert not outside_windows, f"duplicates outside logged crash windows: {sorted(outside_windows)[:5]}"
    assert all(depth == 0 for depth in depths.values()), depths  # DLQs empty, and nothing left behind
    for pid, report in reports.items():
        distinct = sum(1 for device in publications[pid]["devices"] if (pid, device.device_id) in delivered)
        assert (report["status"], report["total"], report["passed"], report["failed"]) == (
            "completed",
            DEVICES_PER_APP,
            distinct,
            0,
        ), report
        copies = sum(delivered[(pid, d.device_id)] - 1 for d in publications[pid]["devices"])
        assert report["possible_duplicates"] >= copies, report
    # The chaos really happened, at about the rates asked for.
    assert driver.tally.killed >= KILL_RATE / 2 * driver.tally.invocations
    expected_copies = DUPLICATE_RATE * driver.tally.invocations  # ~60 at full size; small runs may have none
    assert driver.tally.duplicated >= expected_copies / 4 or expected_copies < 10
    assert sum(ledgers.values()) >= 100_000 or APPS * DEVICES_PER_APP * PUBLICATIONS_PER_APP < 100_000
