"""dynamodb_local: DynamoDB Local on loopback only, chosen or fallen back from, and the stack's tables in it."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
import requests
from moto import mock_aws

from dev.local_stack import dynamodb_local, launcher
from dev.local_stack.stack import deploy
from dev.local_stack.template import REPO_ROOT, load_sam_app
from tests.fixtures.processes import wait_until_ended
from tests.local_stack.conftest import needs_dynamodb_local

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef


@pytest.fixture(scope="module")
def server() -> Iterator[dynamodb_local.DynamoDBLocal]:
    """One DynamoDB Local for the module (a couple of seconds to start); its database is shared, names differ."""
    running = dynamodb_local.start()
    yield running
    running.stop()


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of every socket listening on this TCP port, from the kernel's tables (Linux)."""
    addresses = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                addresses.add(address[-width:] if width == 8 else address)
    return addresses


# 127.0.0.1 as the kernel writes it: little-endian IPv4, or IPv4-mapped IPv6.
_LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}


@needs_dynamodb_local
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket tables")
def test_dynamodb_local_listens_on_loopback_only(server: dynamodb_local.DynamoDBLocal) -> None:
    port = int(server.url.rsplit(":", 1)[1])

    addresses = _listening_addresses(port)

    assert addresses, f"nothing listens on {port}"
    assert addresses <= _LOOPBACK, addresses


@needs_dynamodb_local
def test_the_launcher_runs_compiled_when_javac_is_here_and_from_source_when_not(
    server: dynamodb_local.DynamoDBLocal, tmp_path: Path
) -> None:
    java, jar = dynamodb_local.find_java(), dynamodb_local.find_jar()
    assert java is not None
    assert jar is not None
    command = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().split(b"\0")
    if Path(java).resolve().with_name("javac").exists():
        assert b"LoopbackDynamoDBLocal" in command
        assert not any(argument.endswith(b".java") for argument in command)
    # A JDK without javac (a bare runtime) starts the launcher from its source file.
    runtime_only = tmp_path / "bin" / "java"
    runtime_only.parent.mkdir()
    runtime_only.write_text("")  # only its neighbours are looked at: no javac beside it
    assert dynamodb_local.launcher_arguments(str(runtime_only), jar, tmp_path)[-1].endswith(".java")


@needs_dynamodb_local
def test_dynamodb_local_is_the_real_engine_with_its_limits(server: dynamodb_local.DynamoDBLocal) -> None:
    # Given a table in DynamoDB Local
    dynamodb = boto3.client("dynamodb", endpoint_url=server.url)
    dynamodb.create_table(
        TableName="limits",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    requests_26: list[WriteRequestTypeDef] = [{"PutRequest": {"Item": {"pk": {"S": str(n)}}}} for n in range(26)]

    # When a batch of 26 writes is sent (moto accepts it), then a two-letter table name
    with pytest.raises(dynamodb.exceptions.ClientError, match="Too many items requested for the BatchWriteItem"):
        dynamodb.batch_write_item(RequestItems={"limits": requests_26})
    with pytest.raises(dynamodb.exceptions.ClientError, match="between 3 and 255"):
        dynamodb.describe_table(TableName="ab")

    # Then both are refused, as DynamoDB refuses them; and it says what it is
    assert server.version.startswith("3.")


@needs_dynamodb_local
def test_dynamodb_local_ends_with_the_process_that_started_it_even_when_that_is_killed() -> None:
    # Given DynamoDB Local started by a process that is then killed outright (no cleanup runs)
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from dev.local_stack import dynamodb_local; s = dynamodb_local.start(); "
            "print(s.process.pid, s.data_dir, flush=True); import time; time.sleep(60)",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    pid, data_dir = starter.stdout.readline().split()
    assert Path(data_dir).is_dir()  # its data goes to disk (SQLite creates the file with the first table)
    starter.send_signal(signal.SIGKILL)
    starter.wait()

    # Then DynamoDB Local ends too: its input closed with its parent; and its data folder is gone
    wait_until_ended(int(pid), 15, "DynamoDB Local, outliving the process that started it,")
    assert not Path(data_dir).exists()


def test_auto_falls_back_to_moto_and_says_why_while_local_refuses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a machine with Java but no DynamoDB Local installed (an empty root)
    monkeypatch.setattr(dynamodb_local, "find_java", lambda: "/usr/bin/java")

    # When auto and local are asked for
    fallback = dynamodb_local.select("auto", tmp_path)
    with pytest.raises(dynamodb_local.DynamoDBLocalError, match="make installs it"):
        dynamodb_local.select("local", tmp_path)

    # Then auto is moto and says why; moto is moto
    assert fallback.server is None
    assert fallback.endpoint is None
    assert fallback.description.startswith("moto, because DynamoDB Local is unavailable: DynamoDBLocal.jar is not")
    assert dynamodb_local.select("moto").description == "moto (as asked)"


def test_without_java_auto_says_java_is_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dynamodb_local, "find_java", lambda: None)

    selection = dynamodb_local.select("auto")

    assert selection.server is None
    assert "no java on PATH" in selection.description


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, local, moto"):
        dynamodb_local.select("dynalite")


@needs_dynamodb_local
def test_deploy_creates_the_template_tables_in_dynamodb_local_with_their_keys_and_time_to_live(
    server: dynamodb_local.DynamoDBLocal,
) -> None:
    # Given pushlane's template, its stack created in moto with DynamoDB Local as the DynamoDB
    with mock_aws():
        app = load_sam_app(REPO_ROOT / "template.yaml", {"AdminKeySha256": "0" * 64})
        stack = deploy(app, {"AdminKeySha256": "0" * 64}, "ddblocal", dynamodb_endpoint=server.url)

    # Then each template table is in DynamoDB Local under the name the functions are given
    dynamodb = boto3.client("dynamodb", endpoint_url=server.url)
    environment = stack.function_environments["RegistryFunction"]
    for logical_id, variable in (("Table", "TABLE_NAME"), ("IdempotencyTable", "IDEMPOTENCY_TABLE_NAME")):
        properties = app.template["Resources"][logical_id]["Properties"]
        name = stack.physical_ids[logical_id]
        table = dynamodb.describe_table(TableName=name)["Table"]
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert environment[variable] == name
        assert table["KeySchema"] == properties["KeySchema"]
        assert ttl == {
            "TimeToLiveStatus": "ENABLED",
            "AttributeName": properties["TimeToLiveSpecification"]["AttributeName"],
        }
    assert stack.dynamodb_endpoint == server.url


@needs_dynamodb_local
@pytest.mark.usefixtures("process_state")
def test_the_started_stack_keeps_its_items_in_dynamodb_local_and_stops_it(tiny_app_dir: Path) -> None:
    # Given the tiny app started with DynamoDB Local as its DynamoDB
    launcher.use_fake_aws_environment()
    app = load_sam_app(tiny_app_dir / "template.yaml")
    stack = launcher.start(app, {}, host="127.0.0.1", port=0, stack_name="tinylocal", dynamodb="local")
    server = stack.dynamodb.server
    assert server is not None
    try:
        # When an item is stored through the gateway
        with requests.Session() as session:
            session.trust_env = False
            response = session.post(f"{stack.url}/items", json={"id": "in-local"}, timeout=30)
        assert response.status_code == 201

        # Then it is in DynamoDB Local, which every boto3 client of this process (and the handlers') reaches
        assert os.environ["AWS_ENDPOINT_URL_DYNAMODB"] == server.url
        dynamodb = boto3.client("dynamodb", endpoint_url=server.url)
        item = dynamodb.get_item(TableName=stack.stack.physical_ids["Table"], Key={"pk": {"S": "in-local"}})
        assert item["Item"]["pk"] == {"S": "in-local"}
    finally:
        stack.stop()

    # And stopping the stack stopped DynamoDB Local
    assert server.process.poll() is not None
