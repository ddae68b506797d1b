"""APNs provider tokens: right JWT, reused for the window, shared through the store, never minted too often."""

import itertools
import threading
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from push_core.providers.apns.auth import (
    MAX_REFRESH_S,
    MIN_REFRESH_S,
    ApnsKeyError,
    ApnsTokenSigner,
    InMemoryTokenStore,
    StoredToken,
)

TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
T0 = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingStore(InMemoryTokenStore):
    """The in-memory store, counting the tokens senders minted (every mint is offered to the store once)."""

    def __init__(self, load_delay_s: float = 0.0) -> None:
        super().__init__()
        self.saves = 0
        self.load_delay_s = load_delay_s

    def load(self, team_id: str, key_id: str) -> StoredToken | None:
        time.sleep(self.load_delay_s)
        return super().load(team_id, key_id)

    def save_if_newer(self, team_id: str, key_id: str, token: StoredToken) -> StoredToken:
        self.saves += 1
        return super().save_if_newer(team_id, key_id, token)


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _signer(key: ec.EllipticCurvePrivateKey, clock: Clock, **kwargs) -> ApnsTokenSigner:
    return ApnsTokenSigner(TEAM_ID, KEY_ID, _pem(key), clock=clock, **kwargs)


def _jwt(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    assert scheme == "bearer"
    return token


def _iat(authorization: str) -> int:
    return int(jwt.decode(_jwt(authorization), options={"verify_signature": False})["iat"])


def test_authorization_is_a_bearer_es256_jwt_with_key_id_header_and_team_claims(key, clock):
    authorization = _signer(key, clock).authorization()

    token = _jwt(authorization)
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": KEY_ID}
    claims = jwt.decode(token, key.public_key(), algorithms=["ES256"], options={"verify_iat": False})
    assert claims == {"iss": TEAM_ID, "iat": int(T0)}


def test_token_is_reused_until_the_refresh_window_passes(key, clock):
    signer = _signer(key, clock, refresh_after_s=50 * 60)
    first = signer.authorization()

    clock.now = T0 + 50 * 60 - 1
    assert signer.authorization() == first

    clock.now = T0 + 50 * 60
    refreshed = signer.authorization()
    assert refreshed != first
    assert _iat(refreshed) == int(T0) + 50 * 60


def test_two_signers_sharing_a_store_mint_one_token(key, clock):
    store = CountingStore()
    first, second = _signer(key, clock, store=store), _signer(key, clock, store=store)

    assert first.authorization() == second.authorization()
    assert store.saves == 1


def test_a_signer_adopts_the_token_another_sender_refreshed(key, clock):
    store = CountingStore()
    first, second = _signer(key, clock, store=store), _signer(key, clock, store=store)
    original = second.authorization()
    first.authorization()

    clock.now = T0 + 50 * 60
    refreshed = first.authorization()
    clock.now += 5
    assert second.authorization() == refreshed != original
    assert store.saves == 2


def test_invalidate_forces_exactly_one_new_token(key, clock):
    signer = _signer(key, clock)
    rejected = signer.authorization()

    signer.invalidate(rejected)
    replacement = signer.authorization()
    signer.invalidate(rejected)  # a late 403 for the old token changes nothing

    assert replacement != rejected
    assert signer.authorization() == replacement


def test_invalidate_in_the_same_second_never_brings_back_the_rejected_token(key, clock):
    store = CountingStore()
    signer = _signer(key, clock, store=store)
    rejected = signer.authorization()

    signer.invalidate(rejected)

    # The store keeps the rejected token (the new one is not newer), but the signer must not adopt it.
    assert signer.authorization() != rejected


def test_after_invalidate_a_peer_adopts_the_replacement_instead_of_minting(key, clock):
    store = CountingStore()
    first, second = _signer(key, clock, store=store), _signer(key, clock, store=store)
    rejected = first.authorization()
    assert second.authorization() == rejected

    clock.now += 30
    first.invalidate(rejected)
    replacement = first.authorization()
    second.invalidate(rejected)

    assert second.authorization() == replacement
    assert store.saves == 2


@pytest.mark.parametrize("shared", [False, True])
def test_tokens_change_at_most_every_20_minutes_without_invalidate(key, clock, shared):
    store = CountingStore() if shared else None
    signers = [
        _signer(key, clock, store=store, refresh_after_s=MIN_REFRESH_S),
        _signer(key, clock, store=store, refresh_after_s=MAX_REFRESH_S),
    ]
    issued: dict[int, str] = {}
    for minute in range(0, 6 * 60):
        clock.now = T0 + minute * 60 + 7
        for signer in signers[: 2 if shared else 1]:
            authorization = signer.authorization()
            issued.setdefault(_iat(authorization), authorization)

    times = sorted(issued)
    assert len(times) > 1
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) >= MIN_REFRESH_S


def test_concurrent_callers_mint_one_token(key, clock):
    store = CountingStore(load_delay_s=0.01)
    signer = _signer(key, clock, store=store)
    start = threading.Barrier(16)
    results: list[str] = []

    def call() -> None:
        start.wait()
        results.append(signer.authorization())

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(results)) == 1
    assert store.saves == 1


def test_a_stored_token_from_a_skewed_future_clock_is_not_adopted(key, clock):
    store = InMemoryTokenStore()
    store.save_if_newer(TEAM_ID, KEY_ID, StoredToken("from-the-future", int(T0) + 3600))

    assert _signer(key, clock, store=store).authorization() != "bearer from-the-future"


@pytest.mark.parametrize("refresh_after_s", [MIN_REFRESH_S - 1, MAX_REFRESH_S + 1, 0])
def test_refresh_windows_outside_20_to_55_minutes_are_refused(key, clock, refresh_after_s):
    with pytest.raises(ValueError, match="refresh_after_s"):
        _signer(key, clock, refresh_after_s=refresh_after_s)


@pytest.mark.parametrize("refresh_after_s", [MIN_REFRESH_S, MAX_REFRESH_S])
def test_refresh_windows_at_the_bounds_are_accepted(key, clock, refresh_after_s):
    assert _signer(key, clock, refresh_after_s=refresh_after_s).authorization().startswith("bearer ")


def _encrypted_pem() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
        .decode()
    )


@pytest.mark.parametrize(
    "private_key",
    [
        pytest.param("not a key", id="garbage"),
        pytest.param("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", id="truncated-pem"),
        pytest.param(_pem(ec.generate_private_key(ec.SECP384R1())), id="p384"),
        pytest.param(_pem(rsa.generate_private_key(65537, 2048)), id="rsa"),
        pytest.param(_encrypted_pem(), id="encrypted"),
    ],
)
def test_keys_that_are_not_unencrypted_p256_pem_raise_apns_key_error(clock, private_key):
    with pytest.raises(ApnsKeyError):
        ApnsTokenSigner(TEAM_ID, KEY_ID, private_key, clock=clock)


def test_a_key_with_escaped_newlines_is_accepted(key, clock):
    escaped = _pem(key).replace("\n", "\\n")

    token = _jwt(ApnsTokenSigner(TEAM_ID, KEY_ID, escaped, clock=clock).authorization())

    assert jwt.decode(token, key.public_key(), algorithms=["ES256"], options={"verify_iat": False})["iss"] == TEAM_ID
