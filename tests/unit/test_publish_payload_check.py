"""The publish-time size check: a long text is left for delivery to trim, data no platform can carry is a 422."""

import pytest

from push_core.errors import UnprocessableEntity
from push_core.models import MessageContent, Platform
from push_core.pipeline.publish import LIMITED_PLATFORMS, check_payload_fits
from push_core.providers.contract import PushMessage
from push_core.providers.webpush.encryption import MAX_PLAINTEXT_BYTES
from push_core.providers.webpush.payload import render_payload

PUBLICATION_ID = "01JD0000000000000000000MSG"


def test_a_long_title_and_body_are_accepted_for_trimming_at_delivery():
    content = MessageContent(title="T" * 250, body="ü" * 4096, data={"order": 42})
    check_payload_fits(PUBLICATION_ID, content, LIMITED_PLATFORMS)


def test_data_a_platform_cannot_carry_is_refused_naming_the_platform_and_the_excess():
    content = MessageContent(body="b", data={"blob": "x" * 3990})  # fits APNs and FCM; not one Web Push record
    bare = PushMessage(PUBLICATION_ID, content.model_copy(update={"body": ""}))
    excess = len(render_payload(bare)) - MAX_PLAINTEXT_BYTES

    with pytest.raises(UnprocessableEntity) as refused:
        check_payload_fits(PUBLICATION_ID, content, LIMITED_PLATFORMS)

    assert refused.value.code == "payload_too_large_for_platform"
    assert refused.value.status == 422
    assert f"webpush by {excess} bytes" in refused.value.message
    assert "apns" not in refused.value.message
    assert "fcm" not in refused.value.message


def test_only_the_platforms_reached_are_checked():
    content = MessageContent(body="b", data={"blob": "x" * 4050})
    check_payload_fits(PUBLICATION_ID, content, {Platform.WEBHOOK, Platform.INBOX})
    with pytest.raises(UnprocessableEntity) as refused:
        check_payload_fits(PUBLICATION_ID, content, {Platform.FCM, Platform.WEBHOOK})
    assert "fcm by " in refused.value.message
    assert "apns" not in refused.value.message


def test_overrides_count_towards_the_payload():
    overrides = {"apns": {"payload": {"extra": "y" * 4096}}}
    content = MessageContent(body="b", overrides=overrides)
    with pytest.raises(UnprocessableEntity) as refused:
        check_payload_fits(PUBLICATION_ID, content, LIMITED_PLATFORMS)
    assert "apns by " in refused.value.message
