"""Each platform's typed view of a target's stored extras: the stored shape round-trips, old items still read."""

from push_core.models import Ping, Platform, Target
from push_core.pipeline.send import ping_target
from push_core.providers.apns.target import ApnsExtras
from push_core.providers.webpush.target import SubscriptionKeys


def test_apns_extras_round_trip_and_default_to_production():
    assert ApnsExtras.of(ApnsExtras("sandbox").as_push()) == ApnsExtras("sandbox")
    assert ApnsExtras.of({}) == ApnsExtras("production")  # devices stored before environments existed
    assert ApnsExtras.of({"environment": "staging"}).environment == "production"  # never a route APNs lacks


def test_subscription_keys_round_trip_and_missing_keys_read_as_empty():
    keys = SubscriptionKeys("BPub", "auth16")
    assert keys.as_push() == {"p256dh": "BPub", "auth": "auth16"}  # PushSubscription.toJSON()'s names
    assert SubscriptionKeys.of(keys.as_push()) == keys
    assert SubscriptionKeys.of({}) == SubscriptionKeys("", "")


def test_an_inbox_ping_becomes_a_push_target_carrying_only_its_platforms_extras():
    ping = Ping(Platform.APNS, "ab" * 32, ApnsExtras("sandbox").as_push())
    inbox = Target(device_id="d1", platform=Platform.INBOX, token="mine", push=ping.as_push())
    assert Ping.of(inbox.push) == ping
    assert ping_target(inbox) == Target(
        device_id="d1", platform=Platform.APNS, token="ab" * 32, push={"environment": "sandbox"}
    )


def test_an_inbox_device_without_a_ping_has_no_ping_target():
    assert ping_target(Target(device_id="d1", platform=Platform.INBOX, token="mine")) is None
    assert Ping.of({"ping_platform": "fcm"}) is None  # half a ping is no ping
