from dev.emulators import WebhookEmulator
from push_core.models import Platform
from push_core.providers.contract import Delivered, InvalidTarget, Rejected, Transient
from push_core.providers.outbound_http import pinned_session
from push_core.providers.webhook.credentials import WebhookCredentials
from push_core.providers.webhook.provider import WebhookProvider
from tests.fixtures.redirecting_server import redirecting_server
from tests.fixtures.resolver import StubResolver
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
    assert entry.data["headers"]["pushlane-message-id"] == body["pushlane_id"]


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
    # Failed with its reason, never pruned: the filter's verdict is not the receiver's.
    assert outcome == Rejected("EndpointNotAllowed")


def test_a_name_that_does_not_resolve_is_retried_not_pruned(webhooks: WebhookEmulator):
    provider = WebhookProvider(WebhookCredentials(secret="s" * 20), allow_loopback=False, resolver=StubResolver([]))
    [outcome] = _send(provider, [target(Platform.WEBHOOK, "https://hooks.example/in")])
    assert outcome == Transient("NameNotResolved", 60.0)


def test_a_webhook_name_is_resolved_once_and_the_checked_address_is_the_one_connected_to(webhooks: WebhookEmulator):
    # Given a name that answers the receiver's loopback address, then 127.0.0.2 (where nothing listens)
    hook = webhooks.create_hook()
    url = hook["url"].replace("127.0.0.1", "localhost")
    resolver = StubResolver(["127.0.0.1"], ["127.0.0.2"])
    provider = WebhookProvider(
        WebhookCredentials(secret=hook["secret"]), allow_loopback=True, ca_bundle=webhooks.ca_path, resolver=resolver
    )

    [outcome] = _send(provider, [target(Platform.WEBHOOK, url)])

    assert isinstance(outcome, Delivered)
    assert resolver.lookups == ["localhost"]
    [entry] = webhooks.ledger.delivered()
    assert entry.data["headers"]["host"] == f"localhost:{webhooks.port}"  # the name, not the address


def test_a_webhook_redirect_is_never_followed(webhooks: WebhookEmulator):
    hook = webhooks.create_hook()
    with redirecting_server(webhooks.authority.server_context(("http/1.1",)), location=hook["url"]) as redirector:
        provider = WebhookProvider(
            WebhookCredentials(secret=hook["secret"]), allow_loopback=True, ca_bundle=webhooks.ca_path
        )
        [outcome] = _send(provider, [target(Platform.WEBHOOK, redirector.url + "/hook")])

    assert outcome == Rejected("302")
    assert redirector.requests == ["/hook"]
    assert webhooks.ledger.delivered() == []


def test_the_pinned_session_never_follows_a_redirect_even_when_asked_to(webhooks: WebhookEmulator):
    hook = webhooks.create_hook()
    with (
        redirecting_server(webhooks.authority.server_context(("http/1.1",)), location=hook["url"]) as redirector,
        pinned_session(allow_loopback=True) as session,
    ):
        response = session.post(redirector.url + "/hook", data=b"{}", allow_redirects=True, verify=webhooks.ca_path)

    assert (response.status_code, response.history) == (302, [])
    assert webhooks.ledger.delivered() == []
