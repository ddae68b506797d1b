import pytest

from push_core.providers.apns.errors import APNS_ERRORS, fallback_for_status
from push_core.providers.contract import InvalidTarget, Rejected, Transient, outcome_for
from push_core.providers.endpoints import EndpointNotAllowed, check_push_endpoint, check_webhook_url
from push_core.providers.fcm.errors import FCM_ERRORS
from push_core.providers.webpush.provider import topic_header

HOSTS = ("fcm.googleapis.com", "push.services.mozilla.com")


@pytest.mark.parametrize(
    "url",
    [
        "http://fcm.googleapis.com/x",
        "https://evil.example/x",
        "https://fcm.googleapis.com:8443/x",
        "https://127.0.0.1/x",
        "https://user:pw@fcm.googleapis.com/x",
        "https://fcm.googleapis.com.evil.example/x",
    ],
)
def test_push_endpoints_outside_the_allow_list_are_refused(url):
    with pytest.raises(EndpointNotAllowed):
        check_push_endpoint(url, HOSTS)


def test_push_endpoints_on_allowed_hosts_and_subdomains_pass():
    check_push_endpoint("https://fcm.googleapis.com/fcm/send/abc", HOSTS)
    check_push_endpoint("https://updates.push.services.mozilla.com/wpush/v2/x", HOSTS)


def test_loopback_only_when_the_local_stack_allows_it():
    check_push_endpoint("https://127.0.0.1:8443/push/1", HOSTS, allow_loopback=True)
    check_webhook_url("https://localhost:9000/hook", allow_loopback=True)
    with pytest.raises(EndpointNotAllowed):
        check_webhook_url("https://localhost:9000/hook")


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.8/h",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/h",
        "https://192.168.1.1/h",
        "https://100.64.0.1/h",
        "https://100.100.100.200/latest/meta-data",
        "https://[2002:a9fe:a9fe::1]/h",
        "https://[64:ff9b::a9fe:a9fe]/h",
        "https://[::ffff:127.0.0.1]/h",
        "https://[::7f00:1]/h",
        "https://[fd00:ec2::254]/latest/meta-data",
        "https://192.0.0.100/h",
        "https://224.0.0.1/h",
        "https://[ff0e::1]/h",
    ],
)
def test_webhooks_to_addresses_that_are_not_globally_routable_are_refused(url):
    with pytest.raises(EndpointNotAllowed):
        check_webhook_url(url, resolve=False)


@pytest.mark.parametrize("url", ["https://8.8.8.8/h", "https://[2606:4700::1111]/h", "https://[64:ff9b::808:808]/h"])
def test_webhooks_to_globally_routable_addresses_pass(url):
    check_webhook_url(url, resolve=False)


def test_error_tables_classify_reasons():
    assert outcome_for(APNS_ERRORS, "Unregistered", fallback=fallback_for_status(410), provider_timestamp_ms=5) == (
        InvalidTarget("Unregistered", 5)
    )
    assert outcome_for(APNS_ERRORS, "PayloadTooLarge", fallback=fallback_for_status(413)) == Rejected("PayloadTooLarge")
    assert outcome_for(APNS_ERRORS, "TooManyRequests", fallback=fallback_for_status(429)) == Transient(
        "TooManyRequests", 60
    )
    assert outcome_for(APNS_ERRORS, "ServiceUnavailable", fallback=fallback_for_status(503), retry_after_s=7) == (
        Transient("ServiceUnavailable", 7)
    )
    assert outcome_for(APNS_ERRORS, "Brand new", fallback=fallback_for_status(502)) == Transient("Brand new", 5)
    assert outcome_for(FCM_ERRORS, "UNREGISTERED", fallback=FCM_ERRORS["INTERNAL"]) == InvalidTarget("UNREGISTERED")
    assert outcome_for(FCM_ERRORS, "QUOTA_EXCEEDED", fallback=FCM_ERRORS["INTERNAL"]).retry_after_s == 60  # type: ignore[union-attr]


def test_topic_header_is_short_and_url_safe():
    assert topic_header("scores") == "scores"
    long = topic_header("a collapse key with spaces and more than thirty-two characters")
    assert len(long) == 32
    assert long.replace("-", "").replace("_", "").isalnum()
