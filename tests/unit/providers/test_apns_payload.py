import json

import pytest

from push_core.models import MessageContent
from push_core.providers.apns.payload import MAX_PAYLOAD_BYTES, PayloadError, build_request
from push_core.providers.contract import PushMessage


def _message(**content: object) -> PushMessage:
    fields: dict[str, object] = {"body": "hello", **content}
    return PushMessage(publication_id="01JD0000000000000000000MSG", content=MessageContent.model_validate(fields))


def test_alert_payload_and_headers_follow_importance():
    request = build_request(_message(title="T", importance=5, link="https://x.example/a", data={"k": 1}), "com.app")
    payload = json.loads(request.payload)
    assert payload["aps"] == {
        "alert": {"title": "T", "body": "hello"},
        "sound": "default",
        "interruption-level": "time-sensitive",
    }
    assert (payload["link"], payload["k"], payload["pushlane_id"]) == (
        "https://x.example/a",
        1,
        "01JD0000000000000000000MSG",
    )
    headers = dict(request.headers)
    assert headers == {"apns-push-type": "alert", "apns-topic": "com.app", "apns-priority": "10"}


def test_low_importance_is_passive_with_priority_five():
    request = build_request(_message(importance=1), "com.app")
    assert json.loads(request.payload)["aps"]["interruption-level"] == "passive"
    assert dict(request.headers)["apns-priority"] == "5"


def test_silent_push_is_background_content_available():
    message = PushMessage(publication_id="m", content=MessageContent(body="x"), silent=True)
    request = build_request(message, "com.app")
    assert json.loads(request.payload)["aps"] == {"content-available": 1}
    assert dict(request.headers)["apns-push-type"] == "background"
    assert dict(request.headers)["apns-priority"] == "5"


def test_ttl_and_collapse_key_become_expiration_and_collapse_id():
    message = PushMessage(publication_id="m", content=MessageContent(body="x"), ttl_s=60, collapse_key="score")
    headers = dict(build_request(message, "com.app", now=1_000).headers)
    assert headers["apns-expiration"] == "1060"
    assert headers["apns-collapse-id"] == "score"
    now_or_never = PushMessage(publication_id="m", content=MessageContent(body="x"), ttl_s=0)
    assert dict(build_request(now_or_never, "com.app").headers)["apns-expiration"] == "0"


def test_collapse_id_over_64_bytes_is_refused_before_sending():
    message = PushMessage(publication_id="m", content=MessageContent(body="x"), collapse_key="é" * 33)
    with pytest.raises(PayloadError) as refused:
        build_request(message, "com.app")
    assert refused.value.reason == "BadCollapseId"


def test_oversized_payload_is_refused_or_trimmed_on_a_character_boundary():
    big = _message(body="ü" * 3000)  # 6000 bytes of UTF-8
    with pytest.raises(PayloadError) as refused:
        build_request(big, "com.app")
    assert refused.value.reason == "PayloadTooLarge"
    trimmed = build_request(big, "com.app", trim=True)
    assert len(trimmed.payload) <= MAX_PAYLOAD_BYTES
    body = json.loads(trimmed.payload)["aps"]["alert"]["body"]
    assert body.endswith("…")
    assert set(body[:-1]) == {"ü"}
    assert len(trimmed.payload) > MAX_PAYLOAD_BYTES - 10  # trimmed just enough


def test_voip_pushes_get_the_larger_limit_and_voip_topic():
    message = PushMessage(
        publication_id="m",
        content=MessageContent(body="x" * 4500),
        overrides={"apns": {"headers": {"apns-push-type": "voip"}}},
    )
    request = build_request(message, "com.app")
    assert dict(request.headers)["apns-topic"] == "com.app.voip"
    assert len(request.payload) > 4096


def test_overrides_merge_into_aps_and_unknown_push_types_are_refused():
    message = PushMessage(
        publication_id="m", content=MessageContent(body="x"), overrides={"apns": {"payload": {"aps": {"badge": 3}}}}
    )
    assert json.loads(build_request(message, "t").payload)["aps"]["badge"] == 3
    bad = PushMessage(
        publication_id="m", content=MessageContent(body="x"), overrides={"apns": {"headers": {"apns-push-type": "fax"}}}
    )
    with pytest.raises(PayloadError) as refused:
        build_request(bad, "t")
    assert refused.value.reason == "InvalidPushType"
