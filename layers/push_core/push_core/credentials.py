"""Provider credentials per app: what each platform needs, validated, and kept in Secrets Manager."""

import json
import ssl
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

import boto3
from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from push_core.config import get_settings
from push_core.errors import NotFound, UnprocessableEntity
from push_core.models import Platform
from push_core.providers.apns.auth import ApnsKeyError, load_signing_key
from push_core.providers.fcm.oauth import ServiceAccount as FcmServiceAccount
from push_core.providers.tls import client_certificate_context
from push_core.providers.webhook.signature import new_webhook_secret
from push_core.providers.webpush.vapid import VapidKeyError, VapidSigner, generate_vapid_key

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

# Secrets are read on every delivery batch; five minutes of caching keeps Secrets Manager calls (and cost) rare.
SECRET_MAX_AGE_S = 300


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApnsCredentials(Credentials):
    """Token auth (team id, key id, .p8 key) or certificate auth (certificate and key PEM)."""

    platform: Literal["apns"] = "apns"
    topic: Annotated[str, Field(min_length=1, max_length=255, description="The app's bundle id (apns-topic)")]
    team_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{10}$")] | None = None
    key_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{10}$")] | None = None
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

    def summary(self) -> dict[str, Any]:
        """What may be shown back: never the key."""
        return {
            "platform": "apns",
            "topic": self.topic,
            "team_id": self.team_id,
            "key_id": self.key_id,
            "auth": "token" if self.private_key else "certificate",
        }


class FcmCredentials(Credentials):
    platform: Literal["fcm"] = "fcm"
    service_account: FcmServiceAccount

    def summary(self) -> dict[str, Any]:
        account = self.service_account
        return {"platform": "fcm", "project_id": account.project_id, "client_email": account.client_email}


class WebPushCredentials(Credentials):
    platform: Literal["webpush"] = "webpush"
    subject: Annotated[str, Field(pattern=r"^(mailto:|https://).+")]
    vapid_private_key: str
    vapid_public_key: str

    def summary(self) -> dict[str, Any]:
        return {"platform": "webpush", "subject": self.subject, "vapid_public_key": self.vapid_public_key}


class WebhookCredentials(Credentials):
    platform: Literal["webhook"] = "webhook"
    secret: str

    def summary(self) -> dict[str, Any]:
        return {"platform": "webhook", "secret_hint": self.secret[:10] + "…"}


AnyCredentials = ApnsCredentials | FcmCredentials | WebPushCredentials | WebhookCredentials
_credentials_adapter: TypeAdapter[AnyCredentials] = TypeAdapter(
    Annotated[AnyCredentials, Field(discriminator="platform")]
)


def secret_name(app_id: str, platform: Platform) -> str:
    """Where an app's credentials for a platform live in Secrets Manager."""
    return f"{get_settings().secrets_prefix}/{app_id}/{platform.value}"


@lru_cache(maxsize=1)
def secrets_client() -> "SecretsManagerClient":
    """The Secrets Manager client of this container, built lazily."""
    return boto3.client("secretsmanager")


def load(app_id: str, platform: Platform) -> AnyCredentials | None:
    """The app's credentials for platform (cached for a few minutes), or None when it has none."""
    try:
        raw = parameters.get_secret(secret_name(app_id, platform), max_age=SECRET_MAX_AGE_S)
    except parameters.exceptions.GetParameterError as error:
        # Powertools wraps the boto3 error without `from`, so the original is the implicit context.
        original = error.__context__
        if (
            isinstance(original, ClientError)
            and original.response.get("Error", {}).get("Code") == "ResourceNotFoundException"
        ):
            return None
        raise
    return _credentials_adapter.validate_json(raw if isinstance(raw, (str, bytes)) else json.dumps(raw))


def save(app_id: str, credentials: AnyCredentials) -> None:
    """Create or replace the app's credentials for that platform."""
    name = secret_name(app_id, Platform(credentials.platform))
    value = credentials.model_dump_json(exclude_none=True)
    client = secrets_client()
    try:
        client.put_secret_value(SecretId=name, SecretString=value)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        client.create_secret(Name=name, SecretString=value, Description=f"pushlane {credentials.platform} credentials")
    parameters.clear_caches()  # type: ignore[no-untyped-call]  # this container sees the new value at once


def remove(app_id: str, platform: Platform) -> None:
    """Delete the app's credentials for platform; NotFound when there were none."""
    try:
        secrets_client().delete_secret(SecretId=secret_name(app_id, platform), ForceDeleteWithoutRecovery=True)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise NotFound("The app has no credentials for that platform.", code="credentials_not_found") from error
        raise
    parameters.clear_caches()  # type: ignore[no-untyped-call]


def _check_apns_auth(creds: ApnsCredentials) -> None:
    """Parse the key or certificate with the very code that will sign or connect with it."""
    try:
        if creds.private_key is not None:
            load_signing_key(creds.private_key)
        elif creds.certificate is not None and creds.certificate_key is not None:
            client_certificate_context(creds.certificate, creds.certificate_key)
    except ApnsKeyError as error:
        raise UnprocessableEntity(f"{error}.", code="invalid_credentials") from error
    except (ssl.SSLError, ValueError) as error:
        raise UnprocessableEntity(
            "certificate and certificate_key must be a PEM certificate and its own private key.",
            code="invalid_credentials",
        ) from error


def prepare(fields: dict[str, Any]) -> tuple[AnyCredentials, dict[str, str]]:
    """Validate what an app sent for a platform, fill in generated keys, and return them with what to show once."""
    platform = fields.get("platform")
    shown_once: dict[str, str] = {}
    try:
        if platform == "webpush":
            # The subject is checked by the model below; a bad one must not reach the signer first.
            _credentials_adapter.validate_python({**fields, "vapid_private_key": "x", "vapid_public_key": "x"})
            private = fields.get("vapid_private_key")
            if private is None:
                private, public = generate_vapid_key()
            else:
                public = VapidSigner(private, fields["subject"]).public_key
            fields = {**fields, "vapid_private_key": private, "vapid_public_key": public}
        elif platform == "webhook" and not fields.get("secret"):
            fields = {**fields, "secret": new_webhook_secret()}
            shown_once["secret"] = fields["secret"]
        creds = _credentials_adapter.validate_python({k: v for k, v in fields.items() if v is not None})
    except (VapidKeyError, ValueError) as error:
        if isinstance(error, ValidationError):
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise UnprocessableEntity(f"{where}: {first['msg']}", code="invalid_credentials") from error
        raise UnprocessableEntity(f"vapid_private_key: {error}", code="invalid_credentials") from error
    # FCM's service account parses its key in its own model (rsa_signing_key), as the sender does.
    if isinstance(creds, ApnsCredentials):
        _check_apns_auth(creds)
    return creds, shown_once
