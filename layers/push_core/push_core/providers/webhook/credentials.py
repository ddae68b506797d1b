"""An app's webhook credentials: the secret pushlane signs each request with."""

from typing import Any, Literal

from push_core.providers.contract import ProviderCredentials


class WebhookCredentials(ProviderCredentials):
    platform: Literal["webhook"] = "webhook"
    secret: str

    def summary(self) -> dict[str, Any]:
        return {"platform": "webhook", "secret_hint": self.secret[:10] + "…"}
