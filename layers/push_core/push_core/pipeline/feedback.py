"""Provider feedback: dead targets are disabled and unsubscribed, every event is recorded, and the app may
be told through a signed webhook (what pushjack's get_expired_tokens gave, pushed instead of polled).

Only reasons that mean "this target is dead" prune, per platform, from one table: 429s and 5xx never
reach this module (they are transient), and an unknown reason is recorded but prunes nothing.
"""

import json
import time
from typing import Any

import requests
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from push_core import credentials
from push_core.config import get_settings
from push_core.models import DeviceRecord, FeedbackEvent, Platform
from push_core.observability import logger
from push_core.providers.endpoints import EndpointNotAllowed, check_webhook_url
from push_core.providers.outbound_http import pinned_session
from push_core.providers.platforms import rules_for
from push_core.providers.webhook.credentials import WebhookCredentials
from push_core.providers.webhook.signature import SIGNATURE_HEADER, sign
from push_core.storage import apps as app_store
from push_core.storage import devices as device_store
from push_core.storage import feedback as feedback_store

FEEDBACK_TTL_SECONDS = 90 * 86_400


def decide(event: FeedbackEvent, device: DeviceRecord | None) -> str:
    """What to do with the event: "pruned", or why not."""
    if device is None:
        return "unknown_device"
    if not device.enabled:
        return "already_disabled"
    if device.platform is not event.platform:  # e.g. an inbox device's ping token: the inbox still works
        return "platform_mismatch"
    rules = rules_for(event.platform)
    if rules is None or not rules.prunes(event.reason):
        return "not_a_dead_target_reason"
    # registered_at has whole seconds: prune only when the registration surely came before the 410.
    timestamp = event.provider_timestamp_ms
    if rules.dated(event.reason) and timestamp is not None and (device.registered_at + 1) * 1000 > timestamp:
        return "registered_after_provider_timestamp"
    return "pruned"


def apply(event: FeedbackEvent) -> str:
    """Decide, prune if warranted, record the event, and notify the app's feedback webhook."""
    device = device_store.get_device(event.app_id, event.device_id)
    action = decide(event, device)
    if action == "pruned" and device is not None:
        device_store.disable_device(device, get_settings().topic_shards)
    token = device.token if device is not None else None
    feedback_store.record(event, token, action, event.observed_at + FEEDBACK_TTL_SECONDS)
    logger.info("feedback", extra={"device_id": event.device_id, "reason": event.reason, "action": action})
    if action == "pruned":
        _notify(event, token)
    return action


def _notify(event: FeedbackEvent, token: str | None) -> None:
    """POST the event to the app's feedback URL, signed with its webhook secret, if it set one."""
    app = app_store.get_app(event.app_id)
    if app is None or not app.feedback_url:
        return
    secret = credentials.load(event.app_id, Platform.WEBHOOK)
    settings = get_settings()
    try:
        check_webhook_url(app.feedback_url, allow_loopback=settings.allow_loopback_targets, resolve=False)
    except EndpointNotAllowed:
        logger.warning("feedback URL not allowed", extra={"app_id": event.app_id})
        return
    body = json.dumps(
        {"type": "device.pruned", **event.model_dump(mode="json"), "token": token}, separators=(",", ":")
    ).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "pushlane-feedback/1"}
    if isinstance(secret, WebhookCredentials):
        headers[SIGNATURE_HEADER] = sign(secret.secret, body, int(time.time()))
    # A failed notification must not undo or repeat the prune: the event stays listed at GET /v1/feedback.
    # The session resolves the name once and connects to the address it checked (a notification is rare:
    # no pool is kept between them).
    try:
        with pinned_session(allow_loopback=settings.allow_loopback_targets) as session:
            session.post(
                app.feedback_url,
                data=body,
                headers=headers,
                timeout=5,
                allow_redirects=False,
                verify=settings.provider_ca_bundle or True,
            )
    except EndpointNotAllowed:
        logger.warning("feedback URL not allowed", extra={"app_id": event.app_id})
    except requests.RequestException as error:
        logger.warning("feedback webhook failed", extra={"app_id": event.app_id, "error": type(error).__name__})


def handle_record(record: SQSRecord) -> None:
    """One SQS record of the feedback queue; raising marks just this record as failed."""
    apply(FeedbackEvent.model_validate_json(record.body))


# A page cursor as the API accepts it (the sort key of a page's last record, or empty).
CURSOR_PATTERN = feedback_store.CURSOR_PATTERN


def list_since(app_id: str, since: int, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """The app's feedback records observed since ``since`` (epoch seconds), a page at a time, oldest first."""
    return feedback_store.list_since(app_id, since, limit, cursor)
