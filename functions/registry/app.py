"""Registry function: apps, keys, devices, topics, and the API's OpenAPI document and docs."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from push_core.api.resolver import HttpApi
from push_core.api.routes import apps, credentials, devices, docs, feedback, inbox, messages
from push_core.observability import logger, metrics, tracer

# Every router is included so the served OpenAPI document covers the whole API;
# API Gateway routes only the registry's own paths here.
api = HttpApi(
    apps.router,
    credentials.router,
    devices.router,
    messages.router,
    inbox.poll_router,
    inbox.confirm_router,
    feedback.router,
)
docs.install_docs(api.resolver)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api(event, context)
