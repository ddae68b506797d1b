"""Cost per million APNs deliveries, from the AWS calls a real fan-out makes.

The real publish and fan-out handlers run on moto (the stack built from template.yaml) and deliver
to the APNs emulator; the publication's usage counters (metered from the boto3 calls themselves) give
DynamoDB units and SQS requests per delivery. SQS receives and deletes, made by the Lambda event
source rather than our code, are added per job (one receive and one delete per batch of 10 jobs,
counted generously as one each per job). Lambda time is the CPU per delivery the APNs benchmark
measured, plus a wall-time allowance per job for round trips.
"""

import json
import os
import time
from typing import Any

from bench import prices

MEMORY_GB = 1.0  # FanoutFunction's MemorySize in template.yaml
# Each job also waits for its provider round trips (all its sends are in flight together) and for its
# DynamoDB/SQS calls: a generous allowance of wall time per job on top of the measured CPU.
WAIT_PER_JOB_S = 0.25
JOBS_PER_INVOCATION = 10  # the SQS event source's BatchSize


def measure(emulators: dict[str, Any], devices: int) -> dict[str, Any]:
    """Publish to `devices` APNs devices through the real handlers on moto; return counted usage."""
    from moto import mock_aws
    from werkzeug.test import Client

    from local_stack.gateway import Gateway
    from local_stack.launcher import LOCAL_ENV_OVERRIDES, use_fake_aws_environment
    from local_stack.poller import SqsEventSourcePoller, drain
    from local_stack.runtime import load_functions
    from local_stack.stack import deploy
    from local_stack.template import load_sam_app
    from push_core.auth import new_admin_key

    use_fake_aws_environment()
    admin = new_admin_key()
    parameters = {
        "AdminKeySha256": admin.sha256,
        "ApnsProductionUrl": emulators["apns"]["url"],
        "ApnsSandboxUrl": emulators["apns"]["url"],
        "ProviderCaBundle": emulators["ca_path"],
        "AllowLoopbackTargets": "true",
    }
    with mock_aws():
        app = load_sam_app(parameters=parameters)
        stack = deploy(app, parameters)
        functions = load_functions(app, stack, LOCAL_ENV_OVERRIDES)
        pollers = [
            SqsEventSourcePoller(s, stack.queue_urls[s.queue], stack.queue_arns[s.queue], functions[s.function])
            for s in app.sqs_sources
        ]
        client = Client(Gateway(app.routes, functions))

        def call(method: str, path: str, key: str, body: Any) -> Any:
            response = client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {key}"})
            assert response.status_code < 300, response.get_data(as_text=True)
            return json.loads(response.get_data(as_text=True))

        created = call("POST", "/v1/apps", admin.token, {"name": "cost"})
        secret, public = created["secret_key"]["key"], created["public_key"]["key"]
        key = emulators["apns"]["key"]
        credentials = {
            "platform": "apns",
            "topic": key["topics"][0],
            "team_id": key["team_id"],
            "key_id": key["key_id"],
            "private_key": key["private_key_pem"],
        }
        call("PUT", f"/v1/apps/{created['app']['id']}/credentials", secret, credentials)
        # A few devices through the API, the rest written straight to the table in batches: moto's
        # transactions copy the whole table, and registration cost is not part of the cost per delivery.
        for i in range(min(devices, 20)):
            device = call("POST", "/v1/devices", public, {"platform": "apns", "token": f"{i:064x}"})
            call("PUT", f"/v1/devices/{device['device']['id']}/topics/all", secret, None)
        _seed_devices(
            created["app"]["id"], range(20, devices), int(stack.function_environments["FanoutFunction"]["TOPIC_SHARDS"])
        )
        message = call("POST", "/v1/messages", secret, {"topics": ["all"], "title": "Sale", "body": "Today only"})
        started = time.perf_counter()
        drain(pollers, timeout_s=600)
        wall = time.perf_counter() - started
        report = call("GET", f"/v1/messages/{message['id']}", secret, None)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    return {"devices": devices, "report": report, "drain_wall_s": wall}


def _seed_devices(app_id: str, numbers: range, shards: int) -> None:
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
            batch.put_item(Item=subscription_item(device, "all", shards))
            batch.put_item(Item={"pk": device_pk(app_id, device.device_id), "sk": "SUB#all", "created_at": 0})


def model(measured: dict[str, Any], cpu_s_per_delivery: float) -> dict[str, Any]:
    """Dollars per million deliveries from the counted usage and the measured CPU per delivery."""
    report = measured["report"]
    usage = report["usage"]
    delivered = report["passed"]
    assert delivered == measured["devices"], report
    jobs = usage["fanout_jobs"]
    per_million = 1_000_000 / delivered
    invocations = jobs / JOBS_PER_INVOCATION
    sqs = usage["sqs_requests"] + 2 * jobs + 1  # + receive and delete per job, + the publish's send
    lambda_seconds = delivered * cpu_s_per_delivery + jobs * WAIT_PER_JOB_S
    costs = {
        "lambda_requests": invocations * prices.LAMBDA_PER_REQUEST,
        "lambda_duration": lambda_seconds * MEMORY_GB * prices.LAMBDA_PER_GB_SECOND_ARM64,
        "sqs": sqs * prices.SQS_PER_REQUEST,
        "dynamodb_reads": usage["dynamodb_read_units"] * prices.DYNAMODB_PER_READ_UNIT,
        "dynamodb_writes": usage["dynamodb_write_units"] * prices.DYNAMODB_PER_WRITE_UNIT,
    }
    per_million_costs = {name: value * per_million for name, value in costs.items()}
    return {
        "prices_date": prices.PRICES_DATE,
        "deliveries_measured": delivered,
        "calls_per_million": {
            "dynamodb_requests": usage["dynamodb_requests"] * per_million,
            "dynamodb_read_units": usage["dynamodb_read_units"] * per_million,
            "dynamodb_write_units": usage["dynamodb_write_units"] * per_million,
            "sqs_requests": sqs * per_million,
            "lambda_invocations": invocations * per_million,
            "fanout_jobs": jobs * per_million,
        },
        "cost_breakdown_per_million_usd": per_million_costs,
        "cost_per_million_usd": sum(per_million_costs.values()),
        "sns_mobile_push_per_million_usd": prices.SNS_MOBILE_PUSH_PER_DELIVERY * 1_000_000,
    }
