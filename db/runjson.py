"""Runs as JSON built by PostgreSQL: the text of a selection of a run's fields, ready to send.

A list page of runs, each reduced to a few fields, costs the Python side one string per run
instead of a dozen decoded values and a dozen resolver calls. The text is what the API's
generic path would send for the same selection, byte for byte: keys in selection order, no
spaces, strings escaped the same way, enums upper-case, timestamps in UTC with six fractional
digits, stored JSON as the database wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import orjson

from db.records import RUN_COLUMNS

Kind = Literal["text", "enum", "timestamp", "bigint", "json"]

# One JSON value of each kind, for a column reference `{c}`; NULL becomes null.
_VALUE: dict[Kind, str] = {
    "text": "coalesce(to_json({c})::text, 'null')",
    # Enum values are stored lower-case and checked (a-z and _): their GraphQL name is upper().
    "enum": "coalesce('\"' || upper({c}) || '\"', 'null')",
    "timestamp": (
        "coalesce('\"' || to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') "
        "|| '+00:00\"', 'null')"
    ),
    "bigint": "coalesce({c}::text, 'null')",
    "json": "coalesce({c}::text, 'null')",
}


@dataclass(frozen=True)
class JsonField:
    """One key of the object: a column of the run, a constant, or the run's parent."""

    key: str
    column: str | None = None
    kind: Kind = "text"
    # JSON text of a constant value (e.g. "__typename").
    constant: str | None = None
    parent: RunJson | None = None

    def __post_init__(self) -> None:
        if self.column is not None and self.column not in RUN_COLUMNS:
            raise ValueError(f"not a column of workflow_runs: {self.column}")


@dataclass(frozen=True)
class RunJson:
    """The fields of a run to put in its JSON object, in order."""

    fields: tuple[JsonField, ...]


@dataclass(frozen=True, slots=True)
class RunJsonRow:
    """A run as a page needs it when its fields come as JSON: where it sorts, and the text of
    each selection asked for (by the caller's key)."""

    id: str
    workspace_id: str
    created_at: datetime
    updated_at: datetime
    json: dict[object, str]


class Params:
    """Collects parameter values and hands out their `$n` placeholders."""

    def __init__(self, values: list[object] | None = None) -> None:
        self.values: list[object] = values if values is not None else []

    def add(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def json_expression(spec: RunJson, alias: str, params: Params) -> str:
    """A SQL expression giving the JSON text of `spec` for the run row `alias`."""
    parts = []
    for field in spec.fields:
        # The key travels as a parameter: `"key":`, already JSON-escaped.
        key = params.add(orjson.dumps(field.key).decode() + ":")
        if field.constant is not None:
            value = f"{params.add(field.constant)}::text"
        elif field.parent is not None:
            parent = f"{alias}_p"
            value = (
                f"coalesce((SELECT {json_expression(field.parent, parent, params)} "
                f"FROM workflow_runs {parent} "
                f"WHERE {parent}.workspace_id = {alias}.workspace_id "
                f"AND {parent}.id = {alias}.parent_run_id), 'null')"
            )
        else:
            assert field.column is not None
            value = _VALUE[field.kind].format(c=f"{alias}.{field.column}")
        parts.append(f"{key}::text || {value}")
    return "'{' || " + " || ',' || ".join(parts) + " || '}'"
