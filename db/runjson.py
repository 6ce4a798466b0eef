"""Runs as JSON built by PostgreSQL: the text of a selection of a run's fields, ready to send.

A list page of runs, each reduced to a few fields, costs the Python side one string per run
instead of a dozen decoded values and a dozen resolver calls. The text is what the API's
generic path would send for the same selection, byte for byte: keys in selection order, no
spaces, strings escaped the same way, enums upper-case, timestamps in UTC with six fractional
digits, stored JSON as the database wrote it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import orjson

from db.records import RUN_COLUMNS

Kind = Literal["text", "enum", "timestamp", "bigint", "json"]

# What may go into a literal: JSON punctuation around GraphQL names (no quote nor backslash
# of SQL's).
_SAFE_LITERAL = re.compile(r'[{}",:_0-9A-Za-z]*')

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
    # Its SQL expression by row alias, made once (see json_expression).
    sql: dict[str, str] = field(default_factory=dict, compare=False, hash=False, repr=False)


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


def json_expression(spec: RunJson, alias: str) -> str:
    """A SQL expression giving the JSON text of `spec` for the run row `alias`."""
    cached = spec.sql.get(alias)
    if cached is None:
        cached = spec.sql[alias] = _concatenation(_pieces(spec, alias))
    return cached


def _pieces(spec: RunJson, alias: str) -> list[tuple[bool, str]]:
    # (is it a literal, its text): `{"key":` and `,"key":` are literals, values are SQL.
    pieces: list[tuple[bool, str]] = []
    for index, item in enumerate(spec.fields):
        pieces.append((True, ("{" if index == 0 else ",") + orjson.dumps(item.key).decode() + ":"))
        if item.constant is not None:
            pieces.append((True, item.constant))
        elif item.parent is not None:
            parent = f"{alias}_p"
            # `mode <> ''` (always true: a CHECK allows 'sync' and 'async') names a column
            # that no secondary index holds, so that no index-only scan can answer the lookup.
            # Under row-level security the planner underestimates a scan of a whole workspace
            # in (workspace_id, status, updated_at, id): with a parent selection those columns
            # cover (`id status`), the index-only scan cost what the primary key did, and took
            # 2 ms instead of 4 us per parent once one workspace held 10M runs
            # (docs/benchmarks.md). Needing the heap, it costs more and the key wins. Not
            # `mode IS NOT NULL`: PostgreSQL 17 and later drop that qual on a NOT NULL column.
            pieces.append(
                (
                    False,
                    f"coalesce((SELECT {json_expression(item.parent, parent)} "
                    f"FROM workflow_runs {parent} "
                    f"WHERE {parent}.workspace_id = {alias}.workspace_id "
                    f"AND {parent}.id = {alias}.parent_run_id "
                    f"AND {parent}.mode <> ''), 'null')",
                )
            )
        else:
            assert item.column is not None
            pieces.append((False, _VALUE[item.kind].format(c=f"{alias}.{item.column}")))
    pieces.append((True, "}" if spec.fields else "{}"))
    return pieces


def _concatenation(pieces: list[tuple[bool, str]]) -> str:
    # Adjacent literals merged: each `||` is a function call per row in PostgreSQL.
    parts: list[str] = []
    literal = ""
    for is_literal, text in pieces:
        if is_literal:
            literal += text
            continue
        if literal:
            parts.append(_literal(literal))
            literal = ""
        parts.append(text)
    if literal:
        parts.append(_literal(literal))
    return " || ".join(parts)


def _literal(text: str) -> str:
    """A SQL string literal of `text`: keys are GraphQL names, constants JSON of such names."""
    if not _SAFE_LITERAL.fullmatch(text):
        raise ValueError(f"not a key or constant of a run's JSON: {text!r}")
    return "'" + text + "'::text"
