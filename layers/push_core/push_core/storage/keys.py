"""Primary keys of every item kind, in one place so the layout can be read at a glance."""

import hashlib


def app_pk(app_id: str) -> str:
    return f"APP#{app_id}"


def key_pk(key_id: str) -> str:
    return f"KEY#{key_id}"


def device_pk(app_id: str, device_id: str) -> str:
    return f"APP#{app_id}#DEV#{device_id}"


def token_pk(app_id: str, platform: str, token: str) -> str:
    # Hashed: tokens and endpoints can be long, and the key need not reveal them.
    digest = hashlib.sha256(token.encode()).hexdigest()
    return f"APP#{app_id}#TOK#{platform}#{digest}"


def topic_pk(app_id: str, topic: str, shard: int) -> str:
    return f"APP#{app_id}#TOPIC#{topic}#{shard}"


def publication_pk(app_id: str, publication_id: str) -> str:
    return f"APP#{app_id}#PUB#{publication_id}"


def feedback_pk(app_id: str) -> str:
    return f"APP#{app_id}#FB"


def rate_pk(scope: str) -> str:
    # Outside every app's partitions: a failed-authentication window belongs to an address, not an app.
    return f"RATE#{scope}"


def shard_of(device_id: str, shards: int) -> int:
    """The topic partition a device's subscriptions live in (stable for a device)."""
    return int(hashlib.sha256(device_id.encode()).hexdigest()[:8], 16) % shards


# Sort keys under a publication's partition (see docs/ARCHITECTURE.md for each item's fields).


def job_sk(job_key: str) -> str:
    """A job's registration (an expand page, a delivery batch or a batch's retry): written once, with the
    publication's counter of outstanding jobs of its kind, so a re-sent job is not counted twice."""
    return f"JOB#{job_key}"


def expand_checkpoint_sk(job_key: str) -> str:
    """An expand job's checkpoint, written when its page is registered and sent: a redelivery is then a
    no-op. (Its prefix predates the name: the item marks an expand job, not a delivery batch.)"""
    return f"BATCH#{job_key}"


def batch_run_sk(job_key: str) -> str:
    """A delivery batch's lease and per-slice progress (storage/batch_progress.py)."""
    return f"RUN#{job_key}"
