"""Rate limits and quotas through the real handlers and routes, on moto, with the template's own table.

The deployment's limits are tightened through the environment (what the template parameters set), so
each is met in a few requests. Windows are fixed; a test that counts up to a limit first waits until
the window it counts in has enough time left, so no window ends half-way through.
"""

import re
import time
from collections.abc import Iterator

import pytest

from push_core.limits import HOUR_S, MINUTE_S, Policy
from tests.integration.harness import LocalAws, local_aws

PER_KEY = 20
PER_APP = 30
FAILED_AUTH = 3
FAILED_AUTH_WINDOW_S = 3600
MAX_DEVICES = 8
MAX_TOPICS = 2
PUBLICATIONS = 2
DELIVERIES = 5
SOURCE_IP = "127.0.0.1"  # the gateway's requestContext.http.sourceIp for the test client
WRONG_KEY = "pl_sk_0123456789abcdef_" + "00" * 20


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    settings = {
        "RATE_LIMIT_PER_KEY": str(PER_KEY),
        "RATE_LIMIT_PER_APP": str(PER_APP),
        "FAILED_AUTH_PER_IP": str(FAILED_AUTH),
        "FAILED_AUTH_WINDOW_S": str(FAILED_AUTH_WINDOW_S),
        "MAX_DEVICES_PER_APP": str(MAX_DEVICES),
        "MAX_TOPICS_PER_DEVICE": str(MAX_TOPICS),
        "PUBLICATIONS_PER_MINUTE": str(PUBLICATIONS),
        "DELIVERIES_PER_HOUR": str(DELIVERIES),
    }
    with local_aws(settings=settings) as deployed:
        yield deployed


def _with_time_left(window_s: int, *scopes: str, needed_s: int = 10) -> None:
    """Wait until the current window of every scope has needed_s left (at most needed_s)."""
    policy = Policy("any", 1, window_s)
    now = time.time()
    left = min(policy.window(scope, int(now))[1] - now for scope in scopes)
    if left < needed_s:
        time.sleep(left + 1)


def _key_id(token: str) -> str:
    return token.split("_")[2]


def _first(field: str) -> tuple[str, dict[str, int]]:
    """The first item of a RateLimit or RateLimit-Policy field: its name and integer parameters."""
    match = re.match(r'^"([a-z_]+)"((?:;[a-z]+=\d+)+)', field)
    assert match, field
    return match.group(1), {k: int(v) for k, v in re.findall(r";([a-z]+)=(\d+)", match.group(2))}


def test_a_key_over_its_rate_gets_429_with_retry_after_and_ratelimit_headers(aws: LocalAws):
    app = aws.new_app()
    _with_time_left(MINUTE_S, f"key#{_key_id(app['secret'])}", f"app#{app['id']}")
    for sent in range(1, PER_KEY + 1):
        reply = aws.http("GET", f"/v1/apps/{app['id']}", app["secret"])
        assert reply.status == 200, reply.body
        assert reply.headers["RateLimit-Policy"] == f'"key";q={PER_KEY};w=60, "app";q={PER_APP};w=60'
        name, standing = _first(reply.headers["RateLimit"])
        assert (name, standing["r"]) == ("key", PER_KEY - sent)
        assert 0 < standing["t"] <= 60

    refused = aws.http("GET", f"/v1/apps/{app['id']}", app["secret"])

    assert refused.status == 429
    assert refused.body["error"]["code"] == "rate_limited"
    retry_after = int(refused.headers["Retry-After"])
    assert 0 < retry_after <= 60
    assert refused.headers["RateLimit-Policy"] == f'"key";q={PER_KEY};w=60'
    assert refused.headers["RateLimit"] == f'"key";r=0;t={retry_after}'
    # The limit is the key's: the app's other key still gets through.
    assert aws.http("POST", "/v1/devices", app["public"], {"platform": "inbox"}).status == 201


def test_an_apps_keys_together_are_held_to_the_apps_rate(aws: LocalAws):
    app = aws.new_app()
    _with_time_left(MINUTE_S, f"app#{app['id']}", f"key#{_key_id(app['secret'])}", f"key#{_key_id(app['public'])}")
    device = aws.new_device(app)  # 1 request
    for _ in range(15):
        assert aws.http("GET", f"/v1/apps/{app['id']}", app["secret"]).status == 200
    for _ in range(PER_APP - 16):  # refused by role, but still requests the app made
        assert aws.http("GET", "/v1/topics/news", app["public"]).status == 403

    refused = aws.http("GET", f"/v1/devices/{device['id']}", device["key"])

    assert refused.status == 429, refused.body
    assert refused.body["error"]["code"] == "rate_limited"
    assert refused.headers["RateLimit-Policy"] == f'"app";q={PER_APP};w=60'
    assert _first(refused.headers["RateLimit"]) == ("app", {"r": 0, "t": int(refused.headers["Retry-After"])})


def test_failed_authentication_has_a_stricter_budget_per_source_address(aws: LocalAws):
    app = aws.new_app()
    _with_time_left(FAILED_AUTH_WINDOW_S, f"ip#{SOURCE_IP}")
    for _ in range(FAILED_AUTH):
        assert aws.http("GET", f"/v1/apps/{app['id']}", WRONG_KEY).status == 401

    refused = aws.http("GET", f"/v1/apps/{app['id']}", WRONG_KEY)

    assert refused.status == 429
    assert refused.body["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= FAILED_AUTH_WINDOW_S
    assert refused.headers["RateLimit-Policy"] == f'"failed_auth";q={FAILED_AUTH};w={FAILED_AUTH_WINDOW_S}'
    # A working key from the same address is not held back by someone else's guessing.
    assert aws.http("GET", f"/v1/apps/{app['id']}", app["secret"]).status == 200


def test_publications_per_minute_are_a_per_app_quota(aws: LocalAws):
    app = aws.new_app()
    _with_time_left(MINUTE_S, f"app#{app['id']}")
    accepted = [aws.publish(app, topics=["*"]) for _ in range(PUBLICATIONS)]

    refused = aws.http("POST", "/v1/messages", app["secret"], {"body": "one too many", "topics": ["*"]})

    assert refused.status == 429
    assert refused.body["error"]["code"] == "rate_limited"
    assert refused.headers["RateLimit-Policy"] == f'"publications";q={PUBLICATIONS};w=60'
    assert int(refused.headers["Retry-After"]) > 0
    assert aws.publication(app, accepted[0])["id"] == accepted[0]
    other = aws.new_app()
    assert aws.http("POST", "/v1/messages", other["secret"], {"body": "another app", "topics": ["*"]}).status == 202


def test_devices_per_app_are_a_quota_that_deleting_a_device_frees(aws: LocalAws):
    app = aws.new_app()
    devices = [aws.new_device(app, token=f"device-{n}") for n in range(MAX_DEVICES)]

    refused = aws.http("POST", "/v1/devices", app["public"], {"platform": "inbox", "token": "one-more"})

    assert refused.status == 409
    assert refused.body["error"]["code"] == "device_quota_exceeded"
    # Re-registering a known token adds no device, so it is not refused.
    assert aws.http("POST", "/v1/devices", app["secret"], {"platform": "inbox", "token": "device-0"}).status == 200
    assert aws.http("DELETE", f"/v1/devices/{devices[1]['id']}", app["secret"]).status == 204
    assert aws.http("POST", "/v1/devices", app["public"], {"platform": "inbox", "token": "one-more"}).status == 201


def test_topics_per_device_are_a_quota_that_unsubscribing_frees(aws: LocalAws):
    app = aws.new_app()
    device = aws.new_device(app, topics=["a", "b"])

    refused = aws.http("PUT", f"/v1/devices/{device['id']}/topics/c", device["key"])

    assert refused.status == 409
    assert refused.body["error"]["code"] == "topic_quota_exceeded"
    assert aws.http("PUT", f"/v1/devices/{device['id']}/topics/a", device["key"]).status == 200
    assert aws.http("DELETE", f"/v1/devices/{device['id']}/topics/b", device["key"]).status == 204
    assert aws.http("PUT", f"/v1/devices/{device['id']}/topics/c", device["key"]).status == 201
    assert aws.http("GET", f"/v1/devices/{device['id']}/topics", device["key"]).body["topics"] == ["a", "c"]


def test_deliveries_over_the_hourly_quota_are_counted_failed_with_the_reason(aws: LocalAws):
    app = aws.new_app()
    for _ in range(MAX_DEVICES):
        aws.new_device(app)
    _with_time_left(HOUR_S, f"app#{app['id']}", needed_s=60)

    message_id = aws.publish(app, topics=["*"], receipts=True)
    aws.drain()

    publication = aws.publication(app, message_id)
    assert publication["status"] == "completed", publication
    assert (publication["total"], publication["passed"], publication["failed"]) == (MAX_DEVICES, DELIVERIES, 3)
    receipts = aws.http("GET", f"/v1/messages/{message_id}/receipts", app["secret"]).body["receipts"]
    refused = [r for r in receipts if r["outcome"] == "failed"]
    assert len(refused) == MAX_DEVICES - DELIVERIES
    assert {r["reason"] for r in refused} == {"quota_exceeded"}
