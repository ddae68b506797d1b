"""APNs over HTTP/2: one long-lived connection per environment, one stream per device token."""

import asyncio
import json
from collections.abc import Sequence

from push_core.config import Settings
from push_core.http2 import Http2Client, RequestTemplate, Response
from push_core.models import Target
from push_core.providers.apns.auth import ApnsTokenSigner, ProviderTokenStore
from push_core.providers.apns.credentials import ApnsCredentials
from push_core.providers.apns.errors import APNS_ERRORS, fallback_for_status
from push_core.providers.apns.payload import ApnsRequest, PayloadError, build_request
from push_core.providers.apns.target import ApnsExtras
from push_core.providers.contract import (
    Delivered,
    InvalidTarget,
    Outcome,
    PushMessage,
    Rejected,
    outcome_for,
    retry_after_seconds,
)
from push_core.providers.streams import Pending, settle
from push_core.providers.tls import client_certificate_context, client_context

_TOKEN_REJECTIONS = frozenset({"ExpiredProviderToken"})


class ApnsProvider:
    """Sends to APNs for one app (one bundle id), token- or certificate-authenticated."""

    def __init__(
        self,
        credentials: ApnsCredentials,
        *,
        production_url: str,
        sandbox_url: str,
        ca_bundle: str | None = None,
        token_store: ProviderTokenStore | None = None,
        max_in_flight: int = 1000,
        request_timeout_s: float = 10.0,
        trim_payloads: bool = True,
    ) -> None:
        self.topic = credentials.topic
        self.trim_payloads = trim_payloads
        if credentials.private_key and credentials.team_id and credentials.key_id:
            self._signer: ApnsTokenSigner | None = ApnsTokenSigner(
                credentials.team_id, credentials.key_id, credentials.private_key, store=token_store
            )
            context = client_context(ca_bundle)
        else:
            # The credentials model guarantees the other method is complete.
            self._signer = None
            context = client_certificate_context(
                credentials.certificate or "", credentials.certificate_key or "", ca_bundle
            )
        self._clients = {
            environment: Http2Client(
                url, ssl_context=context, max_in_flight=max_in_flight, request_timeout=request_timeout_s
            )
            for environment, url in (("production", production_url), ("sandbox", sandbox_url))
        }
        # Header blocks are precompiled per (environment, request headers, token); rebuilt when one changes.
        self._templates: dict[tuple[str, tuple[tuple[str, str], ...], str], RequestTemplate] = {}

    def _template(self, environment: str, request: ApnsRequest, authorization: str) -> RequestTemplate:
        key = (environment, request.headers, authorization)
        template = self._templates.get(key)
        if template is None:
            headers = [*request.headers, ("authorization", authorization)] if authorization else list(request.headers)
            template = self._clients[environment].template("POST", headers)
            if len(self._templates) > 64:  # old tokens and messages: keep the cache small
                self._templates.clear()
            self._templates[key] = template
        return template

    async def send(self, targets: Sequence[Target], message: PushMessage) -> list[Outcome]:
        """Send message to every APNs token in targets (one HTTP/2 stream each, all queued at once)."""
        try:
            request = build_request(message, self.topic, trim=self.trim_payloads)
        except PayloadError as error:
            return [Rejected(error.reason) for _ in targets]
        authorization = self._signer.authorization() if self._signer else ""
        routes = {
            environment: (client, self._template(environment, request, authorization), request.payload)
            for environment, client in self._clients.items()
        }
        pending: list[Pending] = []
        for target in targets:
            client, template, payload = routes[ApnsExtras.environment_of(target.push)]
            try:
                pending.append(client.submit(template, "/3/device/" + (target.token or ""), (), payload))
            except ValueError:  # a token HTTP/2 cannot carry in a path
                pending.append(InvalidTarget("BadDeviceToken"))
        return await settle(pending, lambda response: self._outcome(response, authorization))

    def _outcome(self, response: Response, authorization: str) -> Outcome:
        if response.status == 200:
            return Delivered(response.headers.get("apns-id"))
        return self._failure(response, authorization)

    def _failure(self, response: Response, authorization: str) -> Outcome:
        try:
            body = json.loads(response.body) if response.body else {}
        except ValueError:
            body = {}
        reason = str(body.get("reason") or f"HTTP{response.status}")
        if reason in _TOKEN_REJECTIONS and self._signer is not None:
            self._signer.invalidate(authorization)
        return outcome_for(
            APNS_ERRORS,
            reason,
            fallback=fallback_for_status(response.status),
            provider_timestamp_ms=int(body["timestamp"]) if isinstance(body.get("timestamp"), int | float) else None,
            retry_after_s=retry_after_seconds(response.headers.get("retry-after")),
        )

    async def close(self) -> None:
        """Close both connections (GOAWAY)."""
        await asyncio.gather(*(client.close() for client in self._clients.values()))


def build(creds: ApnsCredentials, settings: Settings, token_store: ProviderTokenStore | None) -> ApnsProvider:
    """The provider for one app's APNs credentials, pointed at the deployment's base URLs."""
    return ApnsProvider(
        creds,
        production_url=settings.apns_production_url,
        sandbox_url=settings.apns_sandbox_url,
        ca_bundle=settings.provider_ca_bundle,
        token_store=token_store,
        max_in_flight=settings.max_in_flight,
        request_timeout_s=settings.provider_timeout_s,
    )
