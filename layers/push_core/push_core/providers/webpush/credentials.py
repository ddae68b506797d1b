"""An app's Web Push credentials: the VAPID contact and key pair (pushlane makes the pair if not given)."""

from typing import Annotated, Any, Literal

from pydantic import Field

from push_core.providers.contract import ProviderCredentials


class WebPushCredentials(ProviderCredentials):
    platform: Literal["webpush"] = "webpush"
    subject: Annotated[str, Field(pattern=r"^(mailto:|https://).+")]
    vapid_private_key: str
    vapid_public_key: str

    def summary(self) -> dict[str, Any]:
        return {"platform": "webpush", "subject": self.subject, "vapid_public_key": self.vapid_public_key}
