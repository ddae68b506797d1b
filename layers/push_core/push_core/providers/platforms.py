"""The platform registry: each platform's rules, as its provider package states them, in one table.

Feedback asks it whether a reason proves a target dead; the pool asks it to build a provider. Adding a
platform is a provider package (its error table, its ``build``) and a row here.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from push_core.config import Settings
from push_core.models import Platform
from push_core.providers.apns.auth import ProviderTokenStore
from push_core.providers.apns.errors import APNS_ERRORS, TIMESTAMPED_REASONS
from push_core.providers.apns.provider import build as build_apns
from push_core.providers.contract import ErrorMeaning, Provider, dead_reasons
from push_core.providers.fcm.errors import FCM_ERRORS
from push_core.providers.fcm.provider import build as build_fcm
from push_core.providers.webhook.provider import WEBHOOK_ERRORS
from push_core.providers.webhook.provider import build as build_webhook
from push_core.providers.webpush.provider import WEBPUSH_ERRORS
from push_core.providers.webpush.provider import build as build_webpush

# (the app's credentials for the platform, the deployment's settings, the shared APNs token store)
Builder = Callable[[Any, Settings, ProviderTokenStore | None], Provider]


@dataclass(frozen=True)
class PlatformRules:
    """What pushlane knows of one push platform."""

    errors: Mapping[str, ErrorMeaning]
    build: Builder
    # Dead reasons that come with the time the provider learned it (a newer registration survives).
    dated_reasons: frozenset[str] = frozenset()

    @cached_property
    def prune_reasons(self) -> frozenset[str]:
        """The error table's dead reasons, worked out once."""
        return dead_reasons(self.errors)

    def prunes(self, reason: str) -> bool:
        """Whether a target this reason failed is dead, so feedback prunes its device."""
        return reason in self.prune_reasons

    def dated(self, reason: str) -> bool:
        """Whether the provider's timestamp decides if this reason prunes a device registered again."""
        return reason in self.dated_reasons


PLATFORMS: dict[Platform, PlatformRules] = {
    Platform.APNS: PlatformRules(APNS_ERRORS, build_apns, dated_reasons=TIMESTAMPED_REASONS),
    Platform.FCM: PlatformRules(FCM_ERRORS, build_fcm),
    Platform.WEBPUSH: PlatformRules(WEBPUSH_ERRORS, build_webpush),
    Platform.WEBHOOK: PlatformRules(WEBHOOK_ERRORS, build_webhook),
}


def rules_for(platform: Platform) -> PlatformRules | None:
    """The platform's rules; None for the inbox, which has no provider."""
    return PLATFORMS.get(platform)
