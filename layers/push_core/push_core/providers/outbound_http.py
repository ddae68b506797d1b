"""A requests session for app-supplied URLs (webhooks, feedback notifications, a service account's token_uri)
that connects only to addresses
it has checked: the name is resolved once, every answer must be globally routable, and the connection goes to
one of those answers while TLS (SNI, certificate) and the Host header still use the name. Redirects are never
followed, since a receiver could redirect anywhere.
"""

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool

from push_core.providers.endpoints import Resolver, checked_addresses, resolve_host


class PinnedAddressAdapter(HTTPAdapter):
    """An HTTPAdapter whose connection pools are keyed by a checked address and the name it was resolved from.

    requests documents build_connection_pool_key_attributes, get_connection_with_tls_context and add_headers
    as the points to override; urllib3 takes server_hostname as a pool key, so each (address, name) pair gets
    its own pool and a connection is never reused for another name.
    """

    def __init__(self, *, allow_loopback: bool = False, resolver: Resolver = resolve_host) -> None:
        super().__init__()
        self._allow_loopback = allow_loopback
        self._resolver = resolver

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: tuple[str, str] | str | None = None,
    ) -> HTTPConnectionPool:
        """The pool for the first checked address of the request's host; raises EndpointNotAllowed."""
        if proxies:
            raise ValueError("pinned connections do not go through proxies")  # a proxy would resolve the name
        host_params, key_attributes = self.build_connection_pool_key_attributes(
            request, True if verify is None else verify, cert
        )
        scheme, host = host_params["scheme"], host_params["host"]
        port = host_params["port"] or (443 if scheme == "https" else 80)
        # The first answer, as getaddrinfo prefers: handed the name, urllib3 would resolve it again.
        address = checked_addresses(host, port, allow_loopback=self._allow_loopback, resolver=self._resolver)[0]
        pool_kwargs: dict[str, Any] = dict(key_attributes)
        if scheme == "https":
            pool_kwargs["server_hostname"] = host
        pool: HTTPConnectionPool = self.poolmanager.connection_from_host(
            scheme=scheme, host=address, port=port, pool_kwargs=pool_kwargs
        )
        return pool

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        """Name the host in Host: the connection's own host is the address."""
        request.headers["Host"] = urlsplit(request.url or "").netloc.rpartition("@")[2]


class _NoRedirectSession(requests.Session):
    def get_redirect_target(self, resp: requests.Response) -> str | None:
        """Never a target: a redirect is the receiver's answer, not a new request (whatever allow_redirects says)."""
        return None


def pinned_session(*, allow_loopback: bool = False, resolver: Resolver = resolve_host) -> requests.Session:
    """A session for app-supplied https URLs: checked, pinned addresses, no proxies from the environment, and
    redirects never followed."""
    session = _NoRedirectSession()
    session.trust_env = False
    adapter = PinnedAddressAdapter(allow_loopback=allow_loopback, resolver=resolver)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
