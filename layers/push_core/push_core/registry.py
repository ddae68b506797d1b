"""Apps, keys, devices and topics: the management side of pushlane."""

from dataclasses import dataclass
from typing import Any

from push_core import auth, credentials
from push_core.config import get_settings
from push_core.errors import Conflict, Forbidden, NotFound, UnprocessableEntity
from push_core.identifiers import new_sortable_id
from push_core.models import (
    ALL_DEVICES_TOPIC,
    AppRecord,
    DeviceRecord,
    KeyRecord,
    KeyRole,
    Platform,
    epoch_seconds,
    utc_now,
)
from push_core.pipeline.jobs import JobQueues, PurgeAppJob
from push_core.providers.endpoints import EndpointNotAllowed, check_push_endpoint, check_webhook_url
from push_core.storage import apps as app_store
from push_core.storage import devices as device_store
from push_core.storage import subscriptions as subscription_store


@dataclass(frozen=True)
class NewApp:
    app: AppRecord
    secret_key: auth.IssuedKey
    public_key: auth.IssuedKey


def create_app(name: str, icon: str | None) -> NewApp:
    """A new app with one secret key (publish and manage) and one public key (register devices)."""
    now = epoch_seconds(utc_now())
    app_id = new_sortable_id()
    secret = auth.issue_key(app_id, "secret", now)
    public = auth.issue_key(app_id, "public", now)
    app = AppRecord(app_id=app_id, name=name, icon=icon, created_at=now, live_secret_keys=1, live_public_keys=1)
    app_store.create_app(app, [secret.record, public.record])
    return NewApp(app=app, secret_key=secret, public_key=public)


def get_app(app_id: str) -> AppRecord:
    """The app, or NotFound."""
    app = app_store.get_app(app_id)
    if app is None:
        raise NotFound("No such app.", code="app_not_found")
    return app


def update_app(app_id: str, name: str | None, icon: str | None, feedback_url: str | None = None) -> AppRecord:
    """Rename the app, or change its icon or feedback webhook URL."""
    if name is None and icon is None and feedback_url is None:
        raise UnprocessableEntity("Send a new name, icon or feedback_url.", code="no_changes")
    if feedback_url is not None:
        try:
            check_webhook_url(feedback_url, allow_loopback=get_settings().allow_loopback_targets, resolve=False)
        except EndpointNotAllowed as error:
            raise UnprocessableEntity(f"feedback_url is not allowed: {error}.", code="endpoint_not_allowed") from error
    app = app_store.update_app(app_id, name, icon, feedback_url)
    if app is None:
        raise NotFound("No such app.", code="app_not_found")
    return app


def delete_app(app_id: str, queues: JobQueues) -> None:
    """Delete the app now (its keys stop working at once) and purge its devices in the background."""
    get_app(app_id)
    settings = get_settings()
    app_store.delete_app(app_id)
    queues.expand([PurgeAppJob(app_id=app_id, shard=s) for s in range(settings.topic_shards)])


def list_keys(app_id: str) -> list[KeyRecord]:
    """The app's keys, newest first, without secrets."""
    get_app(app_id)
    return sorted(app_store.list_app_keys(app_id), key=lambda k: (k.created_at, k.key_id), reverse=True)


def create_key(app_id: str, role: KeyRole) -> auth.IssuedKey:
    """Another key for a role, for rotation: at most two live keys per role."""
    get_app(app_id)
    issued = auth.issue_key(app_id, role, epoch_seconds(utc_now()))
    if not app_store.add_key(issued.record):
        raise Conflict(
            f"The app already has {app_store.MAX_LIVE_KEYS_PER_ROLE} live {role} keys; revoke one first.",
            code="key_limit_reached",
        )
    return issued


def revoke_key(app_id: str, key_id: str) -> None:
    """Revoke one of the app's live keys."""
    keys = {k.key_id: k for k in app_store.list_app_keys(app_id)}
    key = keys.get(key_id)
    if key is None or key.revoked or not app_store.revoke_key(app_id, key_id, key.role, epoch_seconds(utc_now())):
        raise NotFound("No such live key.", code="key_not_found")


@dataclass(frozen=True)
class Registration:
    """A device as its app describes it, already validated for its platform."""

    platform: Platform
    token: str | None
    push: dict[str, str]
    name: str | None


@dataclass(frozen=True)
class RegisteredDevice:
    device: DeviceRecord
    # None when the caller re-registered with the device's own key, which stays valid.
    key: auth.IssuedKey | None
    created: bool


def _check_endpoint(registration: Registration) -> None:
    """Refuse URLs pushlane must never call (SSRF): checked at registration, and again before each send."""
    settings = get_settings()
    try:
        if registration.platform is Platform.WEBPUSH and registration.token:
            check_push_endpoint(
                registration.token, settings.webpush_allowed_hosts, allow_loopback=settings.allow_loopback_targets
            )
        elif registration.platform is Platform.WEBHOOK and registration.token:
            # Names are resolved (and re-checked) when sending: DNS answers change, and may be absent here.
            check_webhook_url(registration.token, allow_loopback=settings.allow_loopback_targets, resolve=False)
    except EndpointNotAllowed as error:
        raise UnprocessableEntity(f"The URL is not allowed: {error}.", code="endpoint_not_allowed") from error


def register_device(caller: auth.Caller, registration: Registration) -> RegisteredDevice:
    """Register a device, or re-register the one that already has this token.

    A token names a device, but knowing it proves nothing (the public key ships inside apps), so an existing
    device is re-registered only by a caller who holds it: its own device key (the registration is renewed,
    the key stays valid) or the app's secret key (the server side recovering a device: a new key is issued
    and the old one revoked). The public key gets 409 for a known token; a device key may register only its
    own token.
    """
    app_id = auth.require_app_role(caller, "public", "secret", "device")
    settings = get_settings()
    _check_endpoint(registration)
    now = epoch_seconds(utc_now())
    for _ in range(2):  # a lost race on the token index means the device now exists: look again
        existing = (
            device_store.find_device_by_token(app_id, registration.platform, registration.token)
            if registration.token is not None
            else None
        )
        if existing is not None:
            return _reregister(caller, existing, now)
        if caller.role == "device":
            raise Forbidden(
                "A device key re-registers only its own device; register new devices with the app's public key.",
                code="device_key_cannot_register",
            )
        device_id = new_sortable_id()
        key = auth.issue_key(app_id, "device", now, device_id=device_id)
        device = DeviceRecord(
            app_id=app_id,
            device_id=device_id,
            platform=registration.platform,
            token=registration.token,
            push=registration.push,
            name=registration.name,
            created_at=now,
            registered_at=now,
            key_id=key.record.key_id,
        )
        if device_store.create_device(
            device, key.record, settings.topic_shards, max_devices=settings.max_devices_per_app
        ):
            return RegisteredDevice(device=device, key=key, created=True)
    raise Conflict("The device was registered concurrently; retry.", code="registration_conflict")


def _reregister(caller: auth.Caller, existing: DeviceRecord, now: int) -> RegisteredDevice:
    renewed = existing.model_copy(update={"registered_at": now, "enabled": True})
    if caller.role == "device" and caller.device_id == existing.device_id:
        if device_store.renew_registration(existing, now):
            return RegisteredDevice(device=renewed, key=None, created=False)
    elif caller.role == "secret":
        key = auth.issue_key(existing.app_id, "device", now, device_id=existing.device_id)
        if device_store.renew_registration(existing, now, key.record):
            renewed = renewed.model_copy(update={"key_id": key.record.key_id})
            return RegisteredDevice(device=renewed, key=key, created=False)
    else:
        raise Conflict(
            "This token is already registered to a device. Re-register it with that device's key, or with the "
            "app's secret key to issue the device a new key.",
            code="token_already_registered",
        )
    raise Conflict("The device changed while it was re-registered; retry.", code="registration_conflict")


def configure_credentials(app_id: str, fields: dict[str, Any]) -> tuple[credentials.AnyCredentials, dict[str, str]]:
    """Store the app's credentials for one platform (validated); returns them and what to show once."""
    get_app(app_id)
    creds, shown_once = credentials.prepare(fields)
    credentials.save(app_id, creds)
    return creds, shown_once


def credentials_summaries(app_id: str) -> list[credentials.AnyCredentials]:
    """The app's configured provider credentials, one per platform."""
    get_app(app_id)
    found = (credentials.load(app_id, platform) for platform in Platform if platform is not Platform.INBOX)
    return [creds for creds in found if creds is not None]


def remove_credentials(app_id: str, platform: Platform) -> None:
    """Forget the app's credentials for a platform."""
    get_app(app_id)
    if credentials.load(app_id, platform) is None:  # Secrets Manager may accept deleting a missing secret
        raise NotFound("The app has no credentials for that platform.", code="credentials_not_found")
    credentials.remove(app_id, platform)


def get_device(app_id: str, device_id: str) -> DeviceRecord:
    """The app's device, or NotFound (also for another app's device)."""
    device = device_store.get_device(app_id, device_id)
    if device is None:
        raise NotFound("No such device.", code="device_not_found")
    return device


def delete_device(app_id: str, device_id: str) -> None:
    """Delete the device with its key, subscriptions and inbox."""
    device_store.delete_device(get_device(app_id, device_id), get_settings().topic_shards)


def device_topics(app_id: str, device_id: str) -> list[str]:
    """The topics the device is subscribed to."""
    get_device(app_id, device_id)
    return subscription_store.device_topics(app_id, device_id)


def _check_topic(topic: str) -> None:
    if topic == ALL_DEVICES_TOPIC:
        raise UnprocessableEntity("Every device is always in '*'; it cannot be subscribed to.", code="reserved_topic")


def subscribe(app_id: str, device_id: str, topic: str) -> bool:
    """Subscribe the device to a topic; False when it already was."""
    _check_topic(topic)
    device = get_device(app_id, device_id)
    if not device.enabled:
        raise Conflict(
            "The device is disabled (its token was reported dead); register it again.", code="device_disabled"
        )
    settings = get_settings()
    return subscription_store.subscribe(
        device, topic, settings.topic_shards, epoch_seconds(utc_now()), max_topics=settings.max_topics_per_device
    )


def unsubscribe(app_id: str, device_id: str, topic: str) -> None:
    """Unsubscribe the device from a topic."""
    _check_topic(topic)
    device = get_device(app_id, device_id)
    if not subscription_store.unsubscribe(device, topic, get_settings().topic_shards):
        raise NotFound("The device is not subscribed to that topic.", code="not_subscribed")


def topic_subscriber_count(app_id: str, topic: str) -> int:
    """How many devices a publication to this topic reaches ('*': every device of the app)."""
    return subscription_store.count_subscribers(app_id, topic, get_settings().topic_shards)


def purge_app_page(job: PurgeAppJob) -> PurgeAppJob | None:
    """Delete one page of a deleted app's devices; the job for the next page, if any."""
    settings = get_settings()
    page = subscription_store.subscriber_page(job.app_id, ALL_DEVICES_TOPIC, job.shard, job.cursor, 100)
    for target in page.targets:
        device = device_store.get_device(job.app_id, target.device_id)
        if device is not None:
            device_store.delete_device(device, settings.topic_shards)
    return job.model_copy(update={"cursor": page.next_cursor}) if page.next_cursor else None
