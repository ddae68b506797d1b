"""Every key of every item kind, made and parsed here only, so the layout can be read at a glance.

docs/ARCHITECTURE.md lists each item kind with its fields; a test fails when a prefix made here is
missing from it.
"""

import hashlib


def app_pk(app_id: str) -> str:
    return f"APP#{app_id}"


def key_pk(key_id: str) -> str:
    return f"{KEY_LISTING_PREFIX}{key_id}"


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


def apns_token_pk(team_id: str, key_id: str) -> str:
    # Outside every app's partitions too: one APNs provider token per Apple team and key, whoever uses it.
    return f"APNSTOKEN#{team_id}#{key_id}"


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


# Sort keys of the items that are alone in their partition's kind.
APP_SK = "APP"  # the app, under app_pk
KEY_SK = "KEY"  # an API key, under key_pk
DEVICE_SK = "DEV"  # the device, under device_pk
TOKEN_INDEX_SK = "TOK"  # noqa: S105 - a key, not a secret: which device holds a token, under token_pk
PUBLICATION_SK = "PUB"  # the publication and its counters, under publication_pk
PROVIDER_TOKEN_SK = "TOKEN"  # noqa: S105 - a key, not a secret: the shared APNs token, under apns_token_pk

KEY_LISTING_PREFIX = "KEY#"
SUBSCRIPTION_PREFIX = "SUB#"
INBOX_PREFIX = "MSG#"
INBOX_END = "MSG$"  # sorts after every inbox key of a device ("$" follows "#")
RECEIPT_PREFIX = "RCPT#"


def key_listing_sk(key_id: str) -> str:
    """An app's listing of one of its keys, under app_pk."""
    return f"{KEY_LISTING_PREFIX}{key_id}"


def topic_member_sk(device_id: str) -> str:
    """A device's entry in a topic shard, under topic_pk."""
    return f"DEV#{device_id}"


def subscription_sk(topic: str) -> str:
    """A device's record of one of its topics, under device_pk."""
    return f"{SUBSCRIPTION_PREFIX}{topic}"


def topic_of(subscription_key: str) -> str:
    return subscription_key.removeprefix(SUBSCRIPTION_PREFIX)


def inbox_sk(publication_id: str) -> str:
    """A message in a device's inbox, under device_pk; message ids sort by time, so the inbox does too."""
    return f"{INBOX_PREFIX}{publication_id}"


def publication_id_of(inbox_key: str) -> str:
    return inbox_key.removeprefix(INBOX_PREFIX)


def receipt_sk(device_id: str) -> str:
    """One target's receipt, under publication_pk."""
    return f"{RECEIPT_PREFIX}{device_id}"


def receipt_device_of(receipt_key: str) -> str:
    return receipt_key.removeprefix(RECEIPT_PREFIX)


def rate_window_sk(policy: str, start: int) -> str:
    """One policy's window, under rate_pk."""
    return f"{policy}#{start}"


# A feedback record's sort key starts with its observation time in 12 zero-padded digits (epoch seconds,
# enough until the year 33658), so records sort by time.
FEEDBACK_TIME_DIGITS = 12


def feedback_time_key(seconds: int) -> str:
    return f"{seconds:0{FEEDBACK_TIME_DIGITS}d}"


def feedback_sk(observed_at: int, device_id: str, reason: str, provider_timestamp_ms: int | None) -> str:
    """One feedback record, under feedback_pk: a redelivered event has the same key and overwrites itself."""
    return f"{feedback_time_key(observed_at)}#{device_id}#{reason}#{provider_timestamp_ms or 0}"
