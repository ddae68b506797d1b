"""Idempotency-Key on publish: the same key (per app) within 24 hours returns the first answer, once.

Powertools' idempotency utility does the storing, locking and expiry on the idempotency table; this
module only decides what the key and the payload fingerprint are.
"""

import hashlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from push_core.config import get_settings

KEY_HEADER = "idempotency-key"
EXPIRY_S = 24 * 3600

# The key is the app and the client's key; the body's hash is checked so a reused key with another
# body is an error instead of silently returning the first publication.
CONFIG = IdempotencyConfig(
    event_key_jmespath="[app_id, key]",
    payload_validation_jmespath="body_sha256",
    expires_after_seconds=EXPIRY_S,
    raise_on_no_idempotency_key=True,
)


def fingerprint(app_id: str, key: str, body: str) -> dict[str, str]:
    """What the idempotency record is keyed and validated on."""
    return {"app_id": app_id, "key": key, "body_sha256": hashlib.sha256(body.encode()).hexdigest()}


@lru_cache(maxsize=1)
def persistence() -> DynamoDBPersistenceLayer:
    # Built on first use: the table name comes from the environment of the deployed function.
    return DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table_name)


def once(
    work: Callable[[], dict[str, Any]], request: dict[str, str], lambda_context: LambdaContext | None
) -> dict[str, Any]:
    """Run work once per request fingerprint; repeats within 24 h get the stored answer."""
    if lambda_context is not None:
        # A killed invocation then frees its key when its time is up, not after the whole expiry.
        CONFIG.register_lambda_context(lambda_context)

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence(), config=CONFIG)  # type: ignore[untyped-decorator]
    def run(request: dict[str, str]) -> dict[str, Any]:
        return work()

    result: dict[str, Any] = run(request=request)
    return result
