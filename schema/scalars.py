"""The contract's custom scalars: DateTime, JSON and Long."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NewType

import orjson
import strawberry
from strawberry.types.scalar import ScalarDefinition

from db.pool import JSONText

DateTime = NewType("DateTime", datetime)
JSON = NewType("JSON", object)
Long = NewType("Long", int)

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def serialize_datetime(value: datetime) -> str:
    """ISO-8601 in UTC, always with PostgreSQL's six fractional digits."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO-8601 string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"Invalid ISO-8601 DateTime: {value!r}.") from None
    if parsed.tzinfo is None:
        raise ValueError("DateTime needs a UTC offset, e.g. 2026-11-24T19:15:00+00:00.")
    try:
        # Stored in UTC: an instant outside years 1..9999 there cannot be held or compared.
        parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"DateTime out of range: {value!r}.") from None
    return parsed


def _serialize_json(value: Any) -> Any:
    # Stored JSON is passed on as the database wrote it (see db.pool.JSONText).
    # (orjson takes only exact str: hence the str() of the marker subclass.)
    return orjson.Fragment(str(value)) if isinstance(value, JSONText) else value


def _serialize_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Long cannot represent {value!r}.")
    return value


def _parse_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not _LONG_MIN <= value <= _LONG_MAX:
        raise ValueError("Long must be a 64-bit integer.")
    return value


SCALARS: dict[object, ScalarDefinition] = {
    DateTime: strawberry.scalar(
        name="DateTime",
        description=(
            "An ISO-8601 timestamp with a UTC offset, e.g. 2026-11-24T19:15:00.123456+00:00."
        ),
        serialize=serialize_datetime,
        parse_value=_parse_datetime,
    ),
    JSON: strawberry.scalar(
        name="JSON",
        description="Any JSON value: object, array, string, number, boolean or null.",
        serialize=_serialize_json,
        parse_value=lambda v: v,
    ),
    Long: strawberry.scalar(
        name="Long",
        description="A 64-bit integer, serialised as a JSON number (GraphQL Int is only 32-bit).",
        serialize=_serialize_long,
        parse_value=_parse_long,
    ),
}
