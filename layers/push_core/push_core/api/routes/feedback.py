"""Dead-target feedback of an app (the app's secret key)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from push_core import auth
from push_core.api.dependencies import CallerDep
from push_core.api.resolver import AUTHENTICATED, answers
from push_core.api.schemas import FeedbackList, FeedbackOut
from push_core.pipeline import feedback

router = APIGatewayHttpRouter()


@router.get(
    "/v1/feedback",
    summary="Targets providers reported dead since a time, with platform, reason and provider timestamp",
    tags=["feedback"],
    security=AUTHENTICATED,
    responses=answers(200),
)
def list_feedback(
    caller: CallerDep,
    since: Annotated[int, Query(ge=0, description="Epoch seconds")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[
        str | None,
        Query(max_length=200, pattern=feedback.CURSOR_PATTERN, description="The `cursor` of the last page"),
    ] = None,
) -> FeedbackList:
    app_id = auth.require_app_role(caller, "secret")
    items, next_cursor = feedback.list_since(app_id, since, limit, cursor)
    return FeedbackList(feedback=[FeedbackOut.model_validate(item) for item in items], cursor=next_cursor)
