"""What storage raises: its own typed errors, which know nothing of HTTP. The API edge maps them
(api/resolver.py): StoreBusy to 503 with Retry-After, LimitReached to 409; in an SQS consumer either fails
the record, which comes back."""

from botocore.exceptions import ClientError

# AWS's answers that mean "busy or briefly down, the same call will work shortly": DynamoDB's capacity
# errors, and the server-side 500/503 codes any AWS API may return.
_TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


def is_transient(error: ClientError) -> bool:
    """Whether an AWS call failed only because the service is busy: retry shortly, nothing is wrong."""
    return error.response.get("Error", {}).get("Code", "") in _TRANSIENT_CODES


class StorageError(Exception):
    """A storage failure its callers can act on."""


class StoreBusy(StorageError):
    """DynamoDB is throttling, or a transaction kept conflicting on a hot item: retry shortly."""


class LimitReached(StorageError):
    """A per-app limit a conditional write enforces is used up (the template parameter that sets it, and
    its value); deleting something makes room."""

    def __init__(self, parameter: str, limit: int) -> None:
        super().__init__(f"{parameter} ({limit}) reached")
        self.parameter = parameter
        self.limit = limit
