"""Apps and their keys (admin key, or the app's own secret key)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from push_core import assembly, auth, registry
from push_core.api.dependencies import CallerDep
from push_core.api.resolver import AUTHENTICATED, answers
from push_core.api.schemas import (
    AppCreated,
    AppOut,
    CreateAppRequest,
    CreateKeyRequest,
    IssuedKeyOut,
    KeyList,
    KeyOut,
    UpdateAppRequest,
)

router = APIGatewayHttpRouter()
AppId = Annotated[str, Path(max_length=64)]
_TAGS = ["apps"]


@router.post(
    "/v1/apps",
    summary="Create an app (admin key)",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(201),
)
def create_app(caller: CallerDep, request: Annotated[CreateAppRequest, Body()]) -> Response[AppCreated]:
    auth.require_admin(caller)
    created = registry.create_app(request.name, str(request.icon) if request.icon else None)
    body = AppCreated(
        app=AppOut.of(created.app),
        secret_key=IssuedKeyOut.issued(created.secret_key),
        public_key=IssuedKeyOut.issued(created.public_key),
    )
    return Response(201, "application/json", body)


@router.get("/v1/apps/<app_id>", summary="Read an app", tags=_TAGS, security=AUTHENTICATED, responses=answers(200))
def get_app(caller: CallerDep, app_id: AppId) -> AppOut:
    return AppOut.of(registry.get_app(auth.managed_app(caller, app_id)))


@router.patch(
    "/v1/apps/<app_id>",
    summary="Rename an app or change its icon",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(200),
)
def update_app(caller: CallerDep, app_id: AppId, request: Annotated[UpdateAppRequest, Body()]) -> AppOut:
    app = registry.update_app(
        auth.managed_app(caller, app_id),
        request.name,
        str(request.icon) if request.icon else None,
        str(request.feedback_url) if request.feedback_url else None,
    )
    return AppOut.of(app)


@router.delete(
    "/v1/apps/<app_id>",
    summary="Delete an app with its keys, devices and messages",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(204),
)
def delete_app(caller: CallerDep, app_id: AppId) -> Response[None]:
    registry.delete_app(auth.managed_app(caller, app_id), assembly.job_queues())
    return Response(204)


@router.get(
    "/v1/apps/<app_id>/keys",
    summary="List an app's keys (never their secrets)",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(200),
)
def list_keys(caller: CallerDep, app_id: AppId) -> KeyList:
    keys = registry.list_keys(auth.managed_app(caller, app_id))
    return KeyList(keys=[KeyOut.of(k) for k in keys])


@router.post(
    "/v1/apps/<app_id>/keys",
    summary="Create a key for rotation (two live keys per role)",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(201),
)
def create_key(
    caller: CallerDep, app_id: AppId, request: Annotated[CreateKeyRequest, Body()]
) -> Response[IssuedKeyOut]:
    issued = registry.create_key(auth.managed_app(caller, app_id), request.role)
    return Response(201, "application/json", IssuedKeyOut.issued(issued))


@router.delete(
    "/v1/apps/<app_id>/keys/<key_id>",
    summary="Revoke a key",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(204),
)
def revoke_key(caller: CallerDep, app_id: AppId, key_id: Annotated[str, Path(max_length=64)]) -> Response[None]:
    registry.revoke_key(auth.managed_app(caller, app_id), key_id)
    return Response(204)
