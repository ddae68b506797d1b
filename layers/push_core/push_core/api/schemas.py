"""Request and response bodies of the native API; their constraints are the API's validation rules."""

import base64
import binascii
import json
from typing import Annotated, Any, Literal, Self

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import AnyUrl, BaseModel, ConfigDict, Field, UrlConstraints, field_validator, model_validator

from push_core.auth import IssuedKey
from push_core.identifiers import SORTABLE_ID_PATTERN
from push_core.models import (
    TOPIC_PATTERN,
    AppRecord,
    DeviceRecord,
    InboxMessage,
    KeyRecord,
    MessageContent,
    Ping,
    Platform,
    Publication,
    Receipt,
)
from push_core.providers.apns.credentials import APPLE_ID_PATTERN
from push_core.providers.apns.target import ApnsExtras
from push_core.providers.webpush.target import SubscriptionKeys
from push_core.registry import Registration

MAX_DATA_BYTES = 4096

HttpsUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["https"], max_length=2048)]
TopicName = Annotated[str, Field(pattern=TOPIC_PATTERN, examples=["news"])]
SortableId = Annotated[str, Field(pattern=SORTABLE_ID_PATTERN, examples=["01JD4X9R6V2Q8M7N5K3H1G0F9E"])]


class Body(BaseModel):
    # Numbers and booleans are strict in request bodies (a JSON true is not a ttl of 1): see PublishRequest.
    model_config = ConfigDict(extra="forbid")


# --- apps and keys ---


class CreateAppRequest(Body):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    icon: HttpsUrl | None = None


class UpdateAppRequest(Body):
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    icon: HttpsUrl | None = None
    feedback_url: HttpsUrl | None = Field(
        default=None, description="pushlane POSTs a signed event here whenever it prunes one of the app's devices"
    )


class AppOut(BaseModel):
    id: str
    name: str
    icon: str | None
    feedback_url: str | None = None
    created_at: int

    @classmethod
    def of(cls, app: AppRecord) -> Self:
        return cls(
            id=app.app_id, name=app.name, icon=app.icon, feedback_url=app.feedback_url, created_at=app.created_at
        )


class KeyOut(BaseModel):
    id: str
    role: Literal["secret", "public"]
    created_at: int
    revoked_at: int | None

    @classmethod
    def of(cls, key: KeyRecord) -> Self:
        return cls(id=key.key_id, role=key.role, created_at=key.created_at, revoked_at=key.revoked_at)


class IssuedKeyOut(KeyOut):
    key: str = Field(description="The key itself. Shown only this once; pushlane keeps only its hash.")

    @classmethod
    def issued(cls, issued: IssuedKey) -> Self:
        return cls(**KeyOut.of(issued.record).model_dump(), key=issued.token)


class AppCreated(BaseModel):
    app: AppOut
    secret_key: IssuedKeyOut
    public_key: IssuedKeyOut


class CreateKeyRequest(Body):
    role: Literal["secret", "public"]


class KeyList(BaseModel):
    keys: list[KeyOut]


# --- devices and topics ---


def _b64url(value: str, length: int, what: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{what} must be base64url") from error
    if len(raw) != length:
        raise ValueError(f"{what} must decode to {length} bytes")
    return value


class WebPushKeys(Body):
    p256dh: str = Field(description="The browser's P-256 public key, base64url (65 bytes, uncompressed)")
    auth: str = Field(description="The 16-byte authentication secret, base64url")

    @field_validator("p256dh")
    @classmethod
    def _p256dh(cls, value: str) -> str:
        _b64url(value, 65, "p256dh")
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        try:  # 65 bytes that are not a point on P-256 could never be encrypted to: refuse them here
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError as error:
            raise ValueError("p256dh must be an uncompressed P-256 public key") from error
        return value

    @field_validator("auth")
    @classmethod
    def _auth(cls, value: str) -> str:
        return _b64url(value, 16, "auth")


class WebPushSubscription(Body):
    """PushSubscription.toJSON() exactly as Chrome, Firefox and Safari return it."""

    endpoint: HttpsUrl
    expiration_time: Annotated[float, Field(strict=True, ge=0)] | None = Field(
        default=None,
        alias="expirationTime",
        description="When the browser will end the subscription (ms since the epoch), or null; the push service "
        "answers 404/410 once it has, which prunes the device",
    )
    keys: WebPushKeys


class DeviceBase(Body):
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class InboxPing(Body):
    """A push token the inbox device also has: pushlane sends it a silent push so the app syncs at once."""

    platform: Literal["apns", "fcm"]
    token: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[A-Za-z0-9_:.\-]+$")]
    environment: Literal["production", "sandbox"] = "production"


class InboxDevice(DeviceBase):
    platform: Literal["inbox"]
    token: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")] | None = Field(
        default=None,
        description="Optional id chosen by the client; registering it again returns the same device.",
    )
    ping: InboxPing | None = None


class ApnsDevice(DeviceBase):
    platform: Literal["apns"]
    token: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64,200}$")]
    environment: Literal["production", "sandbox"] = "production"


class FcmDevice(DeviceBase):
    platform: Literal["fcm"]
    token: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[A-Za-z0-9_:.\-]+$")]


class WebPushDevice(DeviceBase):
    platform: Literal["webpush"]
    subscription: WebPushSubscription


class WebhookDevice(DeviceBase):
    platform: Literal["webhook"]
    url: HttpsUrl


DeviceRegistrationRequest = Annotated[
    InboxDevice | ApnsDevice | FcmDevice | WebPushDevice | WebhookDevice, Field(discriminator="platform")
]


def registration_of(
    request: InboxDevice | ApnsDevice | FcmDevice | WebPushDevice | WebhookDevice,
) -> Registration:
    """The domain view of a validated registration: one token per device, platform extras beside it."""
    match request:
        case ApnsDevice():
            extras = ApnsExtras(request.environment).as_push()
            return Registration(Platform.APNS, request.token.lower(), extras, request.name)
        case WebPushDevice():
            keys = SubscriptionKeys(request.subscription.keys.p256dh, request.subscription.keys.auth)
            return Registration(Platform.WEBPUSH, str(request.subscription.endpoint), keys.as_push(), request.name)
        case WebhookDevice():
            return Registration(Platform.WEBHOOK, str(request.url), {}, request.name)
        case FcmDevice():
            return Registration(Platform.FCM, request.token, {}, request.name)
        case InboxDevice():
            ping = request.ping
            extras = (
                Ping(Platform(ping.platform), ping.token, ApnsExtras(ping.environment).as_push()).as_push()
                if ping
                else {}
            )
            return Registration(Platform.INBOX, request.token, extras, request.name)


class DeviceOut(BaseModel):
    id: str
    platform: Platform
    name: str | None
    enabled: bool
    created_at: int
    registered_at: int

    @classmethod
    def of(cls, device: DeviceRecord) -> Self:
        return cls(
            id=device.device_id,
            platform=device.platform,
            name=device.name,
            enabled=device.enabled,
            created_at=device.created_at,
            registered_at=device.registered_at,
        )


class DeviceRegistered(BaseModel):
    device: DeviceOut
    device_key: str | None = Field(
        description="Authorises this device's poll, confirm and subscriptions. Shown once; null when the device "
        "re-registered with its own key, which stays valid."
    )


class DeviceTopics(BaseModel):
    device_id: str
    topics: list[str]


class SubscriptionOut(BaseModel):
    device_id: str
    topic: str
    created: bool = Field(description="False when the device was already subscribed")


class TopicOut(BaseModel):
    topic: str
    subscribers: int


# --- messages ---


class ApnsOverride(Body):
    headers: dict[str, str] = Field(default_factory=dict, description="apns-* headers, e.g. apns-push-type, apns-id")
    payload: dict[str, Any] = Field(default_factory=dict, description="Merged into the JSON payload (aps included)")


class PlatformOverrides(Body):
    apns: ApnsOverride | None = None
    fcm: dict[str, Any] | None = Field(
        default=None, description="Merged into the FCM v1 message (android, apns, webpush…)"
    )


class PublishRequest(Body):
    topics: Annotated[list[TopicName | Literal["*"]], Field(max_length=10)] = Field(
        default_factory=list, description="Topics to publish to; '*' means every device of the app."
    )
    devices: Annotated[list[SortableId], Field(max_length=100)] = Field(default_factory=list)
    title: Annotated[str, Field(max_length=250)] | None = None
    body: Annotated[str, Field(min_length=1, max_length=4096)]
    link: HttpsUrl | None = None
    importance: Annotated[int, Field(strict=True, ge=1, le=5)] = 3
    data: dict[str, Any] | None = Field(default=None, description=f"Custom JSON, at most {MAX_DATA_BYTES} bytes")
    ttl: Annotated[int, Field(strict=True, ge=0, le=28 * 86_400)] | None = Field(
        default=None, description="Seconds providers keep trying; 0 = deliver now or never"
    )
    collapse_key: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None,
        description="A newer message with the same key replaces an undelivered older one (at most 64 bytes "
        "of UTF-8: APNs' limit for apns-collapse-id)",
    )
    receipts: bool = Field(
        default=False,
        strict=True,
        description="Keep each target's outcome (GET /v1/messages/{id}/receipts); a write per target",
    )
    overrides: PlatformOverrides | None = Field(
        default=None,
        description='Per-platform additions merged last, e.g. {"apns": {"payload": {"aps": {"badge": 3}}}, '
        '"fcm": {"android": {"restricted_package_name": "com.example"}}}',
    )

    @field_validator("collapse_key")
    @classmethod
    def _collapse_key_fits_apns(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) > 64:
            raise ValueError("collapse_key must be at most 64 bytes of UTF-8")
        return value

    @model_validator(mode="after")
    def _has_audience_and_small_data(self) -> Self:
        if not self.topics and not self.devices:
            raise ValueError("name at least one topic or device")
        if self.data is not None and len(json.dumps(self.data, separators=(",", ":"))) > MAX_DATA_BYTES:
            raise ValueError(f"data must be at most {MAX_DATA_BYTES} bytes of JSON")
        return self

    def content(self) -> MessageContent:
        return MessageContent(
            title=self.title,
            body=self.body,
            link=str(self.link) if self.link else None,
            importance=self.importance,
            data=self.data,
            ttl=self.ttl,
            collapse_key=self.collapse_key,
            receipts=self.receipts,
            overrides=self.overrides.model_dump(exclude_none=True) if self.overrides else None,
        )


class PublicationAccepted(BaseModel):
    id: str
    status: str


class PublicationOut(BaseModel):
    id: str
    status: str = Field(examples=["completed"])
    total: int
    passed: int
    failed: int
    pending: int
    confirmed: int
    possible_duplicates: int = Field(
        description="Targets in slices an interrupted delivery may have sent before recording them: an upper "
        "bound on devices that got this message twice (0 unless an invocation died mid-delivery)"
    )
    created_at: int
    topics: list[str]
    devices: list[str]
    usage: dict[str, float] = Field(
        default_factory=dict,
        description="AWS consumption of this publication's fan-out: DynamoDB read/write units and requests, "
        "SQS requests, fan-out jobs (expand_jobs pages read plus delivery_batches sent)",
    )

    @classmethod
    def of(cls, publication: Publication) -> Self:
        return cls(
            id=publication.publication_id,
            status=publication.status.value,
            total=publication.total,
            passed=publication.passed,
            failed=publication.failed,
            pending=publication.pending,
            confirmed=publication.confirmed,
            possible_duplicates=publication.possible_duplicates,
            created_at=publication.created_at,
            topics=publication.topics,
            devices=publication.device_ids,
            usage={
                "dynamodb_read_units": publication.usage_read_units,
                "dynamodb_write_units": publication.usage_write_units,
                "dynamodb_requests": publication.usage_dynamodb_requests,
                "sqs_requests": publication.usage_sqs_requests,
                "fanout_jobs": publication.expand_jobs_done + publication.delivery_batches_done,
                "expand_jobs": publication.expand_jobs_done,  # the two kinds apart: pages read, batches sent
                "delivery_batches": publication.delivery_batches_done,
            },
        )


# --- inbox ---


class MessageOut(BaseModel):
    id: str
    title: str | None
    body: str
    link: str | None
    importance: int
    data: dict[str, Any] | None
    created_at: int

    @classmethod
    def of(cls, message: InboxMessage) -> Self:
        c = message.content
        return cls(
            id=message.publication_id,
            title=c.title,
            body=c.body,
            link=c.link,
            importance=c.importance,
            data=c.data,
            created_at=message.created_at,
        )


class PollOut(BaseModel):
    messages: list[MessageOut]
    cursor: str | None = Field(description="Pass back as `cursor` to read on after these messages")


class ConfirmRequest(Body):
    ids: Annotated[list[SortableId], Field(max_length=100)] = Field(default_factory=list)
    up_to: SortableId | None = Field(default=None, description="Also confirm every pending message up to this id")

    @model_validator(mode="after")
    def _names_something(self) -> Self:
        if not self.ids and self.up_to is None:
            raise ValueError("name message ids or up_to")
        return self


class ConfirmOut(BaseModel):
    confirmed: int


# --- provider credentials ---


class ApnsCredentialsIn(Body):
    platform: Literal["apns"]
    topic: Annotated[str, Field(min_length=1, max_length=255, description="The app's bundle id")]
    team_id: Annotated[str, Field(pattern=APPLE_ID_PATTERN)] | None = None
    key_id: Annotated[str, Field(pattern=APPLE_ID_PATTERN)] | None = None
    private_key: str | None = Field(default=None, description="The .p8 key (PEM) for token auth")
    certificate: str | None = Field(default=None, description="Certificate auth: the certificate, PEM")
    certificate_key: str | None = Field(default=None, description="Certificate auth: its private key, PEM")


class FcmCredentialsIn(Body):
    platform: Literal["fcm"]
    service_account: dict[str, Any] = Field(description="The Firebase service-account JSON, as downloaded")


class WebPushCredentialsIn(Body):
    platform: Literal["webpush"]
    subject: Annotated[str, Field(pattern=r"^(mailto:|https://).+", description="VAPID contact: mailto: or https:")]
    vapid_private_key: str | None = Field(default=None, description="Omit to have pushlane generate a key pair")


class WebhookCredentialsIn(Body):
    platform: Literal["webhook"]
    secret: Annotated[str, Field(min_length=16, max_length=256)] | None = Field(
        default=None, description="Signing secret; omit to have pushlane generate one"
    )


CredentialsRequest = Annotated[
    ApnsCredentialsIn | FcmCredentialsIn | WebPushCredentialsIn | WebhookCredentialsIn, Field(discriminator="platform")
]


class CredentialsOut(BaseModel):
    platform: Platform
    summary: dict[str, Any] = Field(description="What identifies the credentials; never a private key")
    shown_once: dict[str, str] = Field(
        default_factory=dict, description="Generated values you need and will not be shown again (webhook secret)"
    )


class CredentialsList(BaseModel):
    credentials: list[CredentialsOut]


# --- feedback ---


class FeedbackOut(BaseModel):
    device_id: str
    platform: Platform
    token: str | None = Field(default=None, description="The dead token, endpoint or URL")
    reason: str = Field(examples=["Unregistered"])
    provider_timestamp_ms: int | None = Field(default=None, description="When the provider says it became invalid")
    observed_at: int
    action: str = Field(description='"pruned", or why pushlane kept the device', examples=["pruned"])


class FeedbackList(BaseModel):
    feedback: list[FeedbackOut]
    cursor: str | None = Field(description="Pass back as `cursor` for the next page")


class ReceiptList(BaseModel):
    receipts: list[Receipt]
    cursor: str | None = Field(description="Pass back as `cursor` for the next page")
