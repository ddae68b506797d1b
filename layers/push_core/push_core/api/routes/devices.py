"""Devices and their topic subscriptions."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from push_core import auth, registry
from push_core.api.dependencies import CallerDep
from push_core.api.resolver import AUTHENTICATED, answers
from push_core.api.schemas import (
    DeviceOut,
    DeviceRegistered,
    DeviceRegistrationRequest,
    DeviceTopics,
    SubscriptionOut,
    TopicOut,
    registration_of,
)
from push_core.identifiers import SORTABLE_ID_PATTERN
from push_core.models import TOPIC_PATTERN

router = APIGatewayHttpRouter()
DeviceId = Annotated[str, Path(pattern=SORTABLE_ID_PATTERN)]
Topic = Annotated[str, Path(pattern=TOPIC_PATTERN + "|^\\*$")]
_TAGS = ["devices"]


@router.post(
    "/v1/devices",
    summary="Register a device (public key); re-register a known token with its device key or the secret key",
    description="A new token creates a device and answers 201 with its device key. A token that is already "
    "registered answers 200 with the same device only to a caller that holds it: the device's own key renews "
    "the registration and stays valid (device_key is null), the app's secret key issues a new device key and "
    "revokes the old one. The public key gets 409 token_already_registered for a known token.",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(201, 200),
)
def register_device(
    caller: CallerDep, request: Annotated[DeviceRegistrationRequest, Body()]
) -> Response[DeviceRegistered]:
    registered = registry.register_device(caller, registration_of(request))
    device_key = registered.key.token if registered.key else None
    body = DeviceRegistered(device=DeviceOut.of(registered.device), device_key=device_key)
    return Response(201 if registered.created else 200, "application/json", body)


@router.get(
    "/v1/devices/<device_id>",
    summary="Read a device (its key or the app's secret key)",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(200),
)
def get_device(caller: CallerDep, device_id: DeviceId) -> DeviceOut:
    app_id = auth.device_caller_app(caller, device_id, allow_secret_key=True)
    return DeviceOut.of(registry.get_device(app_id, device_id))


@router.delete(
    "/v1/devices/<device_id>",
    summary="Delete a device, its subscriptions and its inbox",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(204),
)
def delete_device(caller: CallerDep, device_id: DeviceId) -> Response[None]:
    registry.delete_device(auth.device_caller_app(caller, device_id, allow_secret_key=True), device_id)
    return Response(204)


@router.get(
    "/v1/devices/<device_id>/topics",
    summary="List a device's topics",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(200),
)
def device_topics(caller: CallerDep, device_id: DeviceId) -> DeviceTopics:
    app_id = auth.device_caller_app(caller, device_id, allow_secret_key=True)
    return DeviceTopics(device_id=device_id, topics=registry.device_topics(app_id, device_id))


@router.put(
    "/v1/devices/<device_id>/topics/<topic>",
    summary="Subscribe a device to a topic",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(201, 200),
)
def subscribe(caller: CallerDep, device_id: DeviceId, topic: Topic) -> Response[SubscriptionOut]:
    app_id = auth.device_caller_app(caller, device_id, allow_secret_key=True)
    created = registry.subscribe(app_id, device_id, topic)
    body = SubscriptionOut(device_id=device_id, topic=topic, created=created)
    return Response(201 if created else 200, "application/json", body)


@router.delete(
    "/v1/devices/<device_id>/topics/<topic>",
    summary="Unsubscribe a device from a topic",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(204),
)
def unsubscribe(caller: CallerDep, device_id: DeviceId, topic: Topic) -> Response[None]:
    registry.unsubscribe(auth.device_caller_app(caller, device_id, allow_secret_key=True), device_id, topic)
    return Response(204)


@router.get(
    "/v1/topics/<topic>",
    summary="Count a topic's subscribers ('*': every device)",
    tags=_TAGS,
    security=AUTHENTICATED,
    responses=answers(200),
)
def get_topic(caller: CallerDep, topic: Topic) -> TopicOut:
    app_id = auth.require_app_role(caller, "secret")
    return TopicOut(topic=topic, subscribers=registry.topic_subscriber_count(app_id, topic))
