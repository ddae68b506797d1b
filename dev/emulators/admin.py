"""The admin API's plumbing: its path prefix, its one error type, and typed readers for JSON request fields."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dev.emulators.server import EmulatorRequest, EmulatorResponse

ADMIN_PREFIX = "/_emulator/"

AdminHandler = Callable[[EmulatorRequest, dict[str, Any]], EmulatorResponse]


class BadAdminRequest(ValueError):
    """An admin request the emulator cannot act on; answered 400 with the message."""


def json_object(request: EmulatorRequest) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is an empty object."""
    if not request.body.strip():
        return {}
    try:
        document = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadAdminRequest("the body is not JSON") from exc
    if not isinstance(document, dict):
        raise BadAdminRequest("the body must be a JSON object")
    return document


def text(document: dict[str, Any], key: str) -> str:
    """A required non-empty string field."""
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise BadAdminRequest(f"{key} must be a non-empty string")
    return value


def optional_text(document: dict[str, Any], key: str) -> str | None:
    """An optional string field (absent or null is None)."""
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise BadAdminRequest(f"{key} must be a non-empty string")
    return value


def text_list(document: dict[str, Any], key: str, *, required: bool = True) -> list[str]:
    """A list of non-empty strings (an absent optional list is empty)."""
    value = document.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise BadAdminRequest(f"{key} must be a list of non-empty strings")
    return list(value)


def optional_int(document: dict[str, Any], key: str) -> int | None:
    """An optional integer field."""
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadAdminRequest(f"{key} must be an integer")
    return value


def optional_number(document: dict[str, Any], key: str) -> float | None:
    """An optional number field."""
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadAdminRequest(f"{key} must be a number")
    return float(value)


def flag(document: dict[str, Any], key: str, default: bool) -> bool:
    """An optional boolean field."""
    value = document.get(key, default)
    if not isinstance(value, bool):
        raise BadAdminRequest(f"{key} must be true or false")
    return value
