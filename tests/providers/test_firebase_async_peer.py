"""The bench's firebase-admin send_each_async side: with the retried responses closed it gets through 503s.

firebase-admin 7's async retry drops each 503 it retries without closing it, which keeps the HTTP/2
stream open in httpx; after enough of them send_each_async waits forever. The comparison is only fair if
that path finishes, so the bench closes them.
"""

import asyncio

import pytest

from bench.sides import close_firebase_retried_responses, firebase_app, send_with_firebase_async
from dev.emulators import FcmEmulator

SENDS = 5_000  # ten send_each_async calls: enough dropped streams to hang without the fix
pytestmark = pytest.mark.filterwarnings("ignore:Message.token is deprecated")  # the emulator speaks v1 tokens


def test_send_each_async_gets_through_503s_once_retried_responses_are_closed(
    fcm: FcmEmulator, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SSL_CERT_FILE", fcm.ca_path)  # httpx and requests trust the emulator's CA
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fcm.ca_path)
    fcm.faults.update(unavailable_rate=0.02, retry_after_s=0)
    config = {"fcm": {"url": fcm.url, "service_account": fcm.create_service_account("bench-project")}}
    app = firebase_app(config, name="retried-responses")
    closed = close_firebase_retried_responses()
    before = closed()

    outcomes = asyncio.run(asyncio.wait_for(send_with_firebase_async(app, SENDS), timeout=120))

    assert outcomes == {"delivered": SENDS}  # every 503 was retried until it went through
    assert closed() - before > 0  # the fix ran where the retry drops the response
