"""Fault knobs: reproducible under a seed, each kind of failure as a client sees it, settable over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from dev.emulators import ApnsEmulator, FaultDecision, FaultKind, Faults, FaultSettings, WebhookEmulator
from tests.emulators.conftest import TOPIC, h2_client, provider_token

DEVICE = "c3" * 32
MIXED: dict[str, Any] = {
    "internal_error_rate": 0.2,
    "unavailable_rate": 0.1,
    "throttle_rate": 0.2,
    "auth_error_rate": 0.1,
    "bad_request_rate": 0.1,
}


def test_the_same_seed_gives_the_same_decisions_and_another_seed_others():
    settings = FaultSettings(**MIXED, delay_jitter_s=1.0)
    one, two, other = Faults(settings, seed=3), Faults(settings, seed=3), Faults(settings, seed=4)
    first = [one.decide() for _ in range(300)]
    assert first == [two.decide() for _ in range(300)]
    assert first != [other.decide() for _ in range(300)]
    kinds = {decision.kind for decision in first}
    assert kinds == {
        FaultKind.NONE,
        FaultKind.INTERNAL_ERROR,
        FaultKind.UNAVAILABLE,
        FaultKind.THROTTLED,
        FaultKind.AUTH_ERROR,
        FaultKind.BAD_REQUEST,
    }


def test_rates_are_honoured_in_proportion():
    faults = Faults(FaultSettings(throttle_rate=0.25), seed=1)
    throttled = sum(faults.decide().kind is FaultKind.THROTTLED for _ in range(4000))
    assert 800 < throttled < 1200


def test_the_sequence_does_not_shift_when_knobs_change_mid_run():
    # Two numbers are drawn per decision whatever the knobs: decision n depends only on the seed and n.
    quiet, busy = Faults(seed=9), Faults(FaultSettings(**MIXED), seed=9)
    for _ in range(50):
        quiet.decide()
        busy.decide()
    quiet.configure(FaultSettings(**MIXED))
    assert [quiet.decide() for _ in range(50)] == [busy.decide() for _ in range(50)]


@pytest.mark.parametrize(
    "settings",
    [
        {"throttle_rate": 1.5},
        {"throttle_rate": 0.6, "internal_error_rate": 0.6},
        {"delay_s": -1.0},
        {"retry_after_s": -5},
    ],
)
def test_impossible_knobs_are_refused(settings):
    with pytest.raises(ValueError, match=r"rate|negative"):
        FaultSettings(**settings)


def test_unknown_or_non_numeric_knobs_are_refused():
    with pytest.raises(ValueError, match="unknown"):
        FaultSettings().changed({"explode_rate": 1.0})
    with pytest.raises(ValueError, match="number"):
        FaultSettings().changed({"throttle_rate": "lots"})


def _statuses(apns: ApnsEmulator, bearer: str, count: int, concurrent: bool) -> list[int]:
    request = (
        "POST",
        f"/3/device/{DEVICE}",
        [("authorization", f"bearer {bearer}"), ("apns-topic", TOPIC)],
        b'{"aps":{"alert":"x"}}',
    )
    with h2_client(apns) as client:
        if concurrent:
            return [answer.status for answer in client.requests([request] * count)]
        return [client.requests([request])[0].status for _ in range(count)]


@pytest.mark.parametrize("concurrent", [False, True], ids=["one-at-a-time", "concurrent-streams"])
def test_a_seed_set_over_http_reproduces_the_same_answers(apns, apns_key, session, concurrent):
    bearer = provider_token(apns_key.private_key_pem)
    runs = []
    for _ in range(2):
        answer = session.post(
            apns.url + "/_emulator/faults", json={**MIXED, "seed": 1234}, verify=apns.ca_path, timeout=5
        )
        assert answer.json() == {"settings": {**FaultSettings(**MIXED).to_json()}, "seed": 1234, "keyed": False}
        runs.append(_statuses(apns, bearer, 60, concurrent))
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 400, 403, 429, 500, 503}


def test_a_reset_fault_resets_the_connection(webhook, session):
    hook = webhook.create_hook()
    webhook.faults.update(reset_rate=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(hook["url"], data=b"{}", verify=webhook.ca_path, timeout=5)
    assert webhook.ledger.counts() == {"reset": 1}


def test_a_hang_fault_never_answers_so_the_client_times_out(webhook: WebhookEmulator, session):
    hook = webhook.create_hook()
    webhook.faults.update(hang_rate=1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.post(hook["url"], data=b"{}", verify=webhook.ca_path, timeout=0.3)
    assert webhook.ledger.counts() == {"timeout": 1}


def test_a_delay_holds_the_answer_back(webhook, session):
    hook = webhook.create_hook()
    webhook.faults.update(delay_s=0.3)
    started = time.monotonic()
    answer = session.post(hook["url"], data=b"{}", verify=webhook.ca_path, timeout=5)
    assert time.monotonic() - started >= 0.3
    assert answer.status_code == 401  # delayed, then answered normally (unsigned)


def test_throttling_answers_429_with_the_configured_retry_after(webhook, session):
    hook = webhook.create_hook()
    session.post(
        webhook.url + "/_emulator/faults",
        json={"throttle_rate": 1, "retry_after_s": 9},
        verify=webhook.ca_path,
        timeout=5,
    )
    answer = session.post(hook["url"], data=b"{}", verify=webhook.ca_path, timeout=5)
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "9")


def test_faults_never_touch_the_admin_api(webhook, session):
    webhook.faults.update(internal_error_rate=0.5, reset_rate=0.5)
    for _ in range(10):
        assert session.get(webhook.url + "/_emulator/ledger", verify=webhook.ca_path, timeout=5).status_code == 200


def test_bad_knobs_over_http_are_400_and_change_nothing(webhook, session):
    before = session.get(webhook.url + "/_emulator/faults", verify=webhook.ca_path, timeout=5).json()
    for body in ({"throttle_rate": 2}, {"nonsense": 1}, {"seed": "x"}):
        answer = session.post(webhook.url + "/_emulator/faults", json=body, verify=webhook.ca_path, timeout=5)
        assert answer.status_code == 400
        assert answer.json()["error"]
    assert session.get(webhook.url + "/_emulator/faults", verify=webhook.ca_path, timeout=5).json() == before


def test_reset_restores_the_constructor_knobs_and_seed(authority):
    emulator = WebhookEmulator(authority=authority, faults=FaultSettings(throttle_rate=0.5), seed=11)
    emulator.faults.update(throttle_rate=0.0, internal_error_rate=1.0)
    emulator.faults.configure(seed=99)
    emulator.reset()
    assert emulator.faults.settings == FaultSettings(throttle_rate=0.5)
    assert emulator.faults.seed == 11
    assert [emulator.faults.decide() for _ in range(20)] == _decisions(FaultSettings(throttle_rate=0.5), 11, 20)


def _decisions(settings: FaultSettings, seed: int, count: int) -> list[FaultDecision]:
    faults = Faults(settings, seed)
    return [faults.decide() for _ in range(count)]


def test_keyed_decisions_do_not_depend_on_how_requests_interleave():
    faults = Faults(FaultSettings(**MIXED), seed=99)
    faults.configure(keyed=True)
    keys = [f"/3/device/{n:064x}|body" for n in range(40)]

    def answers(order: list[str]) -> dict[str, list[str]]:
        faults.configure(seed=99)  # a fresh run of the same seed
        seen: dict[str, list[str]] = {key: [] for key in keys}
        for key in order:
            seen[key].append(faults.decide(key).kind.value)
        return seen

    forwards = answers(keys * 3)
    backwards = answers(list(reversed(keys)) * 3)
    assert forwards == backwards
    assert len({kind for kinds in forwards.values() for kind in kinds}) > 2  # the knobs really act
    faults.configure(keyed=False)
    assert not faults.keyed


def test_every_emulator_answers_every_injected_status_fault():
    """A knob an emulator has no answer for would fail its requests with a KeyError instead."""
    from dev.emulators import apns, fcm, webhook, webpush

    answered = {FaultKind.INTERNAL_ERROR, FaultKind.UNAVAILABLE, FaultKind.THROTTLED}
    answered |= {FaultKind.AUTH_ERROR, FaultKind.BAD_REQUEST}
    assert set(FaultKind) - {FaultKind.NONE, FaultKind.RESET, FaultKind.HANG} == answered
    for table in (apns.FAULT_REASON, fcm.FAULT_ERROR, webpush.FAULT_REASON, webhook.FAULT_REASON):
        assert set(table) == answered
    assert webpush.WEBPUSH_ERRORS[webpush.FAULT_REASON[FaultKind.BAD_REQUEST]][0] == 400
    assert webhook.WEBHOOK_ERRORS[webhook.FAULT_REASON[FaultKind.BAD_REQUEST]][0] == 400
