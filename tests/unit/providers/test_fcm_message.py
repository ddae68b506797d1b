import json

from push_core.models import MessageContent
from push_core.providers.contract import PushMessage
from push_core.providers.fcm.message import build_body, data_strings


def test_body_for_each_token_is_the_same_document_with_its_token():
    message = PushMessage(
        publication_id="m1",
        content=MessageContent(title="T", body="B", importance=5, data={"n": 1, "s": "x"}, link="https://a.example"),
        ttl_s=30,
        collapse_key="c",
    )
    body = build_body(message)
    document = json.loads(body.for_token('tok:"quoted"'))["message"]
    assert document["token"] == 'tok:"quoted"'
    assert document["notification"] == {"title": "T", "body": "B"}
    assert document["data"] == {"n": "1", "s": "x", "pushlane_id": "m1", "link": "https://a.example"}
    assert document["android"] == {"priority": "HIGH", "ttl": "30s", "collapse_key": "c"}
    assert json.loads(body.for_token("other"))["message"]["token"] == "other"


def test_silent_messages_are_data_only_and_background_on_ios():
    body = build_body(PushMessage(publication_id="m", content=MessageContent(body="B"), silent=True))
    document = json.loads(body.for_token("t"))["message"]
    assert "notification" not in document
    assert document["apns"]["payload"]["aps"] == {"content-available": 1}


def test_data_values_become_strings():
    assert data_strings({"a": 1, "b": [1, 2], "c": "s", "d": None}) == {"a": "1", "b": "[1,2]", "c": "s", "d": "null"}


def test_overrides_merge_into_the_message():
    message = PushMessage(
        publication_id="m",
        content=MessageContent(body="B"),
        overrides={"fcm": {"android": {"restricted_package_name": "p"}}},
    )
    document = json.loads(build_body(message).for_token("t"))["message"]
    assert document["android"] == {"priority": "NORMAL", "restricted_package_name": "p"}
