"""FCM HTTP v1 access tokens: a service account's signed assertion exchanged for an hour-long OAuth2 token.

google-auth does this too, but drags in its own transport stack; the exchange is one form POST with pyjwt
and requests, which the layer already carries.
"""

import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Self

import jwt
import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ConfigDict, model_validator

from push_core.providers.endpoints import EndpointNotAllowed
from push_core.providers.outbound_http import pinned_session

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600  # Google's maximum
TIMEOUT_S = (5.0, 10.0)  # connect, read


class ServiceAccount(BaseModel):
    """The fields of a Google service-account JSON that FCM HTTP v1 needs (other keys are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    project_id: str
    client_email: str
    private_key: str
    private_key_id: str | None = None
    token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret

    @model_validator(mode="after")
    def _private_key_is_rsa(self) -> Self:
        rsa_signing_key(self.private_key)
        return self


@lru_cache(maxsize=64)
def rsa_signing_key(private_key_pem: str) -> rsa.RSAPrivateKey:
    """Parse a service account's PEM key once (loading an RSA key costs milliseconds); ValueError unless RSA."""
    # Escaped newlines survive when the JSON was pasted through an environment variable.
    pem = private_key_pem.strip().replace("\\n", "\n").encode()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise ValueError("private_key is not an unencrypted PEM private key") from error
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("private_key is not an RSA key")
    return key


# The reason of an OAuthError whose token_uri names an address pushlane never contacts (a misconfiguration).
TOKEN_URI_NOT_ALLOWED = "token_uri_not_allowed"  # noqa: S105 - a reason code, not a secret


class OAuthError(Exception):
    """The token endpoint refused the assertion, answered nonsense, or could not be reached.

    reason is Google's `error` code (invalid_grant, invalid_client, ...), `HTTP<status>` when the
    answer had none, `invalid_response` for a 200 without a usable token, or `network`.
    """

    def __init__(self, reason: str, status: int | None = None, description: str = "") -> None:
        super().__init__(f"{reason}: {description}" if description else reason)
        self.reason = reason
        self.status = status
        self.description = description


class AccessTokenSource:
    """A cached FCM access token for one service account; thread-safe, one refresh at a time."""

    def __init__(
        self,
        account: ServiceAccount,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        refresh_margin_s: int = 300,
        verify: str | bool = True,
        allow_loopback: bool = False,
    ) -> None:
        self.account = account
        # token_uri comes from the app's service-account JSON: an outbound URL like a webhook's.
        self._session = session if session is not None else pinned_session(allow_loopback=allow_loopback)
        self._clock = clock
        self._refresh_margin_s = refresh_margin_s
        self._verify = verify
        self._lock = threading.Lock()
        # (token, refresh at) in one tuple so the lock-free fast path reads a consistent pair.
        self._cached: tuple[str, float] | None = None

    def token(self) -> str:
        """A valid access token, from the cache or freshly exchanged; OAuthError when Google says no."""
        cached = self._cached
        if cached is not None and self._clock() < cached[1]:
            return cached[0]
        with self._lock:
            cached = self._cached
            now = self._clock()
            if cached is not None and now < cached[1]:  # another thread refreshed while this one waited
                return cached[0]
            token, expires_in = self._exchange(now)
            self._cached = (token, now + expires_in - self._refresh_margin_s)
            return token

    def invalidate(self, token: str) -> None:
        """FCM answered 401 with token: the next token() exchanges anew (unless another token is current)."""
        with self._lock:
            if self._cached is not None and self._cached[0] == token:
                self._cached = None

    def _assertion(self, now: float) -> str:
        account = self.account
        issued_at = int(now)
        claims = {
            "iss": account.client_email,
            "scope": FCM_SCOPE,
            "aud": account.token_uri,
            "iat": issued_at,
            "exp": issued_at + ASSERTION_LIFETIME_S,
        }
        headers = {"kid": account.private_key_id} if account.private_key_id else None
        return jwt.encode(claims, rsa_signing_key(account.private_key), algorithm="RS256", headers=headers)

    def _exchange(self, now: float) -> tuple[str, float]:
        try:
            # verify= on the call: a Session's own verify loses to REQUESTS_CA_BUNDLE.
            response = self._session.post(
                self.account.token_uri,
                data={"grant_type": GRANT_TYPE, "assertion": self._assertion(now)},
                timeout=TIMEOUT_S,
                verify=self._verify,
                allow_redirects=False,
            )
        except EndpointNotAllowed as error:
            raise OAuthError(TOKEN_URI_NOT_ALLOWED, None, str(error)) from error
        except requests.RequestException as error:
            raise OAuthError("network", None, type(error).__name__) from error
        body = _json_object(response)
        if response.status_code != 200:
            raise OAuthError(
                str(body.get("error") or f"HTTP{response.status_code}"),
                response.status_code,
                str(body.get("error_description") or ""),
            )
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float) or expires_in <= 0:
            raise OAuthError("invalid_response", response.status_code, "no access_token/expires_in in the answer")
        return token, float(expires_in)


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
