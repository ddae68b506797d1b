import random

from push_core.pipeline.deliver import BatchRules, retry_delay_s
from push_core.pipeline.jobs import MAX_DELAY_S

MAX_ATTEMPTS = BatchRules().max_attempts


def test_fifty_attempts_span_about_six_hours():
    for seed in range(20):
        rng = random.Random(seed)
        total = sum(retry_delay_s(attempt, 0, rng) for attempt in range(MAX_ATTEMPTS - 1))
        assert 5 * 3600 <= total <= 7 * 3600, (seed, total / 3600)


def test_first_retries_are_quick_and_grow():
    rng = random.Random(1)
    early = [retry_delay_s(a, 0, rng) for a in range(4)]
    assert early[0] <= 2
    assert early == sorted(early)
    assert max(retry_delay_s(a, 0, rng) for a in range(10, MAX_ATTEMPTS)) <= 600


def test_never_sooner_than_the_provider_asked():
    rng = random.Random(2)
    assert all(retry_delay_s(a, 120, rng) >= 120 for a in range(10))


def test_delays_fit_what_sqs_accepts():
    assert retry_delay_s(49, 0, random.Random(3)) <= MAX_DELAY_S
