import pytest

from push_core import auth
from push_core.errors import Forbidden, NotFound, Unauthorized
from tests.unit.conftest import UNIT_ADMIN_KEY


def test_credential_is_read_from_bearer_or_api_key_header_in_any_case():
    assert auth.credential_from_headers({"Authorization": "Bearer pl_x"}) == "pl_x"
    assert auth.credential_from_headers({"authorization": "bearer  pl_y "}) == "pl_y"
    assert auth.credential_from_headers({"X-API-KEY": "pl_z"}) == "pl_z"
    assert auth.credential_from_headers({"authorization": "Basic abc"}) is None
    assert auth.credential_from_headers({}) is None


def test_issued_key_is_stored_only_as_its_hash():
    issued = auth.issue_key("APP", "secret", now=1)
    assert issued.token.startswith(f"pl_sk_{issued.record.key_id}_")
    assert issued.record.secret_sha256 == auth.sha256_hex(issued.token)
    assert issued.token not in issued.record.model_dump_json()


@pytest.mark.parametrize(
    ("credential", "code"),
    [
        (None, "missing_key"),
        ("", "missing_key"),
        ("hello", "invalid_key"),
        ("pl_sk_short_secret", "invalid_key"),
        ("pl_admin_" + "00" * 20, "invalid_key"),
    ],
)
def test_malformed_or_wrong_credentials_are_unauthorized(credential, code):
    with pytest.raises(Unauthorized) as raised:
        auth.authenticate(credential)
    assert raised.value.code == code


def test_admin_key_matches_the_configured_hash():
    assert auth.authenticate(UNIT_ADMIN_KEY).is_admin


def test_new_admin_key_hash_is_what_the_template_parameter_expects():
    key = auth.new_admin_key()
    assert key.token.startswith("pl_admin_")
    assert key.sha256 == auth.sha256_hex(key.token)
    assert len(key.sha256) == 64


def test_managed_app_lets_admin_act_on_any_app_and_secret_keys_on_their_own_only():
    admin = auth.Caller(is_admin=True)
    owner = auth.Caller(app_id="A", role="secret", key_id="k")
    assert auth.managed_app(admin, "B") == "B"
    assert auth.managed_app(owner, "A") == "A"
    with pytest.raises(NotFound):  # another app's id answers like an unknown one
        auth.managed_app(owner, "B")
    with pytest.raises(Forbidden):
        auth.managed_app(auth.Caller(app_id="A", role="public", key_id="k"), "A")


def test_device_calls_take_the_device_key_for_its_own_device_only():
    device = auth.Caller(app_id="A", role="device", key_id="k", device_id="D1")
    assert auth.device_caller_app(device, "D1", allow_secret_key=False) == "A"
    with pytest.raises(NotFound):
        auth.device_caller_app(device, "D2", allow_secret_key=True)
    secret = auth.Caller(app_id="A", role="secret", key_id="k")
    assert auth.device_caller_app(secret, "D2", allow_secret_key=True) == "A"
    with pytest.raises(Forbidden):
        auth.device_caller_app(secret, "D2", allow_secret_key=False)


def test_require_admin_refuses_app_keys():
    with pytest.raises(Forbidden):
        auth.require_admin(auth.Caller(app_id="A", role="secret", key_id="k"))
