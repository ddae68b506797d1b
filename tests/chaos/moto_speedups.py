"""moto, made fast and atomic enough for a chaos run of 100,000 deliveries from several workers at once.

Three changes, each honest about what it replaces:

- moto deep-copies every table a transaction touches, so it can roll back a cancelled transaction: one
  transaction costs a copy of the whole table. Here only the items the transaction names are saved
  (they are all it can change) and put back if it is cancelled: the same all-or-nothing result.
- moto answers a Query by sorting every item of the table and filtering by partition. Here it reads the
  partition directly; the sort order inside it, paging and filters are moto's own.
- DynamoDB applies each request atomically. moto, called from several threads, does not promise that,
  so every call into moto holds one lock, which makes each request atomic as DynamoDB's are.

With DynamoDB Local serving DynamoDB (the default where Java is), the first two go unused and the lock
covers SQS only: a request to DynamoDB Local holds it just while moto checks the URL is not its own.
"""

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from moto.core.botocore_stubber import BotocoreStubber
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table


def _transaction_with_item_rollback(original: Any) -> Any:
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Table, DynamoType, DynamoType | None, Any]] = []
        for entry in transact_items:
            kind, operation = next(iter(entry.items()))
            table = self.tables.get(operation.get("TableName"))
            if table is None:
                continue
            key = operation["Item"] if kind == "Put" else operation["Key"]
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            saved.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        try:
            original(self, transact_items)
        except BaseException:
            for table, hash_value, range_value, item in reversed(saved):
                holder = table.items[hash_value] if range_value is not None else table.items
                place = range_value if range_value is not None else hash_value
                if item is None:
                    holder.pop(place, None)
                else:
                    holder[place] = item
            raise

    return transact_write_items


class _CopyWithoutTables:
    """Stands in for the copy module inside moto.dynamodb.models: tables are not copied, the rest is."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _query_one_partition(original: Any) -> Any:
    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is not None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = self.items.get(hash_key, {})
        self.all_items = lambda: list(partition.values())  # type: ignore[method-assign]
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    return query


@contextmanager
def fast_atomic_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Apply the three changes for the duration of the block."""
    lock = threading.RLock()
    stub = BotocoreStubber.__call__

    def locked(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return stub(self, event_name, request, **kwargs)

    monkeypatch.setattr(dynamodb_models, "copy", _CopyWithoutTables)
    backend = dynamodb_models.DynamoDBBackend
    monkeypatch.setattr(backend, "transact_write_items", _transaction_with_item_rollback(backend.transact_write_items))
    monkeypatch.setattr(Table, "query", _query_one_partition(Table.query))
    monkeypatch.setattr(BotocoreStubber, "__call__", locked)
    yield
