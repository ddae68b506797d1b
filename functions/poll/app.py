"""Poll function: a device pulls its pending messages."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from push_core.api.resolver import HttpApi
from push_core.api.routes import inbox
from push_core.observability import logger, metrics, tracer

api = HttpApi(inbox.poll_router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api(event, context)
