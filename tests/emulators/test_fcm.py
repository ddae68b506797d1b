"""FCM emulator: the OAuth token exchange, messages:send over both protocols, each v1 error code path."""

from __future__ import annotations

import json
import time
from typing import Any

import google.auth.transport.requests
import google.oauth2.service_account
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dev.emulators import FcmEmulator
from tests.emulators.conftest import FCM_SCOPE, PROJECT_ID, h2_client, oauth_assertion

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEVICE = "dGVzdC1kZXZpY2U6APA91bH-token_1"


@pytest.fixture(scope="module")
def account(_fcm: FcmEmulator) -> dict[str, Any]:
    return _fcm.create_service_account(PROJECT_ID)


def _exchange(
    session: requests.Session, fcm: FcmEmulator, assertion: str, grant_type: str = GRANT
) -> requests.Response:
    return session.post(
        fcm.token_uri, data={"grant_type": grant_type, "assertion": assertion}, verify=fcm.ca_path, timeout=5
    )


@pytest.fixture
def access_token(fcm: FcmEmulator, account: dict[str, Any], session: requests.Session) -> str:
    return str(_exchange(session, fcm, oauth_assertion(account)).json()["access_token"])


def _send(
    session: requests.Session,
    fcm: FcmEmulator,
    access_token: str | None,
    body: Any,
    project: str = PROJECT_ID,
) -> requests.Response:
    headers = {"authorization": f"Bearer {access_token}"} if access_token else {}
    return session.post(
        f"{fcm.url}/v1/projects/{project}/messages:send",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
        verify=fcm.ca_path,
        timeout=5,
    )


def _error_code(answer: requests.Response) -> str:
    return str(answer.json()["error"]["details"][0]["errorCode"])


def test_the_generated_service_account_looks_like_googles(account, fcm):
    assert account["type"] == "service_account"
    assert account["project_id"] == PROJECT_ID
    assert account["client_email"].endswith(f"@{PROJECT_ID}.iam.gserviceaccount.com")
    assert account["token_uri"] == fcm.url + "/token"
    key = serialization.load_pem_private_key(account["private_key"].encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048


def test_a_valid_assertion_is_exchanged_for_an_access_token(fcm, account, session):
    answer = _exchange(session, fcm, oauth_assertion(account))
    assert answer.status_code == 200
    document = answer.json()
    assert document["expires_in"] == 3599
    assert document["token_type"] == "Bearer"
    assert document["access_token"]


def test_google_auth_refreshes_credentials_against_the_token_endpoint(fcm, account, session):
    credentials = google.oauth2.service_account.Credentials.from_service_account_info(account, scopes=[FCM_SCOPE])
    session.verify = fcm.ca_path
    credentials.refresh(google.auth.transport.requests.Request(session=session))
    assert credentials.token
    assert _send(session, fcm, credentials.token, {"message": {"token": DEVICE}}).status_code == 200


def _other_key_assertion(account: dict[str, Any]) -> str:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = stranger.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return oauth_assertion({**account, "private_key": pem})


@pytest.mark.parametrize(
    ("make_assertion", "status", "error"),
    [
        (_other_key_assertion, 400, "invalid_grant"),
        (lambda account: oauth_assertion(account, aud="https://login.example.com/token"), 400, "invalid_grant"),
        (
            lambda account: oauth_assertion(account, scope="https://www.googleapis.com/auth/datastore"),
            400,
            "invalid_scope",
        ),
        (lambda account: oauth_assertion(account, exp=int(time.time()) + 7200), 400, "invalid_grant"),
        (
            lambda account: oauth_assertion(account, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
            400,
            "invalid_grant",
        ),
        (lambda account: oauth_assertion(account, iss="nobody@example.iam.gserviceaccount.com"), 401, "invalid_client"),
        (lambda account: "not.a.jwt", 400, "invalid_grant"),
    ],
    ids=["wrong-key", "wrong-aud", "wrong-scope", "lifetime-over-an-hour", "expired", "unknown-client", "garbage"],
)
def test_a_bad_assertion_gets_an_oauth_error(fcm, account, session, make_assertion, status, error):
    answer = _exchange(session, fcm, make_assertion(account))
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert answer.json()["error_description"]


def test_a_wrong_grant_type_is_unsupported(fcm, account, session):
    answer = _exchange(session, fcm, oauth_assertion(account), grant_type="client_credentials")
    assert (answer.status_code, answer.json()["error"]) == (400, "unsupported_grant_type")


def test_a_valid_message_over_http11_is_accepted_and_recorded(fcm, access_token, session, account):
    message = {
        "token": DEVICE,
        "notification": {"title": "Hi"},
        "data": {"k": "v"},
        "android": {"priority": "HIGH", "ttl": "3.5s"},
    }
    answer = _send(session, fcm, access_token, {"message": message})
    assert answer.status_code == 200
    name = answer.json()["name"]
    assert name.startswith(f"projects/{PROJECT_ID}/messages/")
    (entry,) = fcm.ledger.delivered()
    assert entry.protocol == "http/1.1"
    assert entry.data["message"] == message
    assert entry.data["target"] == {"token": DEVICE}
    assert entry.data["project"] == PROJECT_ID
    assert entry.data["access_token"] == access_token
    assert entry.data["client_email"] == account["client_email"]
    assert entry.data["name"] == name


def test_a_valid_message_over_http2_is_accepted(fcm, access_token):
    with h2_client(fcm) as client:
        answer = client.request(
            "POST",
            f"/v1/projects/{PROJECT_ID}/messages:send",
            [("authorization", f"Bearer {access_token}"), ("content-type", "application/json")],
            json.dumps({"message": {"topic": "news", "data": {"a": "b"}}}).encode(),
        )
    assert answer.status == 200
    assert fcm.ledger.entries()[0].protocol == "h2"
    assert fcm.ledger.entries()[0].data["target"] == {"topic": "news"}


def test_validate_only_is_recorded_as_validated_not_delivered(fcm, access_token, session):
    answer = _send(session, fcm, access_token, {"message": {"token": DEVICE}, "validate_only": True})
    assert answer.status_code == 200
    assert fcm.ledger.delivered() == []
    (entry,) = fcm.ledger.entries()
    assert (entry.outcome, entry.data["validate_only"]) == ("validated", True)
    assert fcm.ledger.counts() == {"200 validate_only": 1}


@pytest.mark.parametrize(
    "access",
    [None, "ya29.never-issued"],
    ids=["missing", "unknown"],
)
def test_send_without_a_valid_access_token_is_401_unauthenticated(fcm, session, access):
    answer = _send(session, fcm, access, {"message": {"token": DEVICE}})
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"
    assert "details" not in answer.json()["error"]


def test_an_access_token_of_another_project_is_401(fcm, access_token, session):
    answer = _send(session, fcm, access_token, {"message": {"token": DEVICE}}, project="another-project")
    assert answer.status_code == 401


def test_an_expired_access_token_is_401(fcm, access_token, session, monkeypatch):
    later = time.time() + 3600
    monkeypatch.setattr("dev.emulators.fcm.time.time", lambda: later)
    assert _send(session, fcm, access_token, {"message": {"token": DEVICE}}).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"message": {"token": DEVICE, "topic": "news"}},
        {"message": {"notification": {"title": "no target"}}},
        {"message": {"token": DEVICE, "data": {"count": 3}}},
        {"message": {"token": DEVICE, "data": {"from": "x"}}},
        {"message": {"token": DEVICE, "android": {"priority": "URGENT"}}},
        {"message": {"token": DEVICE, "android": {"ttl": "3600"}}},
        {"message": {"token": DEVICE, "android": {"ttl": "2419201s"}}},
        {"message": {"token": DEVICE, "android": {"data": {"n": 1}}}},
        {"message": {"token": DEVICE, "apns": {"headers": {"apns-priority": 10}}}},
        {"message": {"token": DEVICE, "colour": "red"}},
        {"message": {"token": DEVICE}, "dry_run": True},
        {"message": {"token": "has spaces in it"}},
        {"message": {"topic": "bad topic!"}},
        {"message": {"token": DEVICE, "data": {"big": "x" * 4100}}},
        {"message": {"topic": "news", "data": {"big": "x" * 2100}}},
        {"message": "not an object"},
        ["not", "an", "object"],
    ],
    ids=[
        "two-targets",
        "no-target",
        "non-string-data",
        "reserved-data-key",
        "bad-android-priority",
        "ttl-without-unit",
        "ttl-over-four-weeks",
        "non-string-android-data",
        "non-string-apns-header",
        "unknown-message-field",
        "unknown-request-field",
        "malformed-token",
        "malformed-topic",
        "token-payload-over-4096",
        "topic-payload-over-2048",
        "message-not-an-object",
        "body-not-an-object",
    ],
)
def test_an_invalid_message_is_400_invalid_argument(fcm, access_token, session, body):
    answer = _send(session, fcm, access_token, body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["details"] == [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"}
    ]
    assert fcm.ledger.entries() == []


def test_camel_case_field_names_are_accepted_as_google_does(fcm, access_token, session):
    body = {
        "validateOnly": False,
        "message": {"token": DEVICE, "fcmOptions": {"analyticsLabel": "x"}, "android": {"collapseKey": "c"}},
    }
    assert _send(session, fcm, access_token, body).status_code == 200


def test_malformed_json_is_400_invalid_argument(fcm, access_token, session):
    answer = session.post(
        f"{fcm.url}/v1/projects/{PROJECT_ID}/messages:send",
        data=b"{not json",
        headers={"authorization": f"Bearer {access_token}"},
        verify=fcm.ca_path,
        timeout=5,
    )
    assert (answer.status_code, _error_code(answer)) == (400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    ("reason", "status", "rpc_status"),
    [("UNREGISTERED", 404, "NOT_FOUND"), ("SENDER_ID_MISMATCH", 403, "PERMISSION_DENIED")],
)
def test_a_dead_token_gets_its_error_code(fcm, access_token, session, reason, status, rpc_status):
    fcm.mark_dead([DEVICE], reason=reason)
    answer = _send(session, fcm, access_token, {"message": {"token": DEVICE}})
    assert answer.status_code == status
    assert answer.json()["error"]["status"] == rpc_status
    assert _error_code(answer) == reason
    assert fcm.ledger.counts() == {f"{status} {reason}": 1}


@pytest.mark.parametrize(
    ("knob", "status", "code"),
    [
        ("throttle_rate", 429, "QUOTA_EXCEEDED"),
        ("unavailable_rate", 503, "UNAVAILABLE"),
        ("internal_error_rate", 500, "INTERNAL"),
        ("auth_error_rate", 401, "THIRD_PARTY_AUTH_ERROR"),
        ("bad_request_rate", 400, "INVALID_ARGUMENT"),
    ],
)
def test_injected_faults_get_fcm_error_codes(fcm, access_token, session, knob, status, code):
    fcm.faults.update(**{knob: 1.0, "retry_after_s": 42})
    answer = _send(session, fcm, access_token, {"message": {"token": DEVICE}})
    assert (answer.status_code, _error_code(answer)) == (status, code)
    if code in ("QUOTA_EXCEEDED", "UNAVAILABLE"):
        assert answer.headers["retry-after"] == "42"
    else:
        assert "retry-after" not in answer.headers


def test_firebase_admin_send_each_reaches_the_emulator(fcm, account, monkeypatch):
    firebase_admin = pytest.importorskip("firebase_admin")
    from firebase_admin import credentials, messaging

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fcm.ca_path)
    monkeypatch.setattr(messaging._MessagingService, "FCM_URL", fcm.url + "/v1/projects/{0}/messages:send")
    app = firebase_admin.initialize_app(credentials.Certificate(account), name="emulator-test")
    try:
        fcm.mark_dead(["dead-token"])
        batch = messaging.send_each(
            [
                messaging.Message(fid=DEVICE, data={"k": "v"}, notification=messaging.Notification("T", "B")),
                messaging.Message(fid="dead-token"),
            ],
            app=app,
        )
    finally:
        firebase_admin.delete_app(app)
    assert batch.success_count == 1
    assert isinstance(batch.responses[1].exception, messaging.UnregisteredError)
    (entry,) = fcm.ledger.delivered()
    assert entry.data["message"]["notification"] == {"title": "T", "body": "B"}
