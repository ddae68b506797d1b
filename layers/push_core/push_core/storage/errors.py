"""What storage raises: its own typed errors, which know nothing of HTTP. The API edge maps them
(api/resolver.py): StoreBusy to 503 with Retry-After, LimitReached to 409; in an SQS consumer either fails
the record, which comes back."""


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
