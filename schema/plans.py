"""Whole operations answered without graphql-core's executor.

Most requests a client sends are the same few documents with new variables: a page of runs, one
run by id. Once the generic path has answered such a document without an error (so it parses,
validates and fits the budget, none of which depends on variables), its operation is planned:
each root field, its arguments and its selection, compiled to JSON that PostgreSQL builds
(schema/compiled.py). The next request for the same text coerces its variables with
graphql-core, calls the resolvers' own functions (schema/queries.py) and writes the response
from the rows' JSON, with no parse, validation, resolver call or value completion.

Only what is known to come out byte for byte as the generic path sends it is planned: queries
without directives, whose root fields are `workflowRun` and `workflowRuns` (with `nodes`,
`edges { cursor node }`, `pageInfo` and `totalCount`) and `__typename`. Anything else, and any
request that fails on the way (a variable of the wrong type, a forbidden workspace, a bad
cursor, the database down), goes to the generic path, which gives its errors; reads have no
side effects, so running a failed request again costs only time, within the same deadline.

Schema extensions do not run for a planned request. Those of this schema are accounted for:
the limits and the budget held when the generic path answered the document, the deadline is
applied here, metrics are told through `RunsSchema.observe_planned`, and a query has no commit
position. A new extension must be too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLInt,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.scalars import ID
from strawberry.schema.config import StrawberryConfig
from strawberry.types.arguments import StrawberryArgument, convert_arguments

from db.runjson import RunJsonRow
from schema.compiled import (
    Fragments,
    NotCompiled,
    collect_fields,
    compile_connection,
    compile_run,
    selection_key,
)
from schema.context import Context
from schema.deadline import overran
from schema.pagination import Page
from schema.queries import find_run, list_runs_page

log = logging.getLogger(__name__)

_PAGE_INFO = frozenset({"hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"})


class Declined(Exception):
    """This request is left to the generic path."""


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A field of the connection (or of its pageInfo or edges) with no selection of its own."""

    key: str
    name: str


@dataclass(frozen=True, slots=True)
class _Runs:
    """`nodes` (or an edge's `node`): runs as the JSON compiled for these field nodes."""

    key: str
    selection: frozenset[int]


@dataclass(frozen=True, slots=True)
class _Object:
    """`pageInfo` or `edges`: an object (one per run, for edges) of leaves and runs."""

    key: str
    name: str
    fields: tuple[_Leaf | _Runs, ...]


@dataclass(frozen=True, slots=True)
class _Root:
    key: str
    name: str
    nodes: tuple[FieldNode, ...]
    definition: GraphQLField | None
    arguments: Sequence[StrawberryArgument]
    # workflowRun: the selection key of the run's JSON; workflowRuns: the connection's fields.
    selection: frozenset[int] | None = None
    connection: tuple[_Leaf | _Runs | _Object, ...] = ()
    # Whether graphql-core's argument values need Strawberry's conversion (inputs, enums,
    # renamed arguments); strings and IDs under their own names come out as they went in.
    convert: bool = True


@dataclass(frozen=True)
class Plan:
    """One planned operation: its variables and root fields."""

    operation: OperationDefinitionNode
    fragments: Fragments
    roots: tuple[_Root, ...]


class Plans:
    """Plans by query text and operation name, learnt from the generic path's successes."""

    def __init__(
        self,
        schema: GraphQLSchema,
        arguments: dict[str, Sequence[StrawberryArgument]],
        config: StrawberryConfig,
        scalar_registry: Any,
        *,
        max_tokens: int,
        size: int = 256,
    ) -> None:
        self.schema = schema
        self.arguments = arguments
        self.config = config
        self.scalar_registry = scalar_registry
        self.max_tokens = max_tokens
        self.size = size
        # None: the document was looked at and cannot be planned.
        self._plans: OrderedDict[tuple[str, str | None], Plan | None] = OrderedDict()
        # Requests answered by a plan, and left to the generic path after all (metrics).
        self.answered = 0
        self.declined = 0

    def get(self, query: str, operation_name: str | None) -> Plan | None:
        key = (query, operation_name)
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
        return plan

    def learn(self, query: str, operation_name: str | None) -> None:
        """Plan `query`, which the generic path has just answered without an error."""
        key = (query, operation_name)
        if key in self._plans:
            return
        try:
            plan: Plan | None = self._plan(query, operation_name)
        except (NotCompiled, GraphQLError):
            plan = None
        self._plans[key] = plan
        if len(self._plans) > self.size:
            self._plans.popitem(last=False)

    def _plan(self, query: str, operation_name: str | None) -> Plan:
        document = parse(query, no_location=True, max_tokens=self.max_tokens)
        operations = [
            d
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode)
            and (operation_name is None or (d.name is not None and d.name.value == operation_name))
        ]
        if len(operations) != 1:
            raise NotCompiled
        operation = operations[0]
        if operation.operation is not OperationType.QUERY or operation.directives:
            raise NotCompiled
        if any(v.directives for v in operation.variable_definitions or ()):
            raise NotCompiled
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        query_type = self.schema.query_type
        assert query_type is not None
        roots = []
        for key, same in collect_fields([operation.selection_set], fragments, "Query").items():
            name = same[0].name.value
            nodes = tuple(same)
            if name == "__typename":
                roots.append(_Root(key, name, nodes, None, ()))
            elif name in ("workflowRun", "workflowRuns"):
                one = name == "workflowRun"
                if (compile_run if one else compile_connection)(nodes, fragments) is None:
                    raise NotCompiled
                definition = query_type.fields[name]
                arguments = self.arguments[name]
                roots.append(
                    _Root(
                        key,
                        name,
                        nodes,
                        definition,
                        arguments,
                        selection=selection_key(nodes) if one else None,
                        connection=() if one else _connection(nodes, fragments),
                        convert=not self._plain(definition, arguments),
                    )
                )
            else:
                raise NotCompiled
        return Plan(operation, fragments, tuple(roots))

    def _plain(self, definition: GraphQLField, arguments: Sequence[StrawberryArgument]) -> bool:
        """Whether every argument is a string or an ID whose GraphQL name is its Python name
        (as Strawberry's own conversion names them)."""
        names = self.config.name_converter
        return len(definition.args) == len(arguments) and all(
            (a.type is ID or a.type is str)
            and names.from_argument(a) == a.python_name
            and a.python_name in definition.args
            for a in arguments
        )

    async def execute(
        self, plan: Plan, context: Context, variables: dict[str, Any] | None, deadline_s: float
    ) -> dict[str, Any]:
        """The response's `data`, or Declined (the generic path answers) or QueryTooComplex
        (the execution deadline passed, as the generic path would say).

        The deadline is the context's: a declined request's generic run gets what is left.
        """
        if not context.compiled_selections:
            raise Declined
        # The generic path takes over what is left of this (see ExecutionDeadline).
        context.deadline = asyncio.get_running_loop().time() + deadline_s
        timeout = asyncio.timeout_at(context.deadline)
        try:
            async with timeout:
                coerced = get_variable_values(
                    self.schema, plan.operation.variable_definitions or (), variables or {}
                )
                if isinstance(coerced, list):
                    raise Declined
                values = await _concurrently(
                    [self._root(plan, root, context, coerced) for root in plan.roots]
                )
        except TimeoutError as exc:
            if not timeout.expired():
                raise self._declined(context, exc) from exc
            context.deadline = None
            raise overran(deadline_s) from None
        except Exception as exc:
            raise self._declined(context, exc) from exc
        context.deadline = None
        self.answered += 1
        return {root.key: value for root, value in zip(plan.roots, values, strict=True)}

    def _declined(self, context: Context, exc: Exception) -> Declined:
        self.declined += 1
        log.debug("plan declined (request %s): %r", context.request_id, exc)
        return Declined()

    async def _root(self, plan: Plan, root: _Root, context: Context, variables: Any) -> Any:
        if root.definition is None:
            return "Query"
        kwargs = get_argument_values(root.definition, root.nodes[0], variables)
        if root.convert:
            kwargs = convert_arguments(
                kwargs,
                list(root.arguments),
                scalar_registry=self.scalar_registry,
                config=self.config,
            )
        if root.selection is not None:
            run = await find_run(context, kwargs["id"], root.nodes, plan.fragments)
            if run is None:
                return None
            if not isinstance(run, RunJsonRow):
                raise Declined
            return orjson.Fragment(str(run.json[root.selection]))
        page = await list_runs_page(context, root.nodes, plan.fragments, **kwargs)
        return await _connection_value(root.connection, page)


def _connection(
    nodes: Sequence[FieldNode], fragments: Fragments
) -> tuple[_Leaf | _Runs | _Object, ...]:
    out: list[_Leaf | _Runs | _Object] = []
    selection_sets = [n.selection_set for n in nodes]
    for key, same in collect_fields(selection_sets, fragments, "WorkflowRunConnection").items():
        name = same[0].name.value
        if name in ("totalCount", "__typename"):
            out.append(_Leaf(key, name))
        elif name == "nodes":
            out.append(_Runs(key, selection_key(same)))
        elif name == "pageInfo":
            info = collect_fields([n.selection_set for n in same], fragments, "PageInfo")
            if any(s[0].name.value not in _PAGE_INFO or s[0].arguments for s in info.values()):
                raise NotCompiled
            fields = tuple(_Leaf(k, s[0].name.value) for k, s in info.items())
            out.append(_Object(key, name, fields))
        elif name == "edges":
            edge = collect_fields([n.selection_set for n in same], fragments, "WorkflowRunEdge")
            edge_fields: list[_Leaf | _Runs] = []
            for inner_key, inner in edge.items():
                inner_name = inner[0].name.value
                if inner_name == "node":
                    edge_fields.append(_Runs(inner_key, selection_key(inner)))
                else:
                    edge_fields.append(_Leaf(inner_key, inner_name))
            out.append(_Object(key, name, tuple(edge_fields)))
        else:
            raise NotCompiled
        if any(n.arguments for n in same):
            raise NotCompiled
    return tuple(out)


def _rows(page: Page) -> list[RunJsonRow]:
    rows = page.runs
    if not all(isinstance(row, RunJsonRow) for row in rows):
        raise Declined
    return rows  # type: ignore[return-value]


async def _connection_value(fields: Sequence[_Leaf | _Runs | _Object], page: Page) -> Any:
    # Counts and neighbours are read concurrently, as graphql-core completes fields.
    value: dict[str, Any] = {}
    pending: list[tuple[dict[str, Any], str, Coroutine[Any, Any, Any]]] = []
    for field in fields:
        if isinstance(field, _Runs):
            rows = _rows(page)
            value[field.key] = orjson.Fragment(
                "[" + ",".join([str(row.json[field.selection]) for row in rows]) + "]"
            )
        elif isinstance(field, _Leaf):
            if field.name == "__typename":
                value[field.key] = "WorkflowRunConnection"
            else:
                value[field.key] = None
                pending.append((value, field.key, _total(page)))
        elif field.name == "pageInfo":
            info: dict[str, Any] = {}
            for f in field.fields:
                if isinstance(f, _Leaf):
                    info[f.key] = None
                    pending.append((info, f.key, _page_info(f.name, page)))
            value[field.key] = info
        else:
            value[field.key] = [_edge(field.fields, page, row) for row in _rows(page)]
    results = await _concurrently([coroutine for _, _, coroutine in pending])
    for (target, key, _), result in zip(pending, results, strict=True):
        target[key] = result
    return value


async def _total(page: Page) -> int:
    # An Int: a count past 2^31 - 1 fails (and the generic path reports it), as it would there.
    return int(GraphQLInt.serialize(await page.total()))


async def _concurrently(coroutines: Sequence[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Results in order; tasks only when there is more than one to wait for."""
    if len(coroutines) == 1:
        return [await coroutines[0]]
    if not coroutines:
        return []
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(coroutine) for coroutine in coroutines]
    return [task.result() for task in tasks]


async def _page_info(name: str, page: Page) -> Any:
    if name == "hasNextPage":
        return await page.has_next()
    if name == "hasPreviousPage":
        return await page.has_previous()
    if name == "startCursor":
        return page.start_cursor()
    if name == "endCursor":
        return page.end_cursor()
    return "PageInfo"


def _edge(fields: Sequence[_Leaf | _Runs], page: Page, row: RunJsonRow) -> dict[str, Any]:
    edge: dict[str, Any] = {}
    for field in fields:
        if isinstance(field, _Runs):
            edge[field.key] = orjson.Fragment(str(row.json[field.selection]))
        elif field.name == "cursor":
            edge[field.key] = page.cursor(row)  # type: ignore[arg-type]
        else:
            edge[field.key] = "WorkflowRunEdge"
    return edge
