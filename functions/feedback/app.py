"""Feedback function: SQS consumer of provider feedback (dead targets, partial batch failures) and
GET /v1/feedback for apps to list them."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from push_core.api.resolver import HttpApi
from push_core.api.routes import feedback as feedback_routes
from push_core.observability import logger, metrics, tracer
from push_core.pipeline.feedback import handle_record

processor = BatchProcessor(event_type=EventType.SQS)
api = HttpApi(feedback_routes.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if "Records" in event:  # the FeedbackQueue event source
        return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
    return api(event, context)
