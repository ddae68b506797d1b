"""APNs provider tokens: one ES256 JWT per team, shared by every sender, refreshed every 20 to 55 minutes.

Apple rejects a token older than an hour (403 ExpiredProviderToken) and answers 429
TooManyProviderTokenUpdates when a team's token changes more often than every 20 minutes, so every
sender (every Lambda container) should present the same token: the store is where they agree on it.
"""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

MIN_REFRESH_S = 20 * 60
MAX_REFRESH_S = 55 * 60  # not 60: leave room for clock skew between us and Apple
# A stored token "issued" further ahead than this comes from a skewed clock; Apple would reject it.
_FUTURE_SKEW_S = 60


class ApnsKeyError(ValueError):
    """The signing key is not a PEM-encoded P-256 private key (an APNs .p8 key)."""


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A provider token as senders share it: the JWT and when it was issued (epoch seconds, its iat)."""

    token: str
    issued_at: int


class ProviderTokenStore(Protocol):
    """Where all senders of a team agree on one provider token (DynamoDB when deployed)."""

    def load(self, team_id: str, key_id: str) -> StoredToken | None:
        """The current shared token of (team, key), if any."""
        ...

    def save_if_newer(self, team_id: str, key_id: str, token: StoredToken) -> StoredToken:
        """Store token unless one issued at the same time or later is there; return whichever won."""
        ...


class InMemoryTokenStore:
    """ProviderTokenStore for one process (tests, local runs): same contract, no sharing across processes."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], StoredToken] = {}
        self._lock = threading.Lock()

    def load(self, team_id: str, key_id: str) -> StoredToken | None:
        """The current token of (team, key), if any."""
        return self._tokens.get((team_id, key_id))

    def save_if_newer(self, team_id: str, key_id: str, token: StoredToken) -> StoredToken:
        """Keep token unless an equally new or newer one is stored; return the winner."""
        with self._lock:
            current = self._tokens.get((team_id, key_id))
            if current is not None and current.issued_at >= token.issued_at:
                return current
            self._tokens[(team_id, key_id)] = token
            return token


def load_signing_key(private_key_pem: str) -> ec.EllipticCurvePrivateKey:
    """Parse an APNs .p8 key (PEM, PKCS#8, P-256); ApnsKeyError if it is anything else."""
    # Keys pasted through environment variables or JSON often arrive with escaped newlines.
    pem = private_key_pem.strip().replace("\\n", "\n").encode()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise ApnsKeyError("private_key is not an unencrypted PEM private key") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ApnsKeyError("private_key is not a P-256 (ES256) key")
    return key


class ApnsTokenSigner:
    """The `authorization` header for APNs token auth, reused across messages and shared across senders."""

    def __init__(
        self,
        team_id: str,
        key_id: str,
        private_key_pem: str,
        *,
        store: ProviderTokenStore | None = None,
        clock: Callable[[], float] = time.time,
        refresh_after_s: int = 50 * 60,
    ) -> None:
        if not MIN_REFRESH_S <= refresh_after_s <= MAX_REFRESH_S:
            raise ValueError(f"refresh_after_s must be within [{MIN_REFRESH_S}, {MAX_REFRESH_S}]")
        if not team_id or not key_id:
            raise ValueError("team_id and key_id are required")
        self.team_id = team_id
        self.key_id = key_id
        self._key = load_signing_key(private_key_pem)
        self._store = store
        self._clock = clock
        self._refresh_after_s = refresh_after_s
        self._lock = threading.Lock()
        self._current: StoredToken | None = None
        # The token invalidate() condemned: not adopted again (from the store either) until one replaces it.
        self._condemned: str | None = None
        # (header, refresh at) in one tuple so the lock-free fast path reads a consistent pair.
        self._fresh: tuple[str, float] = ("", -math.inf)

    def authorization(self) -> str:
        """`bearer <JWT>` for the team's current provider token, refreshing it when it is due.

        A refresh first adopts a fresh token from the store, else mints one and offers it there; the
        store's errors propagate (the batch is retried rather than sent with a token nobody shares).
        """
        header, refresh_at = self._fresh
        if self._clock() < refresh_at:
            return header
        with self._lock:
            header, refresh_at = self._fresh
            now = self._clock()
            if now < refresh_at:  # another thread refreshed while this one waited
                return header
            self._use(self._next_token(now))
            return self._fresh[0]

    def invalidate(self, authorization: str) -> None:
        """Apple refused authorization (403 ExpiredProviderToken / InvalidProviderToken): replace it once.

        A no-op when authorization is no longer the current header (a concurrent send already replaced it).
        """
        with self._lock:
            if self._current is not None and authorization == self._fresh[0]:
                self._condemned = self._current.token
                self._fresh = (authorization, -math.inf)

    def _next_token(self, now: float) -> StoredToken:
        # Another sender may have refreshed already (or replaced the token we condemned): use theirs.
        stored = self._store.load(self.team_id, self.key_id) if self._store is not None else None
        if stored is not None and self._adoptable(stored, now):
            return stored
        # Reaching here means the current token is at least refresh_after_s (>= 20 min) old or condemned,
        # so minting honours Apple's 20-minute floor.
        minted = self._mint(now)
        if self._store is None:
            return minted
        winner = self._store.save_if_newer(self.team_id, self.key_id, minted)
        # The winner can be the condemned token when it was issued in the same second as ours.
        return winner if self._adoptable(winner, now) else minted

    def _adoptable(self, token: StoredToken, now: float) -> bool:
        age = now - token.issued_at
        return token.token != self._condemned and -_FUTURE_SKEW_S <= age < self._refresh_after_s

    def _mint(self, now: float) -> StoredToken:
        issued_at = int(now)
        token = jwt.encode(
            {"iss": self.team_id, "iat": issued_at},
            self._key,
            algorithm="ES256",
            headers={"kid": self.key_id, "typ": None},  # Apple's documented header is exactly alg + kid
        )
        return StoredToken(token=token, issued_at=issued_at)

    def _use(self, token: StoredToken) -> None:
        self._current = token
        self._condemned = None
        self._fresh = ("bearer " + token.token, token.issued_at + self._refresh_after_s)
