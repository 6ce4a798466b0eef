"""Checks on client input that the database cannot word well: sizes and NUL characters."""

from __future__ import annotations

from typing import Any

import orjson

from schema.context import Limits
from schema.errors import BadUserInput

# Identifiers and keys (subjectId, idempotencyKey, cfWorkflowId, ...) are short by nature.
MAX_KEY_BYTES = 1024


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def check_json(limits: Limits, value: Any, field: str) -> None:
    """A JSON value PostgreSQL can store, within the size limit."""
    if value is None:
        return
    try:
        encoded = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise BadUserInput(f"{field} is not storable JSON: {exc}.") from None
    if len(encoded) > limits.max_json_bytes:
        raise BadUserInput(f"{field} is larger than {limits.max_json_bytes} bytes of JSON.")
    if _has_nul(value):
        raise BadUserInput(f"{field} may not contain NUL characters.")


def check_text(value: str | None, field: str, max_bytes: int = MAX_KEY_BYTES) -> None:
    """Text PostgreSQL can store, within `max_bytes` of UTF-8."""
    if value is None:
        return
    if "\x00" in value:
        raise BadUserInput(f"{field} may not contain NUL characters.")
    if len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        raise BadUserInput(f"{field} is longer than {max_bytes} bytes.")


def check_required_text(value: str, field: str, max_bytes: int = MAX_KEY_BYTES) -> None:
    """Non-empty text, as for check_text."""
    if not value:
        raise BadUserInput(f"{field} may not be empty.")
    check_text(value, field, max_bytes)
