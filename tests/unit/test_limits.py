"""The limiter's window math and the RateLimit headers it answers with (draft-ietf-httpapi-ratelimit-headers)."""

import pytest

from push_core import limits
from push_core.limits import Policy, Standing

NOW = 1_750_000_017


@pytest.mark.parametrize("window_s", [1, 60, 300, 3600])
def test_a_window_holds_now_and_is_the_policys_length(window_s: int):
    policy = Policy("key", 10, window_s)
    for now in range(NOW, NOW + 2 * window_s + 1, max(1, window_s // 7)):
        start, end = policy.window("key#abc", now)
        assert start <= now < end
        assert end - start == window_s


def test_a_scope_keeps_one_window_until_it_ends_then_the_next_starts_there():
    policy = Policy("app", 10, 60)
    start, end = policy.window("app#A", NOW)
    assert {policy.window("app#A", now) for now in range(start, end)} == {(start, end)}
    assert policy.window("app#A", end) == (end, end + 60)


def test_scopes_are_phased_so_their_windows_do_not_all_end_together():
    policy = Policy("key", 10, 60)
    ends = {policy.window(f"key#{n:016x}", NOW)[1] for n in range(50)}
    assert len(ends) > 25


def test_headers_follow_the_drafts_policy_and_ratelimit_syntax():
    key = Standing(Policy("key", 1200, 60), remaining=1187, reset_s=17)
    app = Standing(Policy("app", 6000, 60), remaining=5990, reset_s=43)
    assert limits.headers([key, app]) == {
        "RateLimit-Policy": '"key";q=1200;w=60, "app";q=6000;w=60',
        "RateLimit": '"key";r=1187;t=17, "app";r=5990;t=43',
    }


def test_a_refusal_adds_retry_after_for_the_spent_window():
    spent = Standing(Policy("failed_auth", 30, 300), remaining=0, reset_s=212)
    fields = limits.headers([spent], refused=True)
    assert fields["Retry-After"] == "212"
    assert fields["RateLimit"] == '"failed_auth";r=0;t=212'
    assert fields["RateLimit-Policy"] == '"failed_auth";q=30;w=300'


def test_no_windows_no_headers():
    assert limits.headers([]) == {}


@pytest.mark.parametrize(
    ("quota", "count", "wanted", "expected"),
    [
        (10, 4, 4, 4),  # well under
        (10, 10, 4, 4),  # exactly fills it
        (10, 13, 4, 1),  # straddles: the part that fits
        (10, 14, 4, 0),  # was already full
        (10, 40, 4, 0),  # far over
        (5, 1_000, 3, 0),
    ],
)
def test_deliveries_are_granted_up_to_the_quota(quota: int, count: int, wanted: int, expected: int):
    assert limits.granted(quota, count, wanted) == expected
