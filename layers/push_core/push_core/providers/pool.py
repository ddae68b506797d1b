"""Provider instances per app and platform, built from the app's credentials and kept for the container's life.

Connections live inside the providers, so a warm Lambda container reuses its HTTP/2 connections across
invocations; a change of credentials builds a new provider (the old one is closed).
"""

from collections.abc import Callable
from dataclasses import dataclass

from push_core.config import Settings
from push_core.models import Platform
from push_core.providers.apns.auth import ProviderTokenStore
from push_core.providers.contract import Provider, ProviderCredentials
from push_core.providers.platforms import rules_for


@dataclass
class _Entry:
    credentials: ProviderCredentials
    provider: Provider


def build_provider(creds: ProviderCredentials, settings: Settings, token_store: ProviderTokenStore | None) -> Provider:
    """The provider for one app's credentials, built by its platform's package."""
    rules = rules_for(Platform(creds.platform))
    assert rules is not None, f"no provider package for {creds.platform}"  # credentials exist only for them
    return rules.build(creds, settings, token_store)


class ProviderPool:
    """Hands out the provider for (app, platform); None when the app has no credentials for it."""

    def __init__(
        self,
        settings: Settings,
        *,
        token_store: ProviderTokenStore | None = None,
        load: Callable[[str, Platform], ProviderCredentials | None],
    ) -> None:
        self._settings = settings
        self._token_store = token_store
        self._load = load
        self._entries: dict[tuple[str, Platform], _Entry] = {}
        self.retired: list[Provider] = []

    def provider(self, app_id: str, platform: Platform) -> Provider | None:
        """The app's provider for platform, rebuilt only when its credentials changed."""
        creds = self._load(app_id, platform)
        key = (app_id, platform)
        entry = self._entries.get(key)
        if creds is None:
            if entry is not None:
                self.retired.append(self._entries.pop(key).provider)
            return None
        if entry is None or entry.credentials != creds:
            if entry is not None:
                self.retired.append(entry.provider)
            entry = _Entry(creds, build_provider(creds, self._settings, self._token_store))
            self._entries[key] = entry
        return entry.provider
