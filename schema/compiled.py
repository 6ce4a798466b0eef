"""Compiled selections: run fields answered by JSON that PostgreSQL builds.

graphql-core resolves and completes every field of every run: a page of 50 runs with their
17 fields is 850 resolver calls and value completions, most of a request's time. When a run's
selection is made only of plain fields (and `__typename`, and `parent` with such a selection),
its JSON can instead be built by the statement that reads the page (`db/runjson.py`); the
resolver hands back rows carrying that text, and `CompiledExecutor` puts it in the response in
place of executing the selection. Everything around it (pageInfo, cursors, counts, errors,
other fields) is executed as usual. Selections with arguments, directives, `children`,
`events` or anything else are not compiled: the generic path answers them.

The bytes are those of the generic path (tests/test_compiled.py compares them).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import orjson
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from db.runjson import JsonField, Kind, RunJson, RunJsonRow

# GraphQL field of WorkflowRun -> (column, how its value is written).
_PLAIN: dict[str, tuple[str, Kind]] = {
    "id": ("id", "text"),
    "workspaceId": ("workspace_id", "text"),
    "subjectId": ("subject_id", "text"),
    "parentRunId": ("parent_run_id", "text"),
    "status": ("status", "enum"),
    "mode": ("mode", "enum"),
    "input": ("input", "json"),
    "output": ("output", "json"),
    "error": ("error", "text"),
    "triggeredBy": ("triggered_by", "enum"),
    "cfWorkflowId": ("cf_workflow_id", "text"),
    "durationMs": ("duration_ms", "bigint"),
    "userId": ("user_id", "text"),
    "startedAt": ("started_at", "timestamp"),
    "completedAt": ("completed_at", "timestamp"),
    "createdAt": ("created_at", "timestamp"),
    "updatedAt": ("updated_at", "timestamp"),
}
_MAX_PARENT_DEPTH = 3

# The key the executor finds a compiled selection by: the identity of the field nodes it
# completes (the same nodes the resolver compiled, from the parsed document).
SelectionKey = frozenset[int]
Fragments = dict[str, FragmentDefinitionNode]


class NotCompiled(Exception):
    pass


def selection_key(nodes: Sequence[FieldNode]) -> SelectionKey:
    return frozenset(id(node) for node in nodes)


def collect_fields(
    selection_sets: Sequence[SelectionSetNode | None], fragments: Fragments, type_name: str
) -> OrderedDict[str, list[FieldNode]]:
    """The fields of merged selection sets, by response key, in the order graphql-core
    collects them (fragments expanded where they are spread)."""
    fields: OrderedDict[str, list[FieldNode]] = OrderedDict()

    def walk(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if selection.directives:
                raise NotCompiled  # @skip / @include depend on variables: leave it generic
            if isinstance(selection, FieldNode):
                key = (selection.alias or selection.name).value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is not None and condition.name.value != type_name:
                    raise NotCompiled
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments[selection.name.value]
                if fragment.type_condition.name.value != type_name:
                    raise NotCompiled
                walk(fragment.selection_set)

    for selection_set in selection_sets:
        if selection_set is None:
            raise NotCompiled
        walk(selection_set)
    return fields


def _run(nodes: Sequence[FieldNode], fragments: Fragments, depth: int = 0) -> RunJson:
    out = []
    for key, same in collect_fields(
        [n.selection_set for n in nodes], fragments, "WorkflowRun"
    ).items():
        name = same[0].name.value
        if any(n.arguments for n in same):
            raise NotCompiled
        if name == "__typename":
            out.append(JsonField(key, constant='"WorkflowRun"'))
        elif name in _PLAIN:
            column, kind = _PLAIN[name]
            out.append(JsonField(key, column=column, kind=kind))
        elif name == "parent" and depth < _MAX_PARENT_DEPTH:
            out.append(JsonField(key, parent=_run(same, fragments, depth + 1)))
        else:
            raise NotCompiled
    return RunJson(tuple(out))


Compiled = list[tuple[SelectionKey, RunJson]]

# Compiled selections by the identity of the field nodes they come from. Parsed documents are
# cached (and so their nodes are the same objects) for as long as the parser cache keeps them;
# an entry keeps its nodes, so that a reused id never matches another document's nodes.
_CACHE: OrderedDict[tuple[str, tuple[int, ...]], tuple[tuple[FieldNode, ...], Compiled | None]]
_CACHE = OrderedDict()
# Each document twice (its parsed copy in Strawberry's parser cache, and its plan's), up to 30
# aliased root fields each.
_CACHE_SIZE = 16384


def _memoized(kind: str, nodes: Sequence[FieldNode], fragments: Fragments, make: Any) -> Any:
    key = (kind, tuple(id(n) for n in nodes))
    hit = _CACHE.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], nodes, strict=True)):
        _CACHE.move_to_end(key)
        return hit[1]
    try:
        compiled = make(nodes, fragments)
    except NotCompiled:
        compiled = None
    _CACHE[key] = (tuple(nodes), compiled)
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return compiled


def compile_run(nodes: Sequence[FieldNode], fragments: Fragments) -> Compiled | None:
    """The compiled selection of a field whose value is one run (workflowRun), or None."""
    return _memoized(  # type: ignore[no-any-return]
        "run", nodes, fragments, lambda n, f: [(selection_key(n), _run(n, f))]
    )


def compile_connection(nodes: Sequence[FieldNode], fragments: Fragments) -> Compiled | None:
    """The compiled selections of a run connection's `nodes` and `edges.node`, or None when
    something in it needs the generic path."""
    return _memoized("connection", nodes, fragments, _connection)  # type: ignore[no-any-return]


def _connection(nodes: Sequence[FieldNode], fragments: Fragments) -> Compiled:
    compiled = []
    connection = collect_fields(
        [n.selection_set for n in nodes], fragments, "WorkflowRunConnection"
    )
    for same in connection.values():
        name = same[0].name.value
        if name == "nodes":
            compiled.append((selection_key(same), _run(same, fragments)))
        elif name == "edges":
            edge = collect_fields([n.selection_set for n in same], fragments, "WorkflowRunEdge")
            for inner in edge.values():
                inner_name = inner[0].name.value
                if inner_name == "node":
                    compiled.append((selection_key(inner), _run(inner, fragments)))
                elif inner_name not in ("cursor", "__typename"):
                    raise NotCompiled
        elif name not in ("pageInfo", "totalCount", "__typename"):
            raise NotCompiled
    return compiled


class CompiledExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, completing a run that carries compiled JSON with that JSON."""

    def complete_object_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if isinstance(result, RunJsonRow):
            key = frozenset(id(details.node) for details in field_details_list)
            # (orjson takes only exact str)
            return orjson.Fragment(str(result.json[key]))
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def complete_list_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        # A page of compiled runs is one array of their texts: no completion per item.
        if isinstance(result, list) and result and isinstance(result[0], RunJsonRow):
            key = frozenset(id(details.node) for details in field_details_list)
            if all(isinstance(row, RunJsonRow) for row in result):
                return orjson.Fragment("[" + ",".join([str(row.json[key]) for row in result]) + "]")
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )
