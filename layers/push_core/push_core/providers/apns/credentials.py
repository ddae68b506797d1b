"""An app's APNs credentials: token auth or certificate auth, parsed by the code that will use them."""

from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from push_core.providers.apns.auth import load_signing_key
from push_core.providers.contract import ProviderCredentials
from push_core.providers.tls import client_certificate_context

# Apple's team and key ids: ten upper-case letters and digits.
APPLE_ID_PATTERN = r"^[A-Z0-9]{10}$"


class ApnsCredentials(ProviderCredentials):
    """Token auth (team id, key id, .p8 key) or certificate auth (certificate and key PEM)."""

    platform: Literal["apns"] = "apns"
    topic: Annotated[str, Field(min_length=1, max_length=255, description="The app's bundle id (apns-topic)")]
    team_id: Annotated[str, Field(pattern=APPLE_ID_PATTERN)] | None = None
    key_id: Annotated[str, Field(pattern=APPLE_ID_PATTERN)] | None = None
    private_key: Annotated[str, Field(description="The .p8 signing key, PEM")] | None = None
    certificate: str | None = None
    certificate_key: str | None = None

    @model_validator(mode="after")
    def _one_auth_method(self) -> Self:
        token = (self.team_id, self.key_id, self.private_key)
        cert = (self.certificate, self.certificate_key)
        if all(token) == all(cert) or (any(token) and not all(token)) or (any(cert) and not all(cert)):
            raise ValueError("give either team_id, key_id and private_key, or certificate and certificate_key")
        return self

    def check_keys(self) -> None:
        """Parse the key or certificate with the very code that will sign or connect with it.

        Raises ApnsKeyError for a bad .p8 key, ssl.SSLError or ValueError for a bad certificate pair.
        """
        if self.private_key is not None:
            load_signing_key(self.private_key)
        elif self.certificate is not None and self.certificate_key is not None:
            client_certificate_context(self.certificate, self.certificate_key)

    def summary(self) -> dict[str, Any]:
        """What may be shown back: never the key."""
        return {
            "platform": "apns",
            "topic": self.topic,
            "team_id": self.team_id,
            "key_id": self.key_id,
            "auth": "token" if self.private_key else "certificate",
        }
