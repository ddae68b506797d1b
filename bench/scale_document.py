"""docs/PERFORMANCE.md's figures of the scale model, rendered from bench/results.json (SCALE_FIGURES)."""

from collections.abc import Mapping
from typing import Any

_KINDS = {
    "dynamodb_writes": "DynamoDB writes",
    "lambda_duration": "Lambda duration",
    "dynamodb_reads": "DynamoDB reads",
    "sqs": "SQS",
    "cloudwatch_logs": "CloudWatch Logs",
    "xray_traces": "X-Ray",
    "lambda_requests": "Lambda requests",
    "secrets_manager": "Secrets Manager",
}


def _subscribers(count: int) -> str:
    return f"{count // 1_000_000}M" if count >= 1_000_000 else f"{count // 1000}k"


def _shard_table(model: Mapping[str, Any]) -> list[str]:
    default = model["default_topic_shards"]
    rows = ["| TopicShards | typical | pessimistic | from idle |", "|---|---|---|---|"]
    for shards, at in model["at_1m"].items():
        label = f"{shards} (default)" if int(shards) == default else shards
        typical = f"**{at['typical_s']} s**" if int(shards) == default else f"{at['typical_s']} s"
        rows.append(f"| {label} | {typical} | {at['pessimistic_s']} s | {at['from_idle_s']} s |")
    return rows


def _verdict(model: Mapping[str, Any]) -> str:
    at = model["at_1m"]
    default = at[str(model["default_topic_shards"])]
    every = all(shards["meets_60_s"] for shards in at.values())
    return (
        ("Every setting meets" if every else "NOT every setting meets")
        + " the 60 s target with the typical timings; the default "
        + ("also with" if default["meets_60_s_pessimistic"] else "NOT with")
        + " the pessimistic ones."
    )


def _growth(model: Mapping[str, Any]) -> str:
    default = model["default_topic_shards"]
    runs = [run for run in model["runs"] if run["topic_shards"] == default]
    sizes = " → ".join(_subscribers(run["subscribers"]) for run in runs)
    times = ", ".join(f"{run['modeled_seconds']['typical']} s" for run in runs)
    return f"Growth at the default {default} shards, {sizes} subscribers: {times} (typical)."


def _cost(results: Mapping[str, Any]) -> list[str]:
    cost = results["cost_model"]
    calls = cost["calls_per_million"]
    parts = sorted(cost["cost_breakdown_per_million_usd"].items(), key=lambda item: -item[1])
    breakdown = ", ".join(f"{_KINDS.get(kind, kind)} ${value:.4f}" for kind, value in parts)
    what_ifs = "; ".join(
        f"{change['change']}: ${change['cost_per_million_usd']} ({change['modeled_seconds']['typical']} s typical)"
        for change in results["scale_model"]["what_if"]
    )
    return [
        f"**Cost per million APNs deliveries: ${cost['cost_per_million_usd']}** at 1M (`cost_per_million_usd`; "
        f"target ≤ $0.02; SNS mobile push charges ${cost['sns_mobile_push_per_million_usd']:.2f}; "
        f"${cost['cost_per_million_from_idle_usd']} when every execution environment starts cold). Prices in "
        f"`bench/prices.py`, dated {cost['prices_date']}: {breakdown}.",
        "",
        f"Per million deliveries: {calls['dynamodb_requests']:,.0f} DynamoDB requests, "
        f"{calls['dynamodb_read_units']:,.0f} read units, {calls['dynamodb_write_units']:,.0f} write units, "
        f"{calls['sqs_requests']:,.0f} SQS requests, {calls['lambda_invocations']:,.0f} Lambda invocations "
        f"({calls['expand_jobs']:,.0f} expand jobs, {calls['delivery_batches']:,.0f} delivery batches). "
        f"What-ifs the model reports: {what_ifs}.",
    ]


def figures(results: Mapping[str, Any]) -> str:
    """The shard table, the verdict, the growth and the cost, every figure from ``results``."""
    model = results["scale_model"]
    return "\n".join([*_shard_table(model), "", _verdict(model), _growth(model), "", *_cost(results)])
