"""Which URLs pushlane will send to: browser-supplied Web Push endpoints and app-supplied webhooks are
SSRF vectors, so only https on 443, allowed push-service hosts, and never private or metadata addresses."""

import ipaddress
import socket
from urllib.parse import urlsplit

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class EndpointNotAllowed(ValueError):
    """The URL is not one pushlane may contact; the message says why."""


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def _split(url: str, *, allow_loopback: bool) -> tuple[str, int]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host:
        raise EndpointNotAllowed("only https URLs are accepted")
    if parts.username or parts.password:
        raise EndpointNotAllowed("URLs with credentials are not accepted")
    port = parts.port or 443
    loopback = host in _LOOPBACK_NAMES
    if port != 443 and not (allow_loopback and loopback):
        raise EndpointNotAllowed("only port 443 is accepted")
    if loopback and not allow_loopback:
        raise EndpointNotAllowed("loopback addresses are not accepted")
    return host, port


def check_push_endpoint(url: str, allowed_hosts: tuple[str, ...], *, allow_loopback: bool = False) -> None:
    """Accept a Web Push endpoint only on an allowed push-service host (exact or a subdomain)."""
    host, _ = _split(url, allow_loopback=allow_loopback)
    if allow_loopback and host in _LOOPBACK_NAMES:
        return
    if not any(host == allowed or host.endswith("." + allowed) for allowed in allowed_hosts):
        raise EndpointNotAllowed(f"{host} is not an allowed push service")


def check_webhook_url(url: str, *, allow_loopback: bool = False, resolve: bool = True) -> None:
    """Accept a webhook URL only if it names (and, with resolve, resolves to) public addresses."""
    host, port = _split(url, allow_loopback=allow_loopback)
    if allow_loopback and host in _LOOPBACK_NAMES:
        return
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if not _is_public(host):
            raise EndpointNotAllowed("private, loopback and link-local addresses are not accepted")
        return
    if not resolve:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
    except OSError as error:
        raise EndpointNotAllowed(f"{host} does not resolve") from error
    if not all(_is_public(str(address)) for address in addresses):
        raise EndpointNotAllowed(f"{host} resolves to a private address")
