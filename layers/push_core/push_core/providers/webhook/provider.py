"""Webhooks: a signed JSON POST per device URL, over HTTP/1.1 (receivers are ordinary web servers)."""

import asyncio
import json
import time
from collections.abc import Sequence

import requests

from push_core.config import Settings
from push_core.models import Target
from push_core.providers.contract import (
    Delivered,
    ErrorMeaning,
    InvalidTarget,
    Outcome,
    PushMessage,
    Rejected,
    Transient,
    outcome_for_status,
)
from push_core.providers.endpoints import (
    EndpointNotAllowed,
    NameNotResolved,
    Resolver,
    check_webhook_url,
    resolve_host,
)
from push_core.providers.outbound_http import pinned_session
from push_core.providers.webhook.credentials import WebhookCredentials
from push_core.providers.webhook.signature import SIGNATURE_HEADER, sign

TIMEOUT_S = 10.0
# A receiver answers by status: gone means the hook was removed on purpose.
WEBHOOK_ERRORS: dict[str, ErrorMeaning] = {
    "404": ErrorMeaning(InvalidTarget),
    "410": ErrorMeaning(InvalidTarget),
    "408": ErrorMeaning(Transient, min_retry_after_s=5),
    "429": ErrorMeaning(Transient, min_retry_after_s=30),
}


def render_body(target: Target, message: PushMessage, sent_at: int) -> bytes:
    """The JSON a webhook receives."""
    content = message.content
    document = {
        "pushlane_id": message.publication_id,
        "device_id": target.device_id,
        "title": content.title,
        "body": content.body,
        "link": content.link,
        "importance": content.importance,
        "data": content.data,
        "sent_at": sent_at,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookProvider:
    """Posts messages to webhook devices of one app, signed with the app's webhook secret."""

    def __init__(
        self,
        credentials: WebhookCredentials,
        *,
        allow_loopback: bool = False,
        ca_bundle: str | None = None,
        resolver: Resolver = resolve_host,
    ):
        self._secret = credentials.secret
        self._allow_loopback = allow_loopback
        # requests would let REQUESTS_CA_BUNDLE override a Session's verify; pass it on every call instead.
        self._verify: str | bool = ca_bundle or True
        self._session = pinned_session(allow_loopback=allow_loopback, resolver=resolver)

    async def send(self, targets: Sequence[Target], message: PushMessage) -> list[Outcome]:
        """POST message to every webhook URL in targets, concurrently in worker threads."""
        return list(await asyncio.gather(*(asyncio.to_thread(self._post, t, message) for t in targets)))

    def _post(self, target: Target, message: PushMessage) -> Outcome:
        url = target.token or ""
        try:
            # The URL's form here; its addresses as the session connects, so they are checked exactly once.
            check_webhook_url(url, allow_loopback=self._allow_loopback, resolve=False)
        except EndpointNotAllowed:
            return Rejected("EndpointNotAllowed")
        now = int(time.time())
        body = render_body(target, message, now)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "pushlane-webhook/1",
            SIGNATURE_HEADER: sign(self._secret, body, now),
            "Pushlane-Message-Id": message.publication_id,
        }
        try:
            response = self._session.post(
                url, data=body, headers=headers, timeout=TIMEOUT_S, allow_redirects=False, verify=self._verify
            )
        except NameNotResolved:
            return Transient("NameNotResolved", 60.0)
        except EndpointNotAllowed:  # where the name points now, not a dead hook: failed, never pruned
            return Rejected("EndpointNotAllowed")
        except requests.Timeout:
            return Transient("Timeout", 5.0)
        except requests.RequestException as error:
            return Transient(type(error).__name__, 5.0)
        if 200 <= response.status_code < 300:
            return Delivered(response.headers.get("X-Request-Id"))
        return outcome_for_status(WEBHOOK_ERRORS, response.status_code, response.headers.get("Retry-After"))

    async def close(self) -> None:
        """Release pooled connections."""
        self._session.close()


def build(creds: WebhookCredentials, settings: Settings, token_store: object = None) -> WebhookProvider:
    """The provider for one app's webhook signing secret."""
    return WebhookProvider(creds, allow_loopback=settings.allow_loopback_targets, ca_bundle=settings.provider_ca_bundle)
