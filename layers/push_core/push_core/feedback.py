"""Provider feedback: a dead target is disabled and unsubscribed, and the reason is recorded."""

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from push_core.config import get_settings
from push_core.queueing import FeedbackEvent
from push_core.storage import devices as device_store
from push_core.storage import feedback as feedback_store

FEEDBACK_TTL_SECONDS = 90 * 86_400


def apply(event: FeedbackEvent) -> bool:
    """Prune the device the event names; False when it is already gone or disabled."""
    device = device_store.get_device(event.app_id, event.device_id)
    if device is None or not device.enabled:
        return False
    device_store.disable_device(device, get_settings().topic_shards)
    feedback_store.record(event, device.token, event.observed_at + FEEDBACK_TTL_SECONDS)
    return True


def handle_record(record: SQSRecord) -> None:
    """One SQS record of the feedback queue; raising marks just this record as failed."""
    apply(FeedbackEvent.model_validate_json(record.body))
