from emulators import WebhookEmulator
from push_core.credentials import WebhookCredentials
from push_core.models import Platform
from push_core.providers.contract import Delivered, InvalidTarget, Transient
from push_core.providers.webhook.provider import WebhookProvider
from tests.providers.conftest import message, target
from tests.providers.conftest import send_and_close as _send


def test_webhook_receives_signed_json_it_can_verify(webhooks: WebhookEmulator):
    hook = webhooks.create_hook()
    provider = WebhookProvider(
        WebhookCredentials(secret=hook["secret"]), allow_loopback=True, ca_bundle=webhooks.ca_path
    )
    [outcome] = _send(provider, [target(Platform.WEBHOOK, hook["url"])], message(data={"a": 1}))

    assert isinstance(outcome, Delivered)
    [entry] = webhooks.ledger.delivered()
    assert entry.data["signature"]["verified"] is True
    body = entry.data["body"]
    assert (body["title"], body["body"], body["data"]) == ("Hello", "World", {"a": 1})
    assert entry.data["headers"]["pushlane-message-id"] == body["id"]


def test_a_wrong_secret_is_refused_by_the_receiver(webhooks: WebhookEmulator):
    hook = webhooks.create_hook()
    provider = WebhookProvider(
        WebhookCredentials(secret="whsec_wrong"), allow_loopback=True, ca_bundle=webhooks.ca_path
    )
    [outcome] = _send(provider, [target(Platform.WEBHOOK, hook["url"])])
    assert not isinstance(outcome, Delivered)
    assert webhooks.ledger.delivered() == []


def test_gone_hooks_are_dead_and_server_errors_transient(webhooks: WebhookEmulator):
    gone, alive = webhooks.create_hook(secret="whsec_" + "a" * 32), webhooks.create_hook(secret="whsec_" + "a" * 32)
    webhooks.mark_dead([gone["url"]])
    provider = WebhookProvider(
        WebhookCredentials(secret="whsec_" + "a" * 32), allow_loopback=True, ca_bundle=webhooks.ca_path
    )
    outcomes = _send(provider, [target(Platform.WEBHOOK, gone["url"]), target(Platform.WEBHOOK, alive["url"])])
    assert outcomes[0] == InvalidTarget("410")
    assert isinstance(outcomes[1], Delivered)
    webhooks.faults.update(unavailable_rate=1.0)
    [unavailable] = _send(provider, [target(Platform.WEBHOOK, alive["url"])])
    assert isinstance(unavailable, Transient)
    assert webhooks.ledger.counts()["503 ServiceUnavailable"] == 1  # the receiver really answered 503


def test_private_addresses_are_never_called(webhooks: WebhookEmulator):
    provider = WebhookProvider(WebhookCredentials(secret="s" * 20), allow_loopback=False)
    [outcome] = _send(provider, [target(Platform.WEBHOOK, "https://169.254.169.254/latest/meta-data")])
    assert outcome == InvalidTarget("EndpointNotAllowed")
