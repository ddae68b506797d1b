"""Which URLs and addresses pushlane will send to: browser-supplied Web Push endpoints and app-supplied webhooks
are SSRF vectors, so only https on 443, allowed push-service hosts, and only globally routable addresses.

A name is resolved once, by `checked_addresses`, and the connection goes to an address it returned: resolving
again to connect would let a rebinding DNS server answer a public address to the check and a private one after.
"""

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

# Resolves (host, port) to addresses in the order to try them; raises OSError when it cannot.
Resolver = Callable[[str, int], Sequence[str]]

# is_global lets these through (3.11 at least; multicast on every version, so it is checked apart): IETF
# protocol assignments (192.0.0.9/.10 are anycast services, never a receiver) and the dead 6to4 relay anycast.
_NOT_GLOBAL_V4 = (ipaddress.IPv4Network("192.0.0.0/24"), ipaddress.IPv4Network("192.88.99.0/24"))
# IPv6 unicast that reaches the internet lies in 2000::/3 (RFC 4291); of that, IETF protocol assignments
# (Teredo included), 6to4 (an IPv4 address behind some relay) and documentation ranges are not.
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_NOT_GLOBAL_V6 = tuple(
    ipaddress.IPv6Network(network) for network in ("2001::/23", "2002::/16", "2001:db8::/32", "3fff::/20")
)
# NAT64 (RFC 6052 well-known prefix) translates to the IPv4 address in the last 32 bits: judge that one.
_NAT64_V6 = ipaddress.IPv6Network("64:ff9b::/96")


class EndpointNotAllowed(ValueError):
    """The URL is not one pushlane may contact; the message says why."""


class NameNotResolved(EndpointNotAllowed):
    """The host has no address right now: DNS may answer later, so this is no verdict on the URL."""


def resolve_host(host: str, port: int) -> list[str]:
    """The system resolver: getaddrinfo's TCP addresses for host, in its order of preference, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_global_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ip is globally routable, judging the IPv4 address inside IPv4-mapped and NAT64 ones."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped
        if embedded is None and ip in _NAT64_V6:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_global_address(embedded)
        # ip.is_global differs between 3.11 and 3.13 (6to4, 2001::/23 exceptions): the ranges above decide.
        return ip in _GLOBAL_UNICAST_V6 and ip.is_global and not any(ip in network for network in _NOT_GLOBAL_V6)
    return ip.is_global and not ip.is_multicast and not any(ip in network for network in _NOT_GLOBAL_V4)


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _allowed(address: str, *, allow_loopback: bool) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return is_global_address(ip) or (allow_loopback and ip.is_loopback)


def checked_addresses(
    host: str, port: int, *, allow_loopback: bool = False, resolver: Resolver = resolve_host
) -> list[str]:
    """Resolve host once and return the addresses to connect to, each globally routable (or loopback, with
    allow_loopback); raises EndpointNotAllowed if any answer is not, or if host does not resolve."""
    host = host.strip("[]")
    if _is_literal(host):
        addresses = [host]
    else:
        try:
            addresses = list(resolver(host, port))
        except OSError as error:
            raise NameNotResolved(f"{host} does not resolve") from error
    if not addresses:
        raise NameNotResolved(f"{host} does not resolve")
    # All, not any: the connection may go to whichever answer works, so every one must be acceptable.
    for address in addresses:
        if not _allowed(address, allow_loopback=allow_loopback):
            raise EndpointNotAllowed(f"{host} resolves to {address}, which is not globally routable")
    return addresses


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
    """Accept a Web Push endpoint only on an allowed push-service host (exact or a subdomain).

    The name is not resolved here: the connection checks the addresses it connects to (checked_addresses)."""
    host, _ = _split(url, allow_loopback=allow_loopback)
    if allow_loopback and host in _LOOPBACK_NAMES:
        return
    if not any(host == allowed or host.endswith("." + allowed) for allowed in allowed_hosts):
        raise EndpointNotAllowed(f"{host} is not an allowed push service")


def check_webhook_url(
    url: str, *, allow_loopback: bool = False, resolve: bool = True, resolver: Resolver = resolve_host
) -> None:
    """Accept a webhook URL only if it names (and, with resolve, resolves to) globally routable addresses.

    Resolving here only vets the URL early: a sender must still connect to checked addresses (pinned_session),
    since the name may resolve differently by the time it connects."""
    host, port = _split(url, allow_loopback=allow_loopback)
    if allow_loopback and host in _LOOPBACK_NAMES:
        return
    if resolve or _is_literal(host):
        checked_addresses(host, port, allow_loopback=allow_loopback, resolver=resolver)
