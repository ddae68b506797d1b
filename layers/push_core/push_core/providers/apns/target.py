"""What an APNs target carries beside its token: the environment its app build talks to."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Self

ApnsEnvironment = Literal["production", "sandbox"]
_ENVIRONMENT = "environment"  # the key in a device's stored extras and in queued targets


@dataclass(frozen=True, slots=True)
class ApnsExtras:
    environment: ApnsEnvironment = "production"

    @staticmethod
    def environment_of(push: Mapping[str, str]) -> ApnsEnvironment:
        """The environment alone, as the provider reads it for every target (no object per target); a target
        stored before environments existed is production."""
        return "sandbox" if push.get(_ENVIRONMENT) == "sandbox" else "production"

    @classmethod
    def of(cls, push: Mapping[str, str]) -> Self:
        """Read from a target's extras."""
        return cls(cls.environment_of(push))

    def as_push(self) -> dict[str, str]:
        return {_ENVIRONMENT: self.environment}
