"""Provider credentials per app: what each platform needs, validated, and kept in Secrets Manager."""

import json
import ssl
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

import boto3
from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError
from pydantic import Field, TypeAdapter, ValidationError

from push_core.config import get_settings
from push_core.errors import NotFound, UnprocessableEntity
from push_core.models import Platform
from push_core.providers.apns.auth import ApnsKeyError
from push_core.providers.apns.credentials import ApnsCredentials
from push_core.providers.fcm.credentials import FcmCredentials
from push_core.providers.webhook.credentials import WebhookCredentials
from push_core.providers.webhook.signature import new_webhook_secret
from push_core.providers.webpush.credentials import WebPushCredentials
from push_core.providers.webpush.vapid import VapidKeyError, VapidSigner, generate_vapid_key

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

# Secrets are read on every delivery batch; five minutes of caching keeps Secrets Manager calls (and cost) rare.
SECRET_MAX_AGE_S = 300


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
    """The key or certificate, parsed by the code that will use it, as a 422 when it does not parse."""
    try:
        creds.check_keys()
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
