"""FCM access tokens: a signed assertion exchanged at a real (local) token endpoint, cached, refreshed, errors typed."""

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from push_core.providers.fcm.oauth import (
    FCM_SCOPE,
    GRANT_TYPE,
    TOKEN_URI_NOT_ALLOWED,
    AccessTokenSource,
    OAuthError,
    ServiceAccount,
)
from push_core.providers.outbound_http import pinned_session
from tests.fixtures.resolver import StubResolver

CLIENT_EMAIL = "pushlane@project-1.iam.gserviceaccount.com"
KEY_ID = "0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class TokenServer:
    """A Google token endpoint on 127.0.0.1 that checks assertions the way Google does."""

    def __init__(self, public_key: rsa.RSAPublicKey, clock: Clock) -> None:
        self.public_key = public_key
        self.clock = clock
        self.exchanges: list[dict[str, Any]] = []
        self.reply: tuple[int, bytes] | None = None  # fixed reply instead of a token
        self.delay_s = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                form = parse_qs(self.rfile.read(length).decode())
                status, body = server.answer(self.headers.get("Content-Type", ""), form)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)  # quick shutdown
        self.thread.start()

    def answer(self, content_type: str, form: dict[str, list[str]]) -> tuple[int, bytes]:
        time.sleep(self.delay_s)
        if self.reply is not None:
            return self.reply
        if content_type != "application/x-www-form-urlencoded" or form.get("grant_type") != [GRANT_TYPE]:
            return 400, json.dumps({"error": "unsupported_grant_type"}).encode()
        assertion = form["assertion"][0]
        try:
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=self.url,
                issuer=CLIENT_EMAIL,
                options={"verify_exp": False, "verify_iat": False},  # checked against the test's clock below
            )
        except jwt.InvalidTokenError:
            return 400, json.dumps({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}).encode()
        now = int(self.clock())
        if claims.get("scope") != FCM_SCOPE or claims["iat"] != now or claims["exp"] != now + 3600:
            return 400, json.dumps({"error": "invalid_scope", "error_description": "bad claims"}).encode()
        self.exchanges.append({"header": jwt.get_unverified_header(assertion), "claims": claims})
        token = f"ya29.token-{len(self.exchanges)}"
        return 200, json.dumps({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}).encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(rsa_key, clock) -> Iterator[TokenServer]:
    token_server = TokenServer(rsa_key.public_key(), clock)
    yield token_server
    token_server.close()


@pytest.fixture
def account(rsa_key, server) -> ServiceAccount:
    return ServiceAccount(
        project_id="project-1",
        client_email=CLIENT_EMAIL,
        private_key=_pem(rsa_key),
        private_key_id=KEY_ID,
        token_uri=server.url,
    )


def test_token_is_exchanged_for_an_rs256_assertion_with_the_fcm_scope(account, server, clock):
    token = AccessTokenSource(account, allow_loopback=True, clock=clock).token()

    assert token == "ya29.token-1"
    [exchange] = server.exchanges
    assert exchange["header"] == {"alg": "RS256", "kid": KEY_ID, "typ": "JWT"}
    assert exchange["claims"] == {
        "iss": CLIENT_EMAIL,
        "scope": FCM_SCOPE,
        "aud": server.url,
        "iat": int(clock.now),
        "exp": int(clock.now) + 3600,
    }


def test_token_is_cached_until_expiry_minus_the_margin(account, server, clock):
    source = AccessTokenSource(account, allow_loopback=True, clock=clock, refresh_margin_s=300)
    start = clock.now
    first = source.token()

    clock.now = start + 3599 - 300 - 0.001
    assert source.token() == first
    assert len(server.exchanges) == 1

    clock.now = start + 3599 - 300
    assert source.token() == "ya29.token-2"


def test_invalidate_makes_the_next_call_exchange_anew(account, server, clock):
    source = AccessTokenSource(account, allow_loopback=True, clock=clock)
    rejected = source.token()

    source.invalidate(rejected)

    assert source.token() == "ya29.token-2"
    source.invalidate(rejected)  # a late 401 for the old token keeps the new one
    assert source.token() == "ya29.token-2"
    assert len(server.exchanges) == 2


def test_concurrent_callers_share_one_exchange(account, server, clock):
    server.delay_s = 0.05
    source = AccessTokenSource(account, allow_loopback=True, clock=clock)
    start = threading.Barrier(8)
    results: list[str] = []

    def call() -> None:
        start.wait()
        results.append(source.token())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == ["ya29.token-1"] * 8
    assert len(server.exchanges) == 1


def test_a_refused_assertion_raises_oauth_error_with_googles_reason(rsa_key, server, clock):
    impostor = rsa.generate_private_key(65537, 2048)
    account = ServiceAccount(
        project_id="project-1", client_email=CLIENT_EMAIL, private_key=_pem(impostor), token_uri=server.url
    )

    with pytest.raises(OAuthError) as caught:
        AccessTokenSource(account, allow_loopback=True, clock=clock).token()

    assert (caught.value.reason, caught.value.status) == ("invalid_grant", 400)
    assert caught.value.description == "Invalid JWT Signature."


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        pytest.param(503, b"<html>unavailable</html>", "HTTP503", id="non-json-error"),
        pytest.param(401, b'{"error": "invalid_client"}', "invalid_client", id="json-error"),
        pytest.param(200, b'{"token_type": "Bearer"}', "invalid_response", id="no-token"),
        pytest.param(200, b'{"access_token": "ya29.x", "expires_in": "soon"}', "invalid_response", id="bad-expiry"),
        pytest.param(200, b"[]", "invalid_response", id="not-an-object"),
    ],
)
def test_unusable_answers_raise_oauth_error(account, server, clock, status, body, reason):
    server.reply = (status, body)

    with pytest.raises(OAuthError) as caught:
        AccessTokenSource(account, allow_loopback=True, clock=clock).token()

    assert (caught.value.reason, caught.value.status) == (reason, status)


def test_an_unreachable_token_endpoint_raises_oauth_error_from_the_network_error(rsa_key, clock):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    account = ServiceAccount(
        project_id="p",
        client_email=CLIENT_EMAIL,
        private_key=_pem(rsa_key),
        token_uri=f"http://127.0.0.1:{closed_port}/",
    )

    with pytest.raises(OAuthError) as caught:
        AccessTokenSource(account, allow_loopback=True, clock=clock).token()

    assert caught.value.reason == "network"
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_a_failed_exchange_is_retried_on_the_next_call(account, server, clock):
    source = AccessTokenSource(account, allow_loopback=True, clock=clock)
    server.reply = (500, b"{}")
    with pytest.raises(OAuthError):
        source.token()

    server.reply = None

    assert source.token() == "ya29.token-1"


def test_verify_is_passed_on_each_call_because_the_environment_overrides_a_sessions_own(account, clock):
    seen: dict[str, Any] = {}

    class RecordingSession(requests.Session):
        def post(self, url, data=None, json=None, **kwargs):
            seen.update(kwargs)
            return super().post(url, data=data, json=json, **kwargs)

    AccessTokenSource(
        account, allow_loopback=True, clock=clock, session=RecordingSession(), verify="/etc/pushlane/ca.pem"
    ).token()

    assert seen["verify"] == "/etc/pushlane/ca.pem"


def test_service_account_reads_googles_json_and_ignores_other_keys(rsa_key):
    document = {
        "type": "service_account",
        "project_id": "project-1",
        "private_key_id": KEY_ID,
        "private_key": _pem(rsa_key),
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "universe_domain": "googleapis.com",
    }

    account = ServiceAccount.model_validate_json(json.dumps(document))

    assert (account.project_id, account.client_email, account.private_key_id) == ("project-1", CLIENT_EMAIL, KEY_ID)
    assert not hasattr(account, "client_id")


@pytest.mark.parametrize(
    "private_key",
    [
        pytest.param(_pem(ec.generate_private_key(ec.SECP256R1())), id="ec-key"),
        pytest.param("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n", id="garbage"),
    ],
)
def test_service_account_refuses_a_key_that_is_not_rsa(private_key):
    with pytest.raises(ValidationError, match="private_key"):
        ServiceAccount(project_id="p", client_email=CLIENT_EMAIL, private_key=private_key)


@pytest.mark.parametrize(
    "token_uri",
    ["https://169.254.169.254/token", "https://10.0.0.8/token", "https://[::1]/token", "https://100.100.100.200/t"],
)
def test_a_token_uri_on_a_non_public_address_is_never_contacted(rsa_key, clock, token_uri: str):
    # The service-account JSON is the app's: its token_uri is an outbound URL like a webhook's.
    account = ServiceAccount(
        project_id="project-1", client_email=CLIENT_EMAIL, private_key=_pem(rsa_key), token_uri=token_uri
    )
    with pytest.raises(OAuthError) as refused:
        AccessTokenSource(account, clock=clock).token()
    assert refused.value.reason == TOKEN_URI_NOT_ALLOWED


def test_a_token_uri_that_resolves_to_a_private_address_is_never_contacted(rsa_key, clock):
    resolver = StubResolver(["10.1.2.3"])
    account = ServiceAccount(
        project_id="project-1",
        client_email=CLIENT_EMAIL,
        private_key=_pem(rsa_key),
        token_uri="https://oauth2.example.com/token",
    )
    source = AccessTokenSource(account, clock=clock, session=pinned_session(resolver=resolver))
    with pytest.raises(OAuthError) as refused:
        source.token()
    assert refused.value.reason == TOKEN_URI_NOT_ALLOWED
    assert resolver.lookups == ["oauth2.example.com"]
