"""An app's FCM credentials: a Firebase service account, whose key is parsed as the sender parses it."""

from typing import Any, Literal

from push_core.providers.contract import ProviderCredentials
from push_core.providers.fcm.oauth import ServiceAccount


class FcmCredentials(ProviderCredentials):
    platform: Literal["fcm"] = "fcm"
    service_account: ServiceAccount

    def summary(self) -> dict[str, Any]:
        account = self.service_account
        return {"platform": "fcm", "project_id": account.project_id, "client_email": account.client_email}
