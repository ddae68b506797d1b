from dev.emulators import FcmEmulator
from push_core.models import Platform
from push_core.providers.contract import Delivered, InvalidTarget, Rejected, Transient
from push_core.providers.fcm.credentials import FcmCredentials
from push_core.providers.fcm.oauth import ServiceAccount
from push_core.providers.fcm.provider import FcmProvider
from tests.providers.conftest import message, target
from tests.providers.conftest import send_and_close as _send

TOKEN = "dGVzdA:APA91bH-token_0123456789"


def _provider(fcm: FcmEmulator) -> FcmProvider:
    account = ServiceAccount.model_validate(fcm.create_service_account("demo-project"))
    fcm.last_account = account  # type: ignore[attr-defined]
    return FcmProvider(
        FcmCredentials(service_account=account), base_url=fcm.url, ca_bundle=fcm.ca_path, allow_loopback=True
    )


def test_delivered_message_has_notification_string_data_and_android_block(fcm: FcmEmulator):
    msg = message(importance=5, data={"count": 3, "kind": "order"}, link="https://shop.example/o/3")
    [outcome] = _send(_provider(fcm), [target(Platform.FCM, TOKEN)], msg)

    assert isinstance(outcome, Delivered)
    assert outcome.provider_id
    assert outcome.provider_id.startswith("projects/demo-project/messages/")
    [entry] = fcm.ledger.delivered()
    sent = entry.data["message"]
    assert entry.data["target"] == {"token": TOKEN}
    assert sent["notification"] == {"title": "Hello", "body": "World"}
    assert sent["data"] == {
        "count": "3",
        "kind": "order",
        "pushlane_id": msg.publication_id,
        "link": "https://shop.example/o/3",
    }
    assert sent["android"]["priority"] == "HIGH"
    assert entry.data["client_email"] == fcm.last_account.client_email  # type: ignore[attr-defined]
    assert entry.data["project"] == "demo-project"


def test_one_access_token_serves_many_sends(fcm: FcmEmulator):
    provider = _provider(fcm)
    _send(provider, [target(Platform.FCM, f"{TOKEN}{i}") for i in range(50)])
    assert len({e.data["access_token"] for e in fcm.ledger.delivered()}) == 1
    assert len(fcm.ledger.delivered()) == 50


def test_v1_error_codes_become_the_right_outcomes(fcm: FcmEmulator):
    fcm.mark_dead([TOKEN + "dead"], reason="UNREGISTERED")
    fcm.mark_dead([TOKEN + "other"], reason="SENDER_ID_MISMATCH")
    outcomes = _send(
        _provider(fcm),
        [target(Platform.FCM, TOKEN + "dead"), target(Platform.FCM, TOKEN + "other"), target(Platform.FCM, TOKEN)],
    )
    assert outcomes[0] == InvalidTarget("UNREGISTERED")
    assert outcomes[1] == InvalidTarget("SENDER_ID_MISMATCH")
    assert isinstance(outcomes[2], Delivered)


def test_quota_and_server_errors_are_transient_and_third_party_auth_is_rejected(fcm: FcmEmulator):
    fcm.faults.update(throttle_rate=1.0, retry_after_s=90)
    [quota] = _send(_provider(fcm), [target(Platform.FCM, TOKEN)])
    assert quota == Transient("QUOTA_EXCEEDED", 90)
    fcm.faults.update(throttle_rate=0.0, internal_error_rate=1.0)
    [internal] = _send(_provider(fcm), [target(Platform.FCM, TOKEN)])
    assert isinstance(internal, Transient)
    assert internal.reason == "INTERNAL"
    fcm.faults.update(internal_error_rate=0.0, auth_error_rate=1.0)
    [auth] = _send(_provider(fcm), [target(Platform.FCM, TOKEN)])
    assert auth == Rejected("THIRD_PARTY_AUTH_ERROR")


def test_a_malformed_data_override_is_rejected_not_pruned(fcm: FcmEmulator):
    bad = message()
    bad = type(bad)(
        publication_id=bad.publication_id, content=bad.content, overrides={"fcm": {"android": {"priority": "URGENT"}}}
    )
    [outcome] = _send(_provider(fcm), [target(Platform.FCM, TOKEN)], bad)
    assert outcome == Rejected("INVALID_ARGUMENT")
