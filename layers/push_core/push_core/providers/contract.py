"""The provider contract: a batch of targets and one rendered message in, one outcome per target out.

Providers never touch storage and never raise for a target's fate: every target gets an Outcome, and
the delivery service decides what each means for counters, retries and feedback.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from push_core.models import MessageContent, Target


@dataclass(frozen=True, slots=True)
class Delivered:
    """The provider accepted the message for this target."""

    provider_id: str | None = None


@dataclass(frozen=True, slots=True)
class InvalidTarget:
    """The target is dead (unregistered token, expired subscription): prune it.

    provider_timestamp_ms is when the provider learned it was dead (APNs 410), so a token
    registered again after that moment survives.
    """

    reason: str
    provider_timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """The provider refused this message for a reason retrying will not fix (payload, credentials, topic)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Transient:
    """Try again later; retry_after_s is the provider's hint (Retry-After) when it gave one.

    ambiguous: the request may have reached the provider (the connection broke or the answer never came),
    so retrying it may deliver the message a second time.
    """

    reason: str
    retry_after_s: float | None = None
    ambiguous: bool = False


Outcome = Delivered | InvalidTarget | Rejected | Transient


@dataclass(frozen=True, slots=True)
class ErrorMeaning:
    """What one documented provider error means for pushlane (one row of a provider's error table)."""

    kind: type[InvalidTarget] | type[Rejected] | type[Transient]
    # Only meaningful for Transient: the minimum back-off when the provider gave no Retry-After.
    min_retry_after_s: float | None = None


def outcome_for(
    table: Mapping[str, ErrorMeaning],
    reason: str,
    *,
    fallback: ErrorMeaning,
    provider_timestamp_ms: int | None = None,
    retry_after_s: float | None = None,
) -> Outcome:
    """Turn a provider's error reason into an outcome through its table (unknown reasons use fallback)."""
    meaning = table.get(reason, fallback)
    if meaning.kind is InvalidTarget:
        return InvalidTarget(reason, provider_timestamp_ms)
    if meaning.kind is Transient:
        hint = retry_after_s if retry_after_s is not None else meaning.min_retry_after_s
        return Transient(reason, hint)
    return Rejected(reason)


def retry_after_seconds(header: str | None) -> float | None:
    """A Retry-After header given in seconds (the form push services use); None otherwise."""
    return float(header) if header and header.isdigit() else None


_SERVER_ERROR = ErrorMeaning(Transient, min_retry_after_s=5)
_CLIENT_ERROR = ErrorMeaning(Rejected)


def outcome_for_status(table: Mapping[str, ErrorMeaning], status: int, retry_after: str | None) -> Outcome:
    """For services that answer by status alone (Web Push, webhooks): the table, else 5xx retry, 4xx reject."""
    fallback = _SERVER_ERROR if status >= 500 else _CLIENT_ERROR
    return outcome_for(table, str(status), fallback=fallback, retry_after_s=retry_after_seconds(retry_after))


@dataclass(frozen=True, slots=True)
class PushMessage:
    """A message as providers see it: the publisher's content and the options every platform maps."""

    publication_id: str
    content: MessageContent
    # Seconds the provider should keep trying; 0 = deliver now or never. None = provider default.
    ttl_s: int | None = None
    collapse_key: str | None = None
    # A silent/background push (content-available / data-only) rather than a visible alert.
    silent: bool = False
    # Caller-supplied per-platform overrides (e.g. {"apns": {...}, "fcm": {...}}), merged last.
    overrides: Mapping[str, Any] | None = None


class Provider(Protocol):
    """What every provider offers the delivery service."""

    async def send(self, targets: Sequence[Target], message: PushMessage) -> list[Outcome]:
        """Deliver message to every target; the outcome list is in target order."""
        ...

    async def close(self) -> None:
        """Release connections (the provider is being replaced or the process ends)."""
        ...


def dead_reasons(table: Mapping[str, ErrorMeaning]) -> frozenset[str]:
    """The documented reasons of an error table that prove a target dead: the ones feedback prunes for.

    An undocumented answer that only looks dead (a 410 with an unknown reason) fails the target but
    never prunes it.
    """
    return frozenset(reason for reason, meaning in table.items() if meaning.kind is InvalidTarget)


class ProviderCredentials(BaseModel):
    """What one app gives pushlane to send through one platform; each provider package defines its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: str  # each kind narrows it to its platform's name, the discriminator of stored credentials

    def summary(self) -> dict[str, Any]:
        """What may be shown back to the app: never a key or secret."""
        raise NotImplementedError
