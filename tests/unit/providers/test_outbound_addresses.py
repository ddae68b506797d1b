"""Outbound requests go only to globally routable addresses, resolved once and connected to as checked.

Nothing here leaves the process: names are answered by StubResolver, and where a provider would connect,
the connect function is replaced by one that records what it was handed and refuses.
"""

import asyncio
import base64
import secrets
import socket
from typing import Any

import pytest
import requests
import urllib3.util.connection
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from push_core.models import MessageContent, Platform, Target
from push_core.providers.contract import PushMessage, Rejected, Transient
from push_core.providers.endpoints import EndpointNotAllowed, checked_addresses
from push_core.providers.outbound_http import PinnedAddressAdapter
from push_core.providers.webhook.credentials import WebhookCredentials
from push_core.providers.webhook.provider import WebhookProvider
from push_core.providers.webpush.credentials import WebPushCredentials
from push_core.providers.webpush.provider import WebPushProvider
from push_core.providers.webpush.vapid import generate_vapid_key
from tests.fixtures.resolver import StubResolver

NOT_GLOBAL = [
    "100.64.0.1",  # CGNAT shared address space
    "100.100.100.200",  # a cloud metadata service, inside CGNAT
    "169.254.169.254",  # link-local: the EC2/GCP/Azure metadata service
    "fd00:ec2::254",  # the EC2 metadata service over IPv6 (unique local)
    "2002:a9fe:a9fe::1",  # 6to4 wrapping 169.254.169.254
    "2002:808:808::1",  # 6to4 at all: a relay picks where it goes
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b:1::808:808",  # local-use NAT64
    "2001::a9fe:a9fe",  # Teredo
    "::7f00:1",  # IPv4-compatible ::127.0.0.1
    "::",
    "fc00::1",
    "fe80::1",
    "ff02::1",
    "2001:db8::1",
    "3fff::1",
    "0.0.0.0",  # noqa: S104 - refused, never bound
    "0.1.2.3",
    "10.0.0.1",
    "127.0.0.2",
    "172.16.0.1",
    "192.168.1.1",
    "192.0.0.1",
    "192.0.0.100",
    "192.0.2.1",
    "192.88.99.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.251",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
]
GLOBAL = ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001:80b::200e", "64:ff9b::808:808", "::ffff:8.8.8.8"]


class Unresolvable:
    def __call__(self, host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize("address", NOT_GLOBAL)
def test_a_name_with_any_answer_that_is_not_globally_routable_is_refused(address: str):
    with pytest.raises(EndpointNotAllowed):
        checked_addresses("hooks.example", 443, resolver=StubResolver(["8.8.8.8", address]))


@pytest.mark.parametrize("address", GLOBAL)
def test_globally_routable_answers_are_the_addresses_to_connect_to(address: str):
    assert checked_addresses("hooks.example", 443, resolver=StubResolver([address, "1.0.0.1"])) == [address, "1.0.0.1"]


def test_loopback_answers_pass_only_with_the_local_stacks_explicit_allowance():
    with pytest.raises(EndpointNotAllowed):
        checked_addresses("localhost", 8443, resolver=StubResolver(["127.0.0.1"]))
    assert checked_addresses("localhost", 8443, allow_loopback=True, resolver=StubResolver(["127.0.0.1", "::1"])) == [
        "127.0.0.1",
        "::1",
    ]
    with pytest.raises(EndpointNotAllowed):
        checked_addresses("localhost", 8443, allow_loopback=True, resolver=StubResolver(["127.0.0.1", "10.0.0.1"]))


def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(EndpointNotAllowed):
        checked_addresses("hooks.example", 443, resolver=Unresolvable())


def test_the_pinned_pool_dials_the_checked_address_while_tls_and_host_name_the_host():
    adapter = PinnedAddressAdapter(resolver=StubResolver(["2606:4700::1111"], ["127.0.0.1"]))
    request = requests.Request("POST", "https://hooks.example/h").prepare()

    pool = adapter.get_connection_with_tls_context(request, True)  # a pool connects lazily: nothing is opened
    adapter.add_headers(request)

    assert (pool.host, pool.port) == ("2606:4700::1111", 443)
    assert pool.conn_kw["server_hostname"] == "hooks.example"  # SNI and the certificate check
    assert request.headers["Host"] == "hooks.example"


@pytest.fixture
def dialled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, str | None]]:
    """Replace both connect functions (urllib3's, asyncio's) by ones that record (address, port, TLS name)
    and refuse, so a test sees where a provider would connect and no packet is ever sent."""
    calls: list[tuple[str, int, str | None]] = []

    def urllib3_connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        calls.append((address[0], address[1], None))
        raise OSError("tests never connect beyond loopback")

    async def asyncio_connect(self: Any, factory: Any, host: str, port: int, **kwargs: Any) -> Any:
        calls.append((host, port, kwargs.get("server_hostname")))
        raise OSError("tests never connect beyond loopback")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", urllib3_connect)
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", asyncio_connect)
    return calls


def _message() -> PushMessage:
    return PushMessage(publication_id="01JD0000000000000000000MSG", content=MessageContent(title="Hello", body="World"))


def _webhook(resolver: StubResolver) -> list[Any]:
    provider = WebhookProvider(WebhookCredentials(secret="whsec_" + "a" * 32), resolver=resolver)
    target = Target(device_id="hook", platform=Platform.WEBHOOK, token="https://hooks.example/h")
    return asyncio.run(provider.send([target], _message()))


def test_a_rebinding_webhook_name_is_connected_to_at_the_address_that_was_checked(dialled):
    # Given a name answering a public address once, then loopback to whoever asks again
    resolver = StubResolver(["8.8.8.8"], ["127.0.0.1"])

    [outcome] = _webhook(resolver)

    assert dialled == [("8.8.8.8", 443, None)]
    assert resolver.lookups == ["hooks.example"]
    assert isinstance(outcome, Transient)  # the recording connect refused


def test_a_webhook_name_answering_a_metadata_address_is_never_dialled(dialled):
    [outcome] = _webhook(StubResolver(["8.8.8.8", "169.254.169.254"]))
    assert outcome == Rejected("EndpointNotAllowed")
    assert dialled == []


def _subscriber() -> Target:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    keys = {
        key: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        for key, raw in (("p256dh", point), ("auth", secrets.token_bytes(16)))
    }
    return Target(device_id="browser", platform=Platform.WEBPUSH, token="https://updates.push.example/w/1", push=keys)


def _webpush(resolver: StubResolver) -> list[Any]:
    private, public = generate_vapid_key()
    credentials = WebPushCredentials(
        subject="mailto:ops@example.com", vapid_private_key=private, vapid_public_key=public
    )
    provider = WebPushProvider(credentials, allowed_hosts=("push.example",), resolver=resolver)

    async def send() -> list[Any]:
        try:
            return list(await provider.send([_subscriber()], _message()))
        finally:
            await provider.close()

    return asyncio.run(send())


def test_a_rebinding_push_service_name_is_connected_to_at_the_address_that_was_checked(dialled):
    resolver = StubResolver(["8.8.8.8"], ["127.0.0.1"])

    [outcome] = _webpush(resolver)

    assert dialled == [("8.8.8.8", 443, "updates.push.example")]
    assert resolver.lookups == ["updates.push.example"]
    assert outcome == Transient("ConnectError", 1.0)


def test_an_allowed_push_service_answering_a_private_address_is_never_dialled_nor_pruned(dialled):
    [outcome] = _webpush(StubResolver(["10.0.0.1"]))
    assert dialled == []
    assert outcome == Transient("ConnectError", 1.0)  # retried: an allowed service's DNS fault, not a dead target
