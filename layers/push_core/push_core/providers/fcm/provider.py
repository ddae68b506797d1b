"""FCM HTTP v1: an OAuth2 access token from the service account, then one HTTP/2 stream per token."""

import asyncio
import json
from collections.abc import Sequence

from push_core.config import Settings
from push_core.http2 import Http2Client, RequestTemplate, Response
from push_core.models import Target
from push_core.providers.contract import (
    Delivered,
    Outcome,
    PushMessage,
    Rejected,
    Transient,
    outcome_for,
    retry_after_seconds,
)
from push_core.providers.fcm.credentials import FcmCredentials
from push_core.providers.fcm.errors import FCM_ERRORS, fallback_for_status
from push_core.providers.fcm.message import build_body
from push_core.providers.fcm.oauth import TOKEN_URI_NOT_ALLOWED, AccessTokenSource, OAuthError
from push_core.providers.payload_limits import PayloadTooLarge
from push_core.providers.streams import Pending, settle
from push_core.providers.tls import client_context

_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


class FcmProvider:
    """Sends to FCM for one Firebase project."""

    def __init__(
        self,
        credentials: FcmCredentials,
        *,
        base_url: str,
        ca_bundle: str | None = None,
        max_in_flight: int = 1000,
        request_timeout_s: float = 10.0,
        allow_loopback: bool = False,
    ) -> None:
        account = credentials.service_account
        self._tokens = AccessTokenSource(account, verify=ca_bundle or True, allow_loopback=allow_loopback)
        self._client = Http2Client(
            base_url,
            ssl_context=client_context(ca_bundle),
            max_in_flight=max_in_flight,
            request_timeout=request_timeout_s,
        )
        self._path = f"/v1/projects/{account.project_id}/messages:send"
        self._templates: dict[str, RequestTemplate] = {}

    def _template(self, access_token: str) -> RequestTemplate:
        template = self._templates.get(access_token)
        if template is None:
            self._templates.clear()  # one live access token at a time
            template = self._client.template(
                "POST", [("authorization", f"Bearer {access_token}"), ("content-type", "application/json")]
            )
            self._templates[access_token] = template
        return template

    async def send(self, targets: Sequence[Target], message: PushMessage) -> list[Outcome]:
        """Send message to every FCM registration token in targets."""
        try:
            body = build_body(message)
        except PayloadTooLarge as error:  # the data cannot fit: a payload problem, never a dead token
            return [Rejected(error.reason) for _ in targets]
        try:
            # The token endpoint is plain HTTP/1.1; a refresh happens about once an hour, off the event loop.
            access_token = await asyncio.to_thread(self._tokens.token)
        except OAuthError as error:
            if error.reason == TOKEN_URI_NOT_ALLOWED:  # retrying cannot fix the app's credentials
                return [Rejected(f"oauth:{error.reason}") for _ in targets]
            return [Transient(f"oauth:{error.reason}", 30.0) for _ in targets]
        template = self._template(access_token)
        pending: list[Pending] = [
            self._client.submit(template, self._path, (), body.for_token(target.token or "")) for target in targets
        ]
        return await settle(pending, lambda response: self._outcome(response, access_token))

    def _outcome(self, response: Response, access_token: str) -> Outcome:
        if response.status == 200:
            return Delivered(_message_name(response))
        return self._failure(response, access_token)

    def _failure(self, response: Response, access_token: str) -> Outcome:
        try:
            error = json.loads(response.body).get("error", {}) if response.body else {}
        except ValueError:
            error = {}
        codes = [d.get("errorCode") for d in error.get("details", []) if d.get("@type") == _FCM_ERROR_TYPE]
        reason = str(codes[0] if codes and codes[0] else error.get("status") or f"HTTP{response.status}")
        if reason == "INVALID_ARGUMENT" and "registration token" in str(error.get("message", "")).lower():
            reason = "INVALID_ARGUMENT:token"
        if response.status == 401 and reason != "THIRD_PARTY_AUTH_ERROR":
            self._tokens.invalidate(access_token)
            reason = "UNAUTHENTICATED"
        return outcome_for(
            FCM_ERRORS,
            reason,
            fallback=fallback_for_status(response.status),
            retry_after_s=retry_after_seconds(response.headers.get("retry-after")),
        )

    async def close(self) -> None:
        """Close the connection."""
        await self._client.close()


def _message_name(response: Response) -> str | None:
    try:
        name = json.loads(response.body).get("name")
    except ValueError:
        return None
    return str(name) if name else None


def build(creds: FcmCredentials, settings: Settings, token_store: object = None) -> FcmProvider:
    """The provider for one app's FCM service account, pointed at the deployment's base URL."""
    return FcmProvider(
        creds,
        base_url=settings.fcm_url,
        ca_bundle=settings.provider_ca_bundle,
        max_in_flight=settings.max_in_flight,
        request_timeout_s=settings.provider_timeout_s,
        allow_loopback=settings.allow_loopback_targets,
    )
