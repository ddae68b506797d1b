"""Publishing and publication status (the app's secret key)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from push_core import assembly, auth, idempotency
from push_core.api.dependencies import CallerDep
from push_core.api.resolver import AUTHENTICATED, answers
from push_core.api.schemas import PublicationAccepted, PublicationOut, PublishRequest, ReceiptList
from push_core.pipeline import publish as publish_stage

router = APIGatewayHttpRouter()
_TAGS = ["messages"]


@router.post(
    "/v1/messages",
    summary="Publish to topics and/or devices; fan-out runs in the background",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(202),
)
def publish(
    caller: CallerDep,
    request: Annotated[PublishRequest, Body()],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)] = None,
) -> Response[PublicationAccepted]:
    app_id = auth.require_app_role(caller, "secret")
    audience = publish_stage.Audience(topics=request.topics, device_ids=request.devices)

    def accept() -> dict[str, Any]:
        publication = publish_stage.publish(app_id, request.content(), audience, assembly.job_queues())
        return {"id": publication.publication_id, "status": publication.status.value}

    if idempotency_key is None:
        accepted = accept()
    else:
        fingerprint = idempotency.fingerprint(app_id, idempotency_key, request.model_dump_json())
        accepted = idempotency.once(accept, fingerprint, router.lambda_context)
    body = PublicationAccepted.model_validate(accepted)
    return Response(202, "application/json", body, headers={"Location": f"/v1/messages/{body.id}"})


@router.get(
    "/v1/messages/<message_id>/receipts",
    summary="Each target's outcome, for publications sent with receipts: true",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(200),
)
def list_receipts(
    caller: CallerDep,
    message_id: Annotated[str, Path(max_length=64)],
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ReceiptList:
    app_id = auth.require_app_role(caller, "secret")
    receipts, next_cursor = publish_stage.list_receipts(app_id, message_id, cursor, limit)
    return ReceiptList(receipts=receipts, cursor=next_cursor)


@router.get(
    "/v1/messages/<message_id>",
    summary="A publication's status and counters",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(200),
)
def get_publication(caller: CallerDep, message_id: Annotated[str, Path(max_length=64)]) -> PublicationOut:
    app_id = auth.require_app_role(caller, "secret")
    return PublicationOut.of(publish_stage.get_publication(app_id, message_id))
