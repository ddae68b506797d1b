"""API keys: their format, hashing, issuing and checking.

Keys are `pl_<role>_<key id>_<secret>`; only the SHA-256 of the whole key is stored and it is compared
in constant time. The key id lets one consistent read find the record without scanning.
"""

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from push_core.config import get_settings
from push_core.errors import Forbidden, NotFound, Unauthorized
from push_core.identifiers import new_key_id, new_secret
from push_core.models import KeyRecord, KeyRole
from push_core.storage import apps as app_store

_ROLE_PREFIX: dict[KeyRole, str] = {"secret": "sk", "public": "pk", "device": "dk"}
_PREFIX_ROLE: dict[str, KeyRole] = {v: k for k, v in _ROLE_PREFIX.items()}
_KEY_PATTERN = re.compile(r"^pl_(sk|pk|dk)_([0-9a-f]{16})_([0-9a-f]{40})$")
_ADMIN_PATTERN = re.compile(r"^pl_admin_[0-9a-f]{40}$")


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of a key, the only form in which keys are stored."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    """A freshly made key: the token is shown once, the record is what gets stored."""

    token: str
    record: KeyRecord


@dataclass(frozen=True)
class AdminKey:
    token: str
    sha256: str


def new_admin_key() -> AdminKey:
    """A deployment admin key and the hash to configure (AdminKeySha256)."""
    token = f"pl_admin_{new_secret()}"
    return AdminKey(token=token, sha256=sha256_hex(token))


def issue_key(app_id: str, role: KeyRole, now: int, device_id: str | None = None) -> IssuedKey:
    """Make a new key for an app (or for one of its devices)."""
    key_id = new_key_id()
    token = f"pl_{_ROLE_PREFIX[role]}_{key_id}_{new_secret()}"
    record = KeyRecord(
        key_id=key_id,
        app_id=app_id,
        role=role,
        secret_sha256=sha256_hex(token),
        created_at=now,
        device_id=device_id,
    )
    return IssuedKey(token=token, record=record)


@dataclass(frozen=True)
class Caller:
    """Who is calling, as proven by their key. The app always comes from here, never from a request body."""

    is_admin: bool = False
    app_id: str | None = None
    role: KeyRole | None = None
    key_id: str | None = None
    device_id: str | None = None


def credential_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-Api-Key: <key>` (header names in any case)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    authorization = lowered.get("authorization", "").strip()
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    api_key = lowered.get("x-api-key", "").strip()
    return api_key or None


def authenticate(credential: str | None) -> Caller:
    """Resolve a credential to its caller, or raise Unauthorized without saying which part was wrong."""
    if not credential:
        raise Unauthorized("Send your key as 'Authorization: Bearer <key>'.", code="missing_key")
    if _ADMIN_PATTERN.match(credential):
        if hmac.compare_digest(sha256_hex(credential), get_settings().admin_key_sha256):
            return Caller(is_admin=True)
        raise Unauthorized("The key is not valid.", code="invalid_key")
    match = _KEY_PATTERN.match(credential)
    if not match:
        raise Unauthorized("The key is not valid.", code="invalid_key")
    role = _PREFIX_ROLE[match.group(1)]
    record = app_store.get_key(match.group(2))
    # Compare even when the record is missing, so timing does not tell unknown ids from wrong secrets.
    stored = record.secret_sha256 if record else "0" * 64
    if not hmac.compare_digest(sha256_hex(credential), stored) or record is None:
        raise Unauthorized("The key is not valid.", code="invalid_key")
    if record.revoked or record.role != role:
        raise Unauthorized("The key has been revoked.", code="revoked_key")
    return Caller(app_id=record.app_id, role=record.role, key_id=record.key_id, device_id=record.device_id)


def require_admin(caller: Caller) -> None:
    """Only the deployment's admin key may do this."""
    if not caller.is_admin:
        raise Forbidden("This needs the deployment's admin key.", code="admin_key_required")


def require_app_role(caller: Caller, *roles: KeyRole) -> str:
    """The caller's app, if their key has one of roles."""
    if caller.app_id is None or caller.role not in roles:
        wanted = " or ".join(roles)
        raise Forbidden(f"This needs an app key with the {wanted} role.", code="wrong_key_role")
    return caller.app_id


def managed_app(caller: Caller, app_id: str) -> str:
    """The app a management call may act on: any app for the admin, its own for a secret key.

    Another app's id answers exactly like an unknown one.
    """
    if caller.is_admin:
        return app_id
    own = require_app_role(caller, "secret")
    if own != app_id:
        raise NotFound("No such app.", code="app_not_found")
    return own


def device_caller_app(caller: Caller, device_id: str, *, allow_secret_key: bool) -> str:
    """The app of a call about one device: that device's own key, or (where allowed) the app's secret key."""
    if caller.role == "device" and caller.app_id is not None:
        if caller.device_id != device_id:
            raise NotFound("No such device.", code="device_not_found")
        return caller.app_id
    if allow_secret_key:
        return require_app_role(caller, "secret")
    raise Forbidden("This needs the device's own key.", code="device_key_required")
