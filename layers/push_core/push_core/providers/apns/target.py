"""What an APNs target carries beside its token: the environment its app build talks to."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Self

ApnsEnvironment = Literal["production", "sandbox"]
_ENVIRONMENT = "environment"  # the key in a device's stored extras and in queued targets


@dataclass(frozen=True, slots=True)
class ApnsExtras:
    environment: ApnsEnvironment = "production"

    @classmethod
    def of(cls, push: Mapping[str, str]) -> Self:
        """Read from a target's extras; a target stored before environments existed is production."""
        return cls("sandbox") if push.get(_ENVIRONMENT) == "sandbox" else cls()

    def as_push(self) -> dict[str, str]:
        return {_ENVIRONMENT: self.environment}
