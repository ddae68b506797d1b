"""Properties of every platform's payload builder: within its limit, valid JSON, data untouched, and a
too-long message shortened only at its body, then its title, between whole characters."""

import json
import unicodedata
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from push_core.models import MessageContent
from push_core.providers.apns.payload import MAX_PAYLOAD_BYTES as APNS_LIMIT
from push_core.providers.apns.payload import build_request
from push_core.providers.contract import PushMessage
from push_core.providers.fcm import message as fcm_message
from push_core.providers.fcm.message import MAX_PAYLOAD_BYTES as FCM_LIMIT
from push_core.providers.fcm.message import build_body, data_strings, payload_bytes
from push_core.providers.payload_limits import ELLIPSIS, PayloadTooLarge, trim_to_fit
from push_core.providers.webpush import payload as webpush_payload
from push_core.providers.webpush.encryption import MAX_PLAINTEXT_BYTES as WEBPUSH_LIMIT
from push_core.providers.webpush.payload import render_payload

MESSAGE_ID = "01JD0000000000000000000MSG"
# Keys every builder sets itself; the publisher's data is compared on the others.
RESERVED_KEYS = frozenset({"aps", "link", "pushlane_id"})
TRICKY = [
    "😀",  # astral: four bytes of UTF-8, a surrogate pair in UTF-16
    "👨\u200d👩\u200d👧",  # a family joined by zero-width joiners
    "👍🏽",  # a skin-tone modifier
    "e\u0301",  # e and a combining acute accent
    "\u0915\u094d\u0937",  # Devanagari conjunct with a virama
    "\ufe0f",  # a variation selector
    '"',
    "\\",
    "\n",
    "\x00",  # escaped as \u0000: six bytes of JSON for one character
    "漢",
    "a",
]
# Lone surrogates are left out: no UTF-8 request can carry one, so the API must refuse them before this point.
characters = st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from(TRICKY))
short_texts = st.lists(characters, max_size=30).map("".join)
# Long texts are short ones repeated, so a good share of examples is over every limit.
long_texts = st.tuples(st.lists(characters, min_size=1, max_size=12).map("".join), st.integers(1, 1500)).map(
    lambda pair: (pair[0] * pair[1])[:4096]
)
bodies = st.one_of(short_texts, long_texts).filter(bool)
titles = st.one_of(st.none(), short_texts.filter(bool), long_texts.map(lambda text: text[:250]))
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**53), 2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        short_texts,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(short_texts, inner, max_size=4)),
    max_leaves=12,
)
data_keys = short_texts.filter(lambda key: key not in RESERVED_KEYS)
datas = st.one_of(
    st.none(),
    st.dictionaries(data_keys, json_values, max_size=6),
    # Sometimes data near or over the limits, which no trimming of texts can help.
    st.dictionaries(data_keys, long_texts, min_size=1, max_size=2),
    # And data that leaves room for part of a title only.
    st.integers(3000, 4000).map(lambda size: {"blob": "x" * size}),
)
messages = st.builds(
    lambda title, body, data, importance: PushMessage(
        publication_id=MESSAGE_ID,
        content=MessageContent(title=title, body=body, data=data, importance=importance),
    ),
    titles,
    bodies,
    datas,
    st.integers(1, 5),
)
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _extends_previous(char: str) -> bool:
    """Whether char modifies the character before it (so a cut just before it would change that character)."""
    return char == "\u200d" or 0x1F3FB <= ord(char) <= 0x1F3FF or unicodedata.category(char) in ("Mn", "Mc", "Me")


def _assert_trimmed_from(original: str | None, result: str | None) -> None:
    """result is original, or original trimmed away, or a prefix of it ending between whole characters + "…"."""
    if result == original or not result:
        return
    assert original is not None
    assert result is not None
    assert result.endswith(ELLIPSIS)
    kept = result[: -len(ELLIPSIS)]
    assert kept
    assert len(kept) < len(original)
    assert original.startswith(kept)
    assert not _extends_previous(original[len(kept)])
    assert not kept.endswith("\u200d")


def _assert_body_before_title(message: PushMessage, title: str | None, body: str | None) -> None:
    content = message.content
    _assert_trimmed_from(content.body, body)
    _assert_trimmed_from(content.title, title)
    if title != content.title:
        assert body == "", "the title is only shortened once the body is gone"
    assert title != "", "a title trimmed away is left out"


def _without(content: MessageContent) -> MessageContent:
    """The same message with nothing left to trim."""
    return content.model_copy(update={"title": None, "body": ""})


@PROPERTY_SETTINGS
@given(messages)
def test_apns_payloads_fit_are_json_and_keep_the_data(message: PushMessage):
    try:
        build_request(PushMessage(MESSAGE_ID, _without(message.content)), "com.app")
    except PayloadTooLarge:
        # Refused exactly when even an empty body and no title would not fit.
        with pytest.raises(PayloadTooLarge):
            build_request(message, "com.app", trim=True)
        return
    request = build_request(message, "com.app", trim=True)
    assert len(request.payload) <= APNS_LIMIT
    payload = json.loads(request.payload)
    data = message.content.data or {}
    assert {k: payload[k] for k in data} == data
    alert = payload["aps"]["alert"]
    _assert_body_before_title(message, alert.get("title"), alert["body"])
    try:
        untrimmed = build_request(message, "com.app", trim=False)
    except PayloadTooLarge:
        return
    assert request.payload == untrimmed.payload  # a payload that fits is left as it is


@PROPERTY_SETTINGS
@given(messages)
def test_fcm_payloads_fit_are_json_and_keep_the_data(message: PushMessage):
    try:
        build_body(PushMessage(MESSAGE_ID, _without(message.content)))
    except PayloadTooLarge:
        with pytest.raises(PayloadTooLarge):
            build_body(message)
        return
    body = build_body(message)
    document = json.loads(body.for_token("tok:1"))["message"]
    assert payload_bytes(document) <= FCM_LIMIT
    assert document["data"] == {**data_strings(message.content.data), "pushlane_id": MESSAGE_ID}
    notification = document["notification"]
    _assert_body_before_title(message, notification.get("title"), notification["body"])
    with mock.patch.object(fcm_message, "MAX_PAYLOAD_BYTES", 10**9):
        untrimmed = json.loads(build_body(message).for_token("tok:1"))["message"]
    if payload_bytes(untrimmed) <= FCM_LIMIT:
        assert document == untrimmed


@PROPERTY_SETTINGS
@given(messages)
def test_web_push_plaintexts_fit_one_record_are_json_and_keep_the_data(message: PushMessage):
    plaintext = render_payload(message)
    document = json.loads(plaintext)
    assert document.get("data") == message.content.data
    bare = render_payload(PushMessage(MESSAGE_ID, _without(message.content)))
    if len(bare) > WEBPUSH_LIMIT:
        # Left over the limit (for encryption to refuse) exactly when no text could make it fit.
        assert plaintext == bare
        return
    assert len(plaintext) <= WEBPUSH_LIMIT
    _assert_body_before_title(message, document.get("title"), document["body"])
    with mock.patch.object(webpush_payload, "MAX_PLAINTEXT_BYTES", 10**9):
        untrimmed = render_payload(message)
    if len(untrimmed) <= WEBPUSH_LIMIT:
        assert plaintext == untrimmed


@PROPERTY_SETTINGS
@given(st.lists(st.one_of(short_texts, long_texts), min_size=1, max_size=3), st.integers(0, 20_000))
def test_trimming_reaches_the_limit_or_empties_every_text(texts: list[str], limit: int):
    document: dict[str, Any] = {f"t{i}": text for i, text in enumerate(texts)}

    def size() -> int:
        return len(json.dumps(document, ensure_ascii=False).encode())

    fitted = trim_to_fit(size, limit, [(document, key) for key in list(document)])

    assert fitted == size()
    assert fitted <= limit or not any(document.values())
    assert "t0" in document, "the first text (the body) stays, even empty"
    for i, original in enumerate(texts):
        _assert_trimmed_from(original, document.get(f"t{i}"))
        if i and document.get(f"t{i}") != original:
            assert not any(document.get(f"t{j}") for j in range(i)), "texts are trimmed in order"
            assert document.get(f"t{i}") != "", "a later text trimmed away is removed"


def test_a_trimmed_body_loses_just_enough():
    message = PushMessage(MESSAGE_ID, MessageContent(body="ü" * 3000))  # 6,000 bytes of UTF-8
    plaintext = render_payload(message)
    assert WEBPUSH_LIMIT - 3 < len(plaintext) <= WEBPUSH_LIMIT  # short of the limit by less than one "ü" + "…"
    document = json.loads(build_body(message).for_token("t"))["message"]
    assert FCM_LIMIT - 3 < payload_bytes(document) <= FCM_LIMIT


def test_a_cut_never_separates_a_character_from_its_accent_or_joined_emoji():
    family = "👨\u200d👩\u200d👧"
    for text in ("e\u0301" * 3000, family * 1000, "👍🏽" * 1500):
        body = json.loads(render_payload(PushMessage(MESSAGE_ID, MessageContent(body=text))))["body"]
        assert body.endswith(ELLIPSIS)
        kept = body.removesuffix(ELLIPSIS)
        unit = {"e": "e\u0301", "👨": family, "👍": "👍🏽"}[text[0]]
        assert len(kept) % len(unit) == 0
        assert kept == unit * (len(kept) // len(unit))
