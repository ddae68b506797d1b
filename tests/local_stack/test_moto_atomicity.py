"""The local stack's moto server answers concurrent DynamoDB requests the way DynamoDB does: each atomically.

moto's own backend is not thread-safe (a transaction's rollback copy iterates a table another request
thread may be writing to); here a transaction is slowed down so that a write sent meanwhile would land
inside it, unless every DynamoDB request holds the lock.
"""

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.dynamodb.models import DynamoDBBackend
from moto.server import ThreadedMotoServer

from dev.local_stack import moto_atomicity

SLOW_TRANSACTION_S = 0.5


@pytest.fixture
def moto_url() -> Iterator[str]:
    moto_atomicity.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    server.stop()


def _client(url: str) -> Any:
    return boto3.client(
        "dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_a_write_never_lands_inside_another_requests_transaction(moto_url: str, monkeypatch: pytest.MonkeyPatch):
    # Given a transaction that takes a while inside moto (as a big table's rollback copy does)
    client = _client(moto_url)
    client.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    spans: dict[str, tuple[float, float]] = {}
    original = DynamoDBBackend.transact_write_items

    def slow_transaction(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        time.sleep(SLOW_TRANSACTION_S)
        try:
            return original(self, *args, **kwargs)
        finally:
            spans["transaction"] = (started, time.monotonic())

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", slow_transaction)

    def transact() -> None:
        _client(moto_url).transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "tx"}}}}])

    # When a plain write is sent while the transaction runs
    transaction = threading.Thread(target=transact)
    transaction.start()
    time.sleep(SLOW_TRANSACTION_S / 5)
    sent = time.monotonic()
    client.put_item(TableName="t", Item={"pk": {"S": "put"}})
    answered = time.monotonic()
    transaction.join()

    # Then it was answered only after the transaction had finished, not in the middle of it
    started, finished = spans["transaction"]
    assert started < sent < finished
    assert answered >= finished
