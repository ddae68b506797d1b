"""Web Push (RFC 8030/8291/8292): encrypt per subscription, VAPID per push-service origin, HTTP/2 per origin."""

import asyncio
import base64
import hashlib
import re
from collections import OrderedDict
from collections.abc import Sequence
from urllib.parse import urlsplit

from push_core.config import Settings
from push_core.http2 import ConnectError, Http2Client, RequestTemplate, Response
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
    Resolver,
    check_push_endpoint,
    checked_addresses,
    resolve_host,
)
from push_core.providers.streams import Pending, settle
from push_core.providers.tls import client_context
from push_core.providers.webpush.credentials import WebPushCredentials
from push_core.providers.webpush.encryption import EncryptionError, PlaintextTooLarge, encrypt
from push_core.providers.webpush.payload import render_payload
from push_core.providers.webpush.target import SubscriptionKeys
from push_core.providers.webpush.vapid import VapidSigner

DEFAULT_TTL_S = 28 * 86_400  # the longest push services keep a message
_URGENCY = {5: "high", 4: "high", 3: "normal", 2: "low", 1: "very-low"}
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_MAX_CLIENTS = 32

# Web Push answers by status; the status is the reason.
WEBPUSH_ERRORS: dict[str, ErrorMeaning] = {
    "404": ErrorMeaning(InvalidTarget),
    "410": ErrorMeaning(InvalidTarget),
    "400": ErrorMeaning(Rejected),
    "401": ErrorMeaning(Rejected),
    "403": ErrorMeaning(Rejected),
    "413": ErrorMeaning(Rejected),
    "429": ErrorMeaning(Transient, min_retry_after_s=60),
}


def topic_header(collapse_key: str) -> str:
    """A Topic header value (≤ 32 URL-safe characters) for any collapse key."""
    if _TOPIC.match(collapse_key):
        return collapse_key
    return base64.urlsafe_b64encode(hashlib.sha256(collapse_key.encode()).digest()[:24]).decode()


def _outcome(response: Response) -> Outcome:
    if response.status in (200, 201, 202):
        return Delivered(response.headers.get("location"))
    return outcome_for_status(WEBPUSH_ERRORS, response.status, response.headers.get("retry-after"))


class WebPushProvider:
    """Sends Web Push messages for one app (one VAPID key)."""

    def __init__(
        self,
        credentials: WebPushCredentials,
        *,
        allowed_hosts: tuple[str, ...],
        allow_loopback: bool = False,
        ca_bundle: str | None = None,
        max_in_flight: int = 1000,
        request_timeout_s: float = 10.0,
        resolver: Resolver = resolve_host,
    ) -> None:
        self._vapid = VapidSigner(credentials.vapid_private_key, credentials.subject)
        self._allowed_hosts = allowed_hosts
        self._allow_loopback = allow_loopback
        self._resolver = resolver
        self._context = client_context(ca_bundle)
        self._max_in_flight = max_in_flight
        self._request_timeout_s = request_timeout_s
        self._clients: OrderedDict[str, Http2Client] = OrderedDict()
        self._templates: dict[tuple[str, tuple[tuple[str, str], ...], str], RequestTemplate] = {}

    def _client(self, origin: str) -> Http2Client:
        client = self._clients.get(origin)
        if client is None:
            client = Http2Client(
                origin,
                ssl_context=self._context,
                max_in_flight=self._max_in_flight,
                request_timeout=self._request_timeout_s,
                resolve=self._checked_addresses,
            )
            self._clients[origin] = client
            if len(self._clients) > _MAX_CLIENTS:
                _, oldest = self._clients.popitem(last=False)
                asyncio.ensure_future(oldest.close())  # noqa: RUF006 - closing in the background is fine
        return client

    async def _checked_addresses(self, host: str, port: int) -> list[str]:
        """The push service's addresses, resolved once per connection and each globally routable; the connection
        goes to one of them. A private answer for an allowed push service is a DNS fault, not a dead subscription:
        its requests fail as not sent (retried), and nothing is pruned."""
        try:
            return await asyncio.to_thread(
                checked_addresses, host, port, allow_loopback=self._allow_loopback, resolver=self._resolver
            )
        except EndpointNotAllowed as error:
            raise ConnectError(str(error)) from error

    async def send(self, targets: Sequence[Target], message: PushMessage) -> list[Outcome]:
        """Encrypt and send message to every subscription in targets."""
        plaintext = render_payload(message)
        headers: list[tuple[str, str]] = [
            ("content-encoding", "aes128gcm"),
            ("content-type", "application/octet-stream"),
            ("ttl", str(message.ttl_s if message.ttl_s is not None else DEFAULT_TTL_S)),
            ("urgency", "normal" if message.silent else _URGENCY[message.content.importance]),
        ]
        if message.collapse_key:
            headers.append(("topic", topic_header(message.collapse_key)))
        static = tuple(headers)
        pending = [self._submit(target, plaintext, static) for target in targets]
        return await settle(pending, _outcome)

    def _submit(self, target: Target, plaintext: bytes, static: tuple[tuple[str, str], ...]) -> Pending:
        """Encrypt for one subscription and queue its request, or the outcome that makes sending pointless."""
        endpoint = target.token or ""
        try:
            check_push_endpoint(endpoint, self._allowed_hosts, allow_loopback=self._allow_loopback)
            keys = SubscriptionKeys.of(target.push)
            body = encrypt(plaintext, keys.p256dh, keys.auth)
        except EndpointNotAllowed:  # the allow-list's verdict, not the push service's: failed, never pruned
            return Rejected("EndpointNotAllowed")
        except PlaintextTooLarge:  # the message's fault, the same for every subscription: never prune for it
            return Rejected("PayloadTooLarge")
        except EncryptionError:
            return Rejected("BadSubscriptionKeys")
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        client = self._client(origin)
        authorization = self._vapid.authorization(endpoint)
        key = (origin, static, authorization)
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) > 256:
                self._templates.clear()
            template = client.template("POST", [*static, ("authorization", authorization)])
            self._templates[key] = template
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return client.submit(template, path or "/", (), body)

    async def close(self) -> None:
        """Close every push-service connection."""
        await asyncio.gather(*(client.close() for client in self._clients.values()))


def build(creds: WebPushCredentials, settings: Settings, token_store: object = None) -> WebPushProvider:
    """The provider for one app's VAPID key, allowed the deployment's push-service hosts."""
    return WebPushProvider(
        creds,
        allowed_hosts=settings.webpush_allowed_hosts,
        allow_loopback=settings.allow_loopback_targets,
        ca_bundle=settings.provider_ca_bundle,
        max_in_flight=settings.max_in_flight,
        request_timeout_s=settings.provider_timeout_s,
    )
