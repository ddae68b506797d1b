"""Provider credentials of an app (APNs key or certificate, FCM service account, VAPID key, webhook secret)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from push_core import auth, registry
from push_core.api.dependencies import CallerDep
from push_core.api.resolver import AUTHENTICATED, answers
from push_core.api.schemas import CredentialsList, CredentialsOut, CredentialsRequest
from push_core.credentials import AnyCredentials
from push_core.models import Platform

router = APIGatewayHttpRouter()
AppId = Annotated[str, Path(max_length=64)]
_TAGS = ["credentials"]


def _out(creds: AnyCredentials, shown_once: dict[str, str] | None = None) -> CredentialsOut:
    return CredentialsOut(platform=Platform(creds.platform), summary=creds.summary(), shown_once=shown_once or {})


@router.put(
    "/v1/apps/<app_id>/credentials",
    summary="Set the app's credentials for one platform (stored in Secrets Manager)",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(200),
)
def put_credentials(caller: CallerDep, app_id: AppId, request: Annotated[CredentialsRequest, Body()]) -> CredentialsOut:
    creds, shown_once = registry.configure_credentials(auth.managed_app(caller, app_id), request.model_dump())
    return _out(creds, shown_once)


@router.get(
    "/v1/apps/<app_id>/credentials",
    summary="Which platforms the app has credentials for (never the keys)",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(200),
)
def list_credentials(caller: CallerDep, app_id: AppId) -> CredentialsList:
    found = registry.credentials_summaries(auth.managed_app(caller, app_id))
    return CredentialsList(credentials=[_out(creds) for creds in found])


@router.delete(
    "/v1/apps/<app_id>/credentials/<platform>",
    summary="Remove the app's credentials for a platform",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(204),
)
def delete_credentials(caller: CallerDep, app_id: AppId, platform: Annotated[Platform, Path()]) -> Response[None]:
    registry.remove_credentials(auth.managed_app(caller, app_id), platform)
    return Response(204)
