from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from push_core.api.schemas import (
    ConfirmRequest,
    DeviceRegistrationRequest,
    PublishRequest,
    registration_of,
)
from push_core.models import Platform

registration: TypeAdapter[Any] = TypeAdapter(DeviceRegistrationRequest)
P256DH = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"


def test_apns_token_is_lowercased_and_keeps_its_environment():
    parsed = registration.validate_python({"platform": "apns", "token": "AB" * 32, "environment": "sandbox"})
    domain = registration_of(parsed)
    assert domain.platform is Platform.APNS
    assert domain.token == "ab" * 32
    assert domain.push == {"environment": "sandbox"}


@pytest.mark.parametrize(
    "body",
    [
        {"platform": "apns", "token": "not-hex"},
        {"platform": "apns", "token": "ab" * 10},
        {"platform": "fcm", "token": "has space"},
        {"platform": "webhook", "url": "http://example.com/hook"},
        {
            "platform": "webpush",
            "subscription": {
                "endpoint": "https://push.example.net/x",
                "keys": {"p256dh": "AAAA", "auth": AUTH},
            },
        },
        {
            "platform": "webpush",
            "subscription": {
                "endpoint": "https://push.example.net/x",
                "keys": {"p256dh": P256DH, "auth": "%%%"},
            },
        },
        {"platform": "carrier-pigeon", "token": "x"},
        {"platform": "inbox", "token": "x", "surprise": 1},
    ],
)
def test_invalid_registrations_are_refused(body):
    with pytest.raises(ValidationError):
        registration.validate_python(body)


def test_web_push_subscription_becomes_endpoint_token_with_keys():
    parsed = registration.validate_python(
        {
            "platform": "webpush",
            "subscription": {
                "endpoint": "https://push.example.net/sub/1",
                "keys": {"p256dh": P256DH, "auth": AUTH},
            },
        }
    )
    domain = registration_of(parsed)
    assert domain.token == "https://push.example.net/sub/1"
    assert domain.push == {"p256dh": P256DH, "auth": AUTH}


def test_inbox_device_token_is_optional():
    assert registration_of(registration.validate_python({"platform": "inbox"})).token is None


def test_publish_needs_an_audience_and_a_body():
    with pytest.raises(ValidationError, match="at least one topic or device"):
        PublishRequest.model_validate({"body": "hi"})
    with pytest.raises(ValidationError):
        PublishRequest.model_validate({"topics": ["news"]})


def test_publish_limits_data_size_and_importance():
    with pytest.raises(ValidationError, match="data must be at most"):
        PublishRequest.model_validate({"topics": ["t"], "body": "b", "data": {"blob": "x" * 5000}})
    with pytest.raises(ValidationError):
        PublishRequest.model_validate({"topics": ["t"], "body": "b", "importance": 6})


def test_publish_accepts_star_and_rejects_bad_topic_names():
    assert PublishRequest.model_validate({"topics": ["*"], "body": "b"}).topics == ["*"]
    with pytest.raises(ValidationError):
        PublishRequest.model_validate({"topics": ["has space"], "body": "b"})


def test_confirm_needs_ids_or_up_to():
    with pytest.raises(ValidationError):
        ConfirmRequest.model_validate({})
    assert ConfirmRequest.model_validate({"up_to": "01JD0000000000000000000MSG"}).up_to


def test_a_p256dh_that_is_not_a_point_on_the_curve_is_refused():
    # 65 bytes of the right form (0x04 prefix) that lie on no P-256 point could never be encrypted to.
    import base64

    off_curve = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode().rstrip("=")
    body = {
        "platform": "webpush",
        "subscription": {"endpoint": "https://fcm.googleapis.com/x", "keys": {"p256dh": off_curve, "auth": AUTH}},
    }
    with pytest.raises(ValidationError, match="P-256"):
        registration.validate_python(body)


@pytest.mark.parametrize(("key", "fits"), [("k" * 64, True), ("é" * 32, True), ("é" * 33, False), ("😀" * 17, False)])
def test_collapse_keys_are_measured_in_bytes_as_apns_does(key: str, fits: bool):
    body = {"topics": ["t"], "body": "x", "collapse_key": key}
    if fits:
        assert PublishRequest.model_validate(body).collapse_key == key
    else:
        with pytest.raises(ValidationError, match="64 bytes"):
            PublishRequest.model_validate(body)
