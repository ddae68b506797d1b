"""Logger, Metrics and Tracer shared by every function (names from POWERTOOLS_* in the template)."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()
tracer = Tracer()
