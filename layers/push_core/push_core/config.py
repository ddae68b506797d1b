"""Deployment settings, read from the environment in exactly one place."""

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    """What a pushlane function needs to know about its deployment (template.yaml Globals)."""

    table_name: str
    idempotency_table_name: str
    fanout_queue_url: str
    feedback_queue_url: str
    admin_key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    topic_shards: int = Field(default=4, ge=1, le=64)
    # API Gateway accepts 10 MB; no pushlane request needs more than this.
    max_body_bytes: int = 64 * 1024
    expand_page_size: int = Field(default=1000, ge=1, le=10_000)
    inbox_ttl_days: int = 30
    publication_ttl_days: int = 30
    long_poll_max_seconds: int = 20

    @classmethod
    def from_environ(cls) -> "Settings":
        """Build settings from the function's environment variables."""
        env = os.environ
        return cls.model_validate(
            {
                "table_name": env.get("TABLE_NAME"),
                "idempotency_table_name": env.get("IDEMPOTENCY_TABLE_NAME"),
                "fanout_queue_url": env.get("FANOUT_QUEUE_URL"),
                "feedback_queue_url": env.get("FEEDBACK_QUEUE_URL"),
                "admin_key_sha256": env.get("ADMIN_KEY_SHA256"),
                **({"topic_shards": env["TOPIC_SHARDS"]} if "TOPIC_SHARDS" in env else {}),
                **({"expand_page_size": env["EXPAND_PAGE_SIZE"]} if "EXPAND_PAGE_SIZE" in env else {}),
            }
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this container, read once (cold start)."""
    return Settings.from_environ()
