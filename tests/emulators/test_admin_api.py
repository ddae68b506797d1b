"""The ledger, in-process and over the /_emulator/ admin API on both protocols."""

from __future__ import annotations

import threading
import time

import pytest

from dev.emulators import Ledger, WebhookEmulator
from dev.emulators.webhook import sign
from tests.emulators.conftest import h2_client


def _deliver(webhook: WebhookEmulator, session, hook: dict[str, str], body: bytes) -> int:
    signature = sign(hook["secret"], body, int(time.time()))
    answer = session.post(
        hook["url"], data=body, headers={"pushlane-signature": signature}, verify=webhook.ca_path, timeout=5
    )
    return int(answer.status_code)


def test_the_ledger_is_readable_over_http11_with_since_and_counts(webhook, session):
    hook = webhook.create_hook()
    for n in range(3):
        assert _deliver(webhook, session, hook, f'{{"n": {n}}}'.encode()) == 200
    session.post(webhook.url + "/hooks/nobody", data=b"{}", verify=webhook.ca_path, timeout=5)

    everything = session.get(webhook.url + "/_emulator/ledger", verify=webhook.ca_path, timeout=5).json()
    assert [entry["data"]["body"] for entry in everything["entries"]] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert everything["counts"] == {"200": 3, "404 NotFound": 1}
    assert everything["emulator"] == "webhook"
    first_index = everything["entries"][0]["index"]
    assert everything["next"] == first_index + 3

    later = session.get(
        webhook.url + "/_emulator/ledger", params={"since": first_index + 2}, verify=webhook.ca_path, timeout=5
    ).json()
    assert [entry["data"]["body"] for entry in later["entries"]] == [{"n": 2}]
    entry = later["entries"][0]
    assert (entry["method"], entry["path"], entry["protocol"], entry["status"]) == (
        "POST",
        f"/hooks/{hook['id']}",
        "http/1.1",
        200,
    )


def test_the_ledger_is_readable_over_http2(webhook, session):
    hook = webhook.create_hook()
    _deliver(webhook, session, hook, b'{"over": "h2"}')
    with h2_client(webhook) as client:
        answer = client.request("GET", "/_emulator/ledger")
    assert answer.status == 200
    assert answer.json()["entries"][0]["data"]["body"] == {"over": "h2"}


def test_reset_over_http_empties_the_ledger_but_indexes_keep_growing(webhook, session):
    hook = webhook.create_hook()
    _deliver(webhook, session, hook, b"{}")
    before = webhook.ledger.next_index
    answer = session.post(webhook.url + "/_emulator/reset", verify=webhook.ca_path, timeout=5)
    assert answer.json() == {"reset": ["ledger", "faults", "dead"]}
    assert session.get(webhook.url + "/_emulator/ledger", verify=webhook.ca_path, timeout=5).json()["entries"] == []
    _deliver(webhook, session, hook, b"{}")
    assert webhook.ledger.entries()[0].index == before


def test_reset_can_keep_parts(webhook, session):
    hook = webhook.create_hook()
    webhook.mark_dead([hook["id"]])
    _deliver(webhook, session, hook, b"{}")
    session.post(webhook.url + "/_emulator/reset", json={"dead": False}, verify=webhook.ca_path, timeout=5)
    assert webhook.ledger.counts() == {}
    assert _deliver(webhook, session, hook, b"{}") == 410


def test_health_names_the_emulator_and_its_ca(webhook, session):
    answer = session.get(webhook.url + "/_emulator/health", verify=webhook.ca_path, timeout=5).json()
    assert answer == {"emulator": "webhook", "url": webhook.url, "ca_path": webhook.ca_path}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/_emulator/nothing-here", None, 404),
        ("DELETE", "/_emulator/ledger", None, 405),
        ("POST", "/_emulator/dead", b"{not json", 400),
        ("POST", "/_emulator/dead", b'{"tokens": "one"}', 400),
        ("POST", "/_emulator/dead", b'{"tokens": ["a"], "reason": "Exploded"}', 400),
        ("GET", "/_emulator/ledger?since=abc", None, 400),
    ],
)
def test_bad_admin_requests_get_a_json_error(webhook, session, method, path, body, status):
    answer = session.request(method, webhook.url + path, data=body, verify=webhook.ca_path, timeout=5)
    assert answer.status_code == status
    assert answer.json()["error"]


def test_the_ledger_wait_wakes_when_entries_arrive():
    ledger = Ledger("test")

    def later() -> None:
        time.sleep(0.1)
        ledger.record(method="POST", path="/x", protocol="h2", status=200, data={})

    threading.Thread(target=later).start()
    assert ledger.wait_for(1, timeout=5)
    assert not ledger.wait_for(2, timeout=0.05)


def test_a_bounded_ledger_keeps_the_newest_entries_and_every_count():
    ledger = Ledger("test", keep=100)
    for n in range(1000):
        ledger.record(method="POST", path=f"/{n}", protocol="h2", status=200, data={})
        ledger.count("200")
    assert 100 <= len(ledger) <= 110
    kept = ledger.entries()
    assert kept[-1].path == "/999"
    assert [e.index for e in kept] == list(range(kept[0].index, 1000))
    assert ledger.next_index == 1000
    assert ledger.counts() == {"200": 1000}
    assert ledger.wait_for(1000, timeout=0)  # counted since the reset, trimmed entries included
    page = ledger.to_json(since=0, limit=5)  # a reader that fell behind resumes at the oldest kept entry
    assert [e["index"] for e in page["entries"]] == list(range(kept[0].index, kept[0].index + 5))


def test_counts_by_status_fold_the_reasons():
    ledger = Ledger("test")
    for key in ("200", "200", "410 Unregistered", "410 ExpiredToken", "reset"):
        ledger.count(key)
    assert ledger.counts_by_status() == {"200": 2, "410": 2, "reset": 1}


def test_the_ledger_pages_with_limit_and_next(webhook, session):
    hook = webhook.create_hook()
    for n in range(5):
        _deliver(webhook, session, hook, f'{{"n": {n}}}'.encode())
    seen: list[int] = []
    since = webhook.ledger.entries()[0].index
    while True:
        page = session.get(
            webhook.url + "/_emulator/ledger", params={"since": since, "limit": 2}, verify=webhook.ca_path, timeout=5
        ).json()
        if not page["entries"]:
            break
        assert len(page["entries"]) <= 2
        seen += [entry["data"]["body"]["n"] for entry in page["entries"]]
        since = page["next"]
    assert seen == [0, 1, 2, 3, 4]


def test_counts_are_readable_without_the_entries(webhook, session):
    hook = webhook.create_hook()
    _deliver(webhook, session, hook, b"{}")
    session.post(webhook.url + "/hooks/nobody", data=b"{}", verify=webhook.ca_path, timeout=5)
    counts = session.get(webhook.url + "/_emulator/counts", verify=webhook.ca_path, timeout=5).json()
    assert counts["counts"] == {"200": 1, "404 NotFound": 1}
    assert counts["by_status"] == {"200": 1, "404": 1}
    assert counts["entries"] == 1
    assert counts["next"] == webhook.ledger.next_index
