"""Each platform's prune rule comes from its provider's own error table (providers/platforms.py)."""

import pytest

from push_core.models import Platform
from push_core.providers.platforms import PLATFORMS, rules_for

DEAD = {
    Platform.APNS: {"Unregistered", "ExpiredToken", "BadDeviceToken", "DeviceTokenNotForTopic"},
    Platform.FCM: {"UNREGISTERED", "SENDER_ID_MISMATCH", "INVALID_ARGUMENT:token"},
    Platform.WEBPUSH: {"404", "410"},
    Platform.WEBHOOK: {"404", "410"},
}


@pytest.mark.parametrize("platform", list(DEAD))
def test_a_platform_prunes_for_the_reasons_its_error_table_calls_dead(platform: Platform):
    rules = rules_for(platform)
    assert rules is not None
    assert {reason for reason in rules.errors if rules.prunes(reason)} == DEAD[platform]


@pytest.mark.parametrize(
    ("platform", "reason"),
    [
        (Platform.APNS, "BadTopic"),  # the request was wrong, not the token
        (Platform.APNS, "410"),  # an undocumented answer that only looks dead
        (Platform.FCM, "INVALID_ARGUMENT"),
        (Platform.WEBPUSH, "endpoint_not_allowed"),  # pushlane's own check, which can change
        (Platform.WEBHOOK, "429"),
    ],
)
def test_failures_that_do_not_prove_a_target_dead_never_prune(platform: Platform, reason: str):
    rules = rules_for(platform)
    assert rules is not None
    assert not rules.prunes(reason)


def test_only_apns_dates_its_dead_reasons_and_the_inbox_has_no_provider():
    assert {p for p, rules in PLATFORMS.items() if rules.dated_reasons} == {Platform.APNS}
    assert PLATFORMS[Platform.APNS].dated("Unregistered")
    assert not PLATFORMS[Platform.APNS].dated("BadDeviceToken")
    assert rules_for(Platform.INBOX) is None
