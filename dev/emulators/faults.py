"""Fault knobs: which delivery requests fail and how, decided per request from a seeded random.Random.

Every decision draws exactly two numbers (which fault, how much delay) whatever the knobs say, so the
sequence of decisions for a seed depends only on the order of requests: a failing seed reproduces.
Keyed mode goes further for concurrent clients: each decision comes from its own stream, seeded by
(seed, what the request is, how many times that request was seen), so it does not depend on how
requests from many workers interleave.
"""

from __future__ import annotations

import dataclasses
import enum
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any


class FaultKind(enum.Enum):
    """What happens to one delivery request instead of (or before) normal handling."""

    NONE = "none"
    RESET = "reset"  # the TCP connection is reset mid-request
    HANG = "hang"  # never answered: the client's timeout is what ends it
    INTERNAL_ERROR = "internal_error"  # 500, provider-specific body
    UNAVAILABLE = "unavailable"  # 503, provider-specific body, Retry-After
    THROTTLED = "throttled"  # 429, provider-specific body, Retry-After
    AUTH_ERROR = "auth_error"  # the provider's credential-side failure (FCM THIRD_PARTY_AUTH_ERROR, ...)
    BAD_REQUEST = "bad_request"  # 400, the provider's refusal of this one request (APNs BadDeviceToken, ...)


# The order in which the rates slice [0, 1): part of the seed contract, do not reorder.
_RATE_OF_KIND: tuple[tuple[str, FaultKind], ...] = (
    ("reset_rate", FaultKind.RESET),
    ("hang_rate", FaultKind.HANG),
    ("internal_error_rate", FaultKind.INTERNAL_ERROR),
    ("unavailable_rate", FaultKind.UNAVAILABLE),
    ("throttle_rate", FaultKind.THROTTLED),
    ("auth_error_rate", FaultKind.AUTH_ERROR),
    ("bad_request_rate", FaultKind.BAD_REQUEST),  # added last, so the slices above kept their seeds
)


@dataclass(frozen=True)
class FaultSettings:
    """The knobs. Rates are fractions of delivery requests (their sum at most 1); delays are seconds."""

    reset_rate: float = 0.0
    hang_rate: float = 0.0
    internal_error_rate: float = 0.0
    unavailable_rate: float = 0.0
    throttle_rate: float = 0.0
    auth_error_rate: float = 0.0
    bad_request_rate: float = 0.0
    retry_after_s: int = 30
    delay_s: float = 0.0
    delay_jitter_s: float = 0.0

    def __post_init__(self) -> None:
        rates = [getattr(self, name) for name, _ in _RATE_OF_KIND]
        if any(not 0.0 <= rate <= 1.0 for rate in rates):
            raise ValueError("every fault rate must be within [0, 1]")
        if sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        if self.retry_after_s < 0 or self.delay_s < 0 or self.delay_jitter_s < 0:
            raise ValueError("retry_after_s, delay_s and delay_jitter_s must not be negative")

    def changed(self, changes: dict[str, Any]) -> FaultSettings:
        """A copy with `changes` applied (names as in this class); unknown names or bad values raise ValueError."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown fault knobs: {sorted(unknown)}")
        typed: dict[str, Any] = {}
        for name, value in changes.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"fault knob {name} must be a number")
            typed[name] = int(value) if name == "retry_after_s" else float(value)
        return dataclasses.replace(self, **typed)

    def to_json(self) -> dict[str, Any]:
        """The knobs as a JSON object."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FaultDecision:
    """The fault chosen for one request."""

    kind: FaultKind
    delay_s: float
    retry_after_s: int


class Faults:
    """Thread-safe knobs plus the seeded random stream the decisions come from."""

    def __init__(self, settings: FaultSettings | None = None, seed: int = 0) -> None:
        self._initial = settings or FaultSettings()
        self._initial_seed = seed
        self._settings = self._initial
        self._seed = seed
        self._random = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets
        self._lock = threading.Lock()
        self._keyed = False
        self._seen: Counter[str] = Counter()

    @property
    def settings(self) -> FaultSettings:
        """The knobs in force."""
        return self._settings

    @property
    def seed(self) -> int:
        """The seed the current random stream started from."""
        return self._seed

    @property
    def keyed(self) -> bool:
        """Whether decisions are keyed by request (see the module docstring)."""
        return self._keyed

    def configure(
        self, settings: FaultSettings | None = None, *, seed: int | None = None, keyed: bool | None = None
    ) -> None:
        """Replace the knobs and/or restart the random stream from `seed`, and/or switch keyed mode."""
        with self._lock:
            if settings is not None:
                self._settings = settings
            if seed is not None:
                self._seed = seed
                self._random = random.Random(seed)  # noqa: S311
                self._seen.clear()
            if keyed is not None:
                self._keyed = keyed

    def update(self, **changes: Any) -> FaultSettings:
        """Change some knobs (keyword names as in FaultSettings); returns the knobs now in force."""
        with self._lock:
            self._settings = self._settings.changed(changes)
            return self._settings

    def reset(self) -> None:
        """Back to the knobs and seed given at construction (not keyed)."""
        self.configure(self._initial, seed=self._initial_seed, keyed=False)

    def decide(self, key: str = "") -> FaultDecision:
        """The fault for the next request; `key` says what the request is (used in keyed mode)."""
        with self._lock:
            stream = self._random
            if self._keyed:
                self._seen[key] += 1
                stream = random.Random(f"{self._seed}|{key}|{self._seen[key]}")  # noqa: S311
            pick = stream.random()
            jitter = stream.random()
            settings = self._settings
        delay = settings.delay_s + jitter * settings.delay_jitter_s
        threshold = 0.0
        for name, kind in _RATE_OF_KIND:
            threshold += getattr(settings, name)
            if pick < threshold:
                return FaultDecision(kind, delay, settings.retry_after_s)
        return FaultDecision(FaultKind.NONE, delay, settings.retry_after_s)
