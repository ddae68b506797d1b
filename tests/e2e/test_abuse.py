"""A concurrent abuse run on the local stack: one app floods publishes while another works normally.

The flooding app's client threads send 1,000 publications as fast as the stack answers; the quiet app
registers 100 inbox devices and publishes once, in the middle of the flood. The flooder must meet 429s
(its publications-per-minute quota, here 100), and the quiet app's publication must reach `completed`
with every device passed within 10 s, although the flood's fan-out jobs are queued ahead of it
(fair queues: each app is a message group). Loopback only; the stack is its own, with its own limits.
"""

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from tests.e2e.conftest import Api, RunningStack, start_stack, stop_stack

FLOOD_PUBLICATIONS = 1_000
FLOOD_THREADS = 4
FLOOD_QUOTA_PER_MINUTE = 100
FLOODER_DEVICES = 8
QUIET_DEVICES = 100
COMPLETION_BOUND_S = 10.0
# The quiet app publishes once this many flood publications are accepted, so a backlog is queued first.
BACKLOG_BEFORE_QUIET = 60


@pytest.fixture(scope="module")
def abuse_stack() -> Iterator[RunningStack]:
    # One topic shard: one fan-out job per publication, so moto (whose Query reads the whole table) keeps up.
    running = start_stack(f"PublicationsPerMinute={FLOOD_QUOTA_PER_MINUTE}", "TopicShards=1")
    yield running
    stop_stack(running, timeout_s=60)  # a stack with a backlog finishes its current invocations first


@pytest.fixture
def api(abuse_stack: RunningStack) -> Iterator[Api]:
    with requests.Session() as session:
        session.trust_env = False
        yield Api(abuse_stack.url, session, abuse_stack.admin_key)


def _register_inbox_devices(api: Api, public_key: str, count: int) -> None:
    for _ in range(count):
        reply = api.call("POST", "/v1/devices", public_key, json={"platform": "inbox"})
        assert reply.status_code == 201, reply.text


class Flood:
    """Client threads publishing for one app until FLOOD_PUBLICATIONS have been sent."""

    def __init__(self, url: str, secret_key: str) -> None:
        self.url = url
        self.secret_key = secret_key
        self.statuses: Counter[int] = Counter()
        self.retry_after: set[str] = set()
        self._sent = 0
        self._lock = threading.Lock()
        self.accepted_enough = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(FLOOD_THREADS)]

    def _claim(self) -> bool:
        with self._lock:
            if self._sent >= FLOOD_PUBLICATIONS:
                return False
            self._sent += 1
            return True

    def _run(self) -> None:
        with requests.Session() as session:
            session.trust_env = False
            headers = {"Authorization": f"Bearer {self.secret_key}"}
            while self._claim():
                reply = session.post(
                    self.url + "/v1/messages", json={"body": "flood", "topics": ["*"]}, headers=headers, timeout=30
                )
                with self._lock:
                    self.statuses[reply.status_code] += 1
                    if reply.status_code == 429:
                        self.retry_after.add(reply.headers.get("Retry-After", ""))
                    if self.statuses[202] >= BACKLOG_BEFORE_QUIET:
                        self.accepted_enough.set()

    def stop(self) -> None:
        """Send nothing more (the requests in flight finish)."""
        with self._lock:
            self._sent = FLOOD_PUBLICATIONS

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def test_a_flooding_app_gets_429s_and_another_apps_publication_completes_within_10_s(api: Api):
    flooder, quiet = api.new_app(), api.new_app()
    _register_inbox_devices(api, flooder["public"], FLOODER_DEVICES)
    _register_inbox_devices(api, quiet["public"], QUIET_DEVICES)

    flood = Flood(api.url, flooder["secret"])
    started = time.monotonic()
    flood.start()
    try:
        _publish_in_the_flood(api, quiet, flood, started)
    finally:
        flood.stop()
        flood.join(timeout_s=60)


def _publish_in_the_flood(api: Api, quiet: dict[str, str], flood: Flood, started: float) -> None:
    assert flood.accepted_enough.wait(60), f"the flood never got going: {dict(flood.statuses)}"
    backlog_at = time.monotonic() - started
    queued_ahead = flood.statuses[202]

    published = time.monotonic()
    reply = api.call("POST", "/v1/messages", quiet["secret"], json={"body": "hello", "topics": ["*"]})
    assert reply.status_code == 202, reply.text
    message_id = reply.json()["id"]
    publication: dict[str, object] = {}
    while time.monotonic() - published < COMPLETION_BOUND_S + 5:
        status = api.call("GET", f"/v1/messages/{message_id}", quiet["secret"])
        assert status.status_code == 200, status.text
        publication = status.json()
        if publication["status"] == "completed":
            break
        time.sleep(0.1)
    completed_in = time.monotonic() - published

    flood.join(timeout_s=180)
    flood_s = time.monotonic() - started
    print(
        f"\nabuse run: flood of {sum(flood.statuses.values())} publishes in {flood_s:.1f} s "
        f"({dict(flood.statuses)}; Retry-After seen {sorted(flood.retry_after, key=int)[:3]}...); quiet app "
        f"published {backlog_at:.1f} s into the flood, {queued_ahead} flood publications accepted ahead of it, "
        f"and completed ({publication.get('passed')}/{QUIET_DEVICES} passed) "
        f"in {completed_in:.2f} s"
    )
    assert flood.statuses[429] > 0, dict(flood.statuses)
    assert set(flood.statuses) <= {202, 429}, dict(flood.statuses)
    assert publication["status"] == "completed", publication
    assert publication["passed"] == QUIET_DEVICES, publication
    assert completed_in <= COMPLETION_BOUND_S, f"completed in {completed_in:.2f} s"
