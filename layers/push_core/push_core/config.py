"""Deployment settings, read from the environment in exactly one place."""

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    """What a pushlane function needs to know about its deployment (template.yaml Globals)."""

    table_name: str
    idempotency_table_name: str
    fanout_queue_url: str
    delivery_queue_url: str
    feedback_queue_url: str
    admin_key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    topic_shards: int = Field(default=4, ge=1, le=64)
    # API Gateway accepts 10 MB; no pushlane request needs more than this.
    max_body_bytes: int = 64 * 1024
    # Subscriptions read per expand job; DynamoDB also ends a Query page at 1 MB (~4,000 subscriptions).
    expand_page_size: int = Field(default=10_000, ge=1, le=100_000)
    # SQS's message size limit for delivery batches (256 KiB everywhere; 1 MiB where the queue allows it).
    job_message_bytes: int = Field(default=262_144, ge=16_384, le=1_048_576)
    # An audience page this small is delivered by the expand job itself instead of through the queue.
    inline_delivery_max: int = Field(default=500, ge=0, le=10_000)
    inbox_ttl_days: int = 30
    publication_ttl_days: int = 30
    long_poll_max_seconds: int = 20
    # Providers: every base URL is configurable (the local stack points them at the loopback emulators).
    secrets_prefix: str = "pushlane"
    apns_production_url: str = "https://api.push.apple.com"
    apns_sandbox_url: str = "https://api.sandbox.push.apple.com"
    fcm_url: str = "https://fcm.googleapis.com"
    # Web Push endpoints are URLs from browsers: only these push-service hosts (suffix match) are contacted.
    webpush_allowed_hosts: tuple[str, ...] = (
        "fcm.googleapis.com",
        "updates.push.services.mozilla.com",
        "push.services.mozilla.com",
        "web.push.apple.com",
        "notify.windows.com",
    )
    # An explicit CA for provider connections (the emulators' CA locally); None = the system store.
    provider_ca_bundle: str | None = None
    # Only the local stack sets this: lets webhooks and Web Push reach 127.0.0.1.
    allow_loopback_targets: bool = False
    max_in_flight: int = Field(default=1000, ge=1, le=10_000)
    # How long a provider request may go unanswered before it counts as a (retryable) timeout.
    provider_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # Limits (docs/SECURITY.md "Limits and quotas"): far above what a working app does, low enough that a leaked
    # key cannot run up the owner's AWS bill or provider quota. Rates are per minute unless named.
    rate_limit_per_key: int = Field(default=1200, ge=1)
    rate_limit_per_app: int = Field(default=6000, ge=1)
    # Failed authentications per source IP in failed_auth_window_s: the stricter budget.
    failed_auth_per_ip: int = Field(default=30, ge=1)
    failed_auth_window_s: int = Field(default=300, ge=1, le=86_400)
    max_devices_per_app: int = Field(default=1_000_000, ge=1)
    max_topics_per_device: int = Field(default=100, ge=1)
    publications_per_minute: int = Field(default=600, ge=1)
    deliveries_per_hour: int = Field(default=10_000_000, ge=1)

    @classmethod
    def from_environ(cls) -> "Settings":
        """Build settings from the function's environment variables."""
        env = os.environ
        return cls.model_validate(
            {
                "table_name": env.get("TABLE_NAME"),
                "idempotency_table_name": env.get("IDEMPOTENCY_TABLE_NAME"),
                "fanout_queue_url": env.get("FANOUT_QUEUE_URL"),
                "delivery_queue_url": env.get("DELIVERY_QUEUE_URL"),
                "feedback_queue_url": env.get("FEEDBACK_QUEUE_URL"),
                "admin_key_sha256": env.get("ADMIN_KEY_SHA256"),
                **{field: env[name] for name, field in _OPTIONAL.items() if env.get(name)},
                **(
                    {
                        "webpush_allowed_hosts": tuple(
                            h.strip() for h in env["WEBPUSH_ALLOWED_HOSTS"].split(",") if h.strip()
                        )
                    }
                    if env.get("WEBPUSH_ALLOWED_HOSTS")
                    else {}
                ),
            }
        )


# Environment variable → setting, for the settings that have defaults.
_OPTIONAL = {
    "TOPIC_SHARDS": "topic_shards",
    "EXPAND_PAGE_SIZE": "expand_page_size",
    "JOB_MESSAGE_BYTES": "job_message_bytes",
    "INLINE_DELIVERY_MAX": "inline_delivery_max",
    "SECRETS_PREFIX": "secrets_prefix",
    "APNS_PRODUCTION_URL": "apns_production_url",
    "APNS_SANDBOX_URL": "apns_sandbox_url",
    "FCM_URL": "fcm_url",
    "PROVIDER_CA_BUNDLE": "provider_ca_bundle",
    "ALLOW_LOOPBACK_TARGETS": "allow_loopback_targets",
    "MAX_IN_FLIGHT": "max_in_flight",
    "PROVIDER_TIMEOUT_S": "provider_timeout_s",
    "RATE_LIMIT_PER_KEY": "rate_limit_per_key",
    "RATE_LIMIT_PER_APP": "rate_limit_per_app",
    "FAILED_AUTH_PER_IP": "failed_auth_per_ip",
    "FAILED_AUTH_WINDOW_S": "failed_auth_window_s",
    "MAX_DEVICES_PER_APP": "max_devices_per_app",
    "MAX_TOPICS_PER_DEVICE": "max_topics_per_device",
    "PUBLICATIONS_PER_MINUTE": "publications_per_minute",
    "DELIVERIES_PER_HOUR": "deliveries_per_hour",
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this container, read once (cold start)."""
    return Settings.from_environ()
