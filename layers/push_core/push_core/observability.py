"""Logger, Metrics and Tracer shared by every function (names from POWERTOOLS_* in the template)."""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
# A namespace is needed as soon as 100 metrics force a flush; never let a missing variable fail a job.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Pushlane")
tracer = Tracer()
