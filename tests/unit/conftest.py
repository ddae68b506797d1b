"""Unit tests run without AWS: settings come from a fixed environment, no client is ever built."""

from collections.abc import Iterator

import pytest

from push_core import assembly
from push_core.auth import sha256_hex

UNIT_ADMIN_KEY = "pl_admin_" + "ab" * 20


@pytest.fixture(autouse=True)
def unit_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TABLE_NAME", "unit-table")
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", "unit-idempotency")
    monkeypatch.setenv("FANOUT_QUEUE_URL", "https://sqs.invalid/fanout")
    monkeypatch.setenv("DELIVERY_QUEUE_URL", "https://sqs.invalid/delivery")
    monkeypatch.setenv("FEEDBACK_QUEUE_URL", "https://sqs.invalid/feedback")
    monkeypatch.setenv("ADMIN_KEY_SHA256", sha256_hex(UNIT_ADMIN_KEY))
    assembly.reset()
    yield
    assembly.reset()
