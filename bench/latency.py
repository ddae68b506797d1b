"""The one table of timings the scale model assumes for AWS and APNs, each with where it comes from.

Nothing here is measured by the benchmark: these are the service-side numbers a machine without AWS
cannot observe. CPU spent in pushlane's own code is measured instead (bench/scale_model.py) and only
scaled by the Lambda CPU share below. Every modeled wall time is reported for both columns, so a
reader can see how much the answer leans on them.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Assumption:
    name: str
    typical: float
    pessimistic: float
    unit: str
    source: str


TABLE: tuple[Assumption, ...] = (
    Assumption(
        "sqs_to_lambda_s", 0.10, 0.50, "s",
        "A sent message reaching a handler through the SQS event source (pollers long-poll, so a message "
        "is returned as soon as it is stored). Not published by AWS; assumed, pessimistic 5x.",
    ),
    Assumption(
        "lambda_invoke_overhead_s", 0.010, 0.030, "s",
        "Warm invoke: runtime hand-off, Powertools batch processing, record parsing. Assumed.",
    ),
    Assumption(
        "dynamodb_item_op_s", 0.008, 0.020, "s",
        "GetItem / UpdateItem / PutItem of a small item. AWS: 'single-digit millisecond performance at any "
        "scale' (DynamoDB product page); client-side 10-20 ms is commonly measured (dynobase.dev, DynamoDB "
        "performance & latency).",
    ),
    Assumption(
        "dynamodb_transaction_s", 0.020, 0.050, "s",
        "TransactWriteItems of up to 100 small items: two-phase, about 2-3 item writes. Assumed.",
    ),
    Assumption(
        "dynamodb_query_mb_s", 0.050, 0.150, "s",
        "Server time and transfer for 1 MB of Query results (128 read units, eventually consistent); the "
        "client's parsing of the page is measured CPU, not part of this. Assumed.",
    ),
    Assumption(
        "sqs_send_batch_s", 0.020, 0.050, "s",
        "One SendMessageBatch call carrying up to 256 KB. Assumed (SQS stores each message redundantly "
        "before answering).",
    ),
    Assumption(
        "apns_slice_s", 0.20, 0.50, "s",
        "Network wait for one slice of 500 APNs requests in flight on one HTTP/2 connection, until the last "
        "answer. APNs advertises SETTINGS_MAX_CONCURRENT_STREAMS = 500 (openradar rdar://27870881; Apple "
        "Developer Forums thread 54407), so a slice is one flight. Users report 150 ms to several hundred ms "
        "per request on one connection and about 1,000/s per connection before latency grows "
        "(jchambers/pushy#399), up to 10,000/s near Apple (sideshow/apns2#68): 0.2 s is 2,500/s, 0.5 s "
        "1,000/s. The sender's own CPU per request is measured and added apart.",
    ),
    Assumption(
        "lambda_cold_start_s", 1.0, 2.0, "s",
        "Init of a new execution environment: Python runtime, imports (0.5-0.9 s measured for "
        "functions/deliver/app.py on the bench machine), first clients, TLS to APNs. Billed since "
        "2025-08-01 (AWS Compute Blog, 'AWS Lambda standardizes billing for INIT phase'). Used only in "
        "the from-idle scenario.",
    ),
    Assumption(
        "cpu_slowdown", 1.0, 1.5, "x",
        "One Graviton (arm64) vCPU against one core of the bench machine, for the same Python code. "
        "Assumed equal; pessimistic 1.5x slower.",
    ),
    Assumption(
        "lambda_mb_per_vcpu", 1769, 1769, "MB",
        "'At 1,769 MB, a function has the equivalent of one vCPU' (AWS Lambda developer guide, "
        "configuration-memory); below that a function gets that fraction of a vCPU.",
    ),
    Assumption(
        "esm_initial_batches", 5, 5, "invocations",
        "An SQS event source starts with five concurrent batches (AWS Lambda developer guide, "
        "services-sqs-scaling). From-idle scenario only.",
    ),
    Assumption(
        "esm_added_per_minute", 300, 300, "invocations",
        "...then adds up to 300 concurrent invocations per minute, up to 1,000 per event source (same page). "
        "From-idle scenario only.",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Latency:
    """One column of TABLE, by name."""

    sqs_to_lambda_s: float
    lambda_invoke_overhead_s: float
    dynamodb_item_op_s: float
    dynamodb_transaction_s: float
    dynamodb_query_mb_s: float
    sqs_send_batch_s: float
    apns_slice_s: float
    lambda_cold_start_s: float
    cpu_slowdown: float
    lambda_mb_per_vcpu: float
    esm_initial_batches: float
    esm_added_per_minute: float


def column(name: str) -> Latency:
    """The 'typical' or 'pessimistic' column of TABLE."""
    if name not in ("typical", "pessimistic"):
        raise ValueError(f"no column {name!r}")
    return Latency(**{row.name: getattr(row, name) for row in TABLE})


def as_rows() -> list[dict[str, object]]:
    """TABLE as JSON-friendly rows (results.json carries the assumptions next to the figures)."""
    return [
        {"name": r.name, "typical": r.typical, "pessimistic": r.pessimistic, "unit": r.unit, "source": r.source}
        for r in TABLE
    ]
