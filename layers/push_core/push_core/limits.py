"""Rate limits and per-minute or per-hour quotas: fixed windows counted in DynamoDB, described in headers.

Each limit is a fixed window per scope (a key, an app, a source address), counted with one UpdateItem:
a conditional ADD that refuses to go past the quota. Fixed windows cost one write and no read; their
known flaw (up to twice the quota across a window boundary) does not matter for limits that only have
to stop abuse. Answers describe the windows in the IETF httpapi draft's headers
(draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy: "key";q=1200;w=60` and
`RateLimit: "key";r=1187;t=17`.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from push_core.auth import Caller
from push_core.config import get_settings
from push_core.errors import TooManyRequests
from push_core.models import epoch_seconds, utc_now
from push_core.storage import rate_windows

MINUTE_S = 60
HOUR_S = 3600


@dataclass(frozen=True)
class Policy:
    """A quota of events per window, under a name that clients see in the RateLimit headers."""

    name: str
    quota: int
    window_s: int

    def window(self, scope: str, now: int) -> tuple[int, int]:
        """The fixed window [start, end) holding now for this scope.

        Each scope's windows are offset by a phase derived from its name, so the windows of every app
        and key do not all end (and let their callers back in) on the same second.
        """
        phase = int.from_bytes(hashlib.sha256(scope.encode()).digest()[:4], "big") % self.window_s
        start = now - (now - phase) % self.window_s
        return start, start + self.window_s


@dataclass(frozen=True)
class Standing:
    """Where a scope stands in a policy's current window: requests left and seconds until it resets."""

    policy: Policy
    remaining: int
    reset_s: int


def headers(standings: Sequence[Standing], *, refused: bool = False) -> dict[str, str]:
    """The RateLimit-Policy and RateLimit fields for these windows, with Retry-After when refused."""
    if not standings:
        return {}
    fields = {
        "RateLimit-Policy": ", ".join(f'"{s.policy.name}";q={s.policy.quota};w={s.policy.window_s}' for s in standings),
        "RateLimit": ", ".join(f'"{s.policy.name}";r={s.remaining};t={s.reset_s}' for s in standings),
    }
    if refused:
        fields["Retry-After"] = str(max(s.reset_s for s in standings if s.remaining == 0))
    return fields


def charge(policy: Policy, scope: str, now: int, *, what: str) -> Standing:
    """Count one event against scope's window, or raise TooManyRequests (429) if the window is spent."""
    start, end = policy.window(scope, now)
    count = rate_windows.add_within(scope, policy.name, start, end, policy.quota)
    if count is None:
        spent = Standing(policy, 0, end - now)
        raise TooManyRequests(
            f"Too many {what}: {policy.quota} per {policy.window_s} s; retry in {spent.reset_s} s.",
            code="rate_limited",
            headers=headers([spent], refused=True),
        )
    return Standing(policy, policy.quota - count, end - now)


def _now() -> int:
    return epoch_seconds(utc_now())


def charge_request(caller: Caller) -> list[Standing]:
    """Count an authenticated request against its key's and its app's windows (the admin is not limited)."""
    if caller.key_id is None or caller.app_id is None:
        return []
    settings = get_settings()
    now = _now()
    key = Policy("key", settings.rate_limit_per_key, MINUTE_S)
    app = Policy("app", settings.rate_limit_per_app, MINUTE_S)
    return [
        charge(key, f"key#{caller.key_id}", now, what="requests with this key"),
        charge(app, f"app#{caller.app_id}", now, what="requests for this app"),
    ]


def charge_failed_authentication(source_ip: str) -> None:
    """Count a failed authentication against its source address; 429 once the address's budget is spent."""
    settings = get_settings()
    policy = Policy("failed_auth", settings.failed_auth_per_ip, settings.failed_auth_window_s)
    charge(policy, f"ip#{source_ip}", _now(), what="failed authentications from this address")


def charge_publication(app_id: str) -> Standing:
    """Count a publication against the app's per-minute quota; 429 once it is spent."""
    policy = Policy("publications", get_settings().publications_per_minute, MINUTE_S)
    return charge(policy, f"app#{app_id}", _now(), what="publications for this app")


def take_deliveries(app_id: str, wanted: int) -> int:
    """How many of wanted deliveries the app's hourly quota grants; all wanted are counted either way.

    Counted unconditionally (one UpdateItem, no read) so a batch that straddles the quota gets the
    part that fits; the rest of the hour refuses everything.
    """
    if wanted <= 0:
        return 0
    policy = Policy("deliveries", get_settings().deliveries_per_hour, HOUR_S)
    scope = f"app#{app_id}"
    start, end = policy.window(scope, _now())
    return granted(policy.quota, rate_windows.add(scope, policy.name, start, end, wanted), wanted)


def granted(quota: int, count: int, wanted: int) -> int:
    """Of wanted events just counted (the window now at count), how many fit under quota."""
    return max(0, min(wanted, quota - (count - wanted)))
