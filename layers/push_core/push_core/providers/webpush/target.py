"""What a Web Push target carries beside its endpoint: the browser's keys the payload is encrypted to."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

_P256DH, _AUTH = "p256dh", "auth"  # the keys in a device's stored extras, as PushSubscription.toJSON() names them


@dataclass(frozen=True, slots=True)
class SubscriptionKeys:
    p256dh: str
    auth: str

    @classmethod
    def of(cls, push: Mapping[str, str]) -> Self:
        """Read from a target's extras; missing keys are empty, which encryption refuses as bad keys."""
        return cls(push.get(_P256DH, ""), push.get(_AUTH, ""))

    def as_push(self) -> dict[str, str]:
        return {_P256DH: self.p256dh, _AUTH: self.auth}
