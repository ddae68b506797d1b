"""A device reading its inbox: poll and confirm (the device's own key)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from push_core import auth, inbox
from push_core.api.dependencies import CallerDep
from push_core.api.resolver import AUTHENTICATED, answers
from push_core.api.schemas import ConfirmOut, ConfirmRequest, MessageOut, PollOut
from push_core.identifiers import SORTABLE_ID_PATTERN

poll_router = APIGatewayHttpRouter()
confirm_router = APIGatewayHttpRouter()
DeviceId = Annotated[str, Path(pattern=SORTABLE_ID_PATTERN)]
_TAGS = ["inbox"]


@poll_router.get(
    "/v1/devices/<device_id>/messages",
    summary="Pending (unconfirmed) messages, oldest first; `wait` long-polls up to 20 s",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(200),
)
def poll(
    caller: CallerDep,
    device_id: DeviceId,
    cursor: Annotated[str | None, Query(pattern=SORTABLE_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    wait: Annotated[int, Query(ge=0, le=20)] = 0,
) -> PollOut:
    app_id = auth.device_caller_app(caller, device_id, allow_secret_key=False)
    result = inbox.poll(app_id, device_id, cursor, limit, wait)
    return PollOut(messages=[MessageOut.of(m) for m in result.messages], cursor=result.cursor)


@confirm_router.post(
    "/v1/devices/<device_id>/messages/confirm",
    summary="Confirm messages by id, and/or everything up to an id",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(200),
)
def confirm(caller: CallerDep, device_id: DeviceId, request: Annotated[ConfirmRequest, Body()]) -> ConfirmOut:
    app_id = auth.device_caller_app(caller, device_id, allow_secret_key=False)
    return ConfirmOut(confirmed=inbox.confirm(app_id, device_id, request.ids, request.up_to))
