"""Compiled selections send the bytes the generic path sends, in fewer round trips."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from db.lifecycle import NewRun, Transition, create_run, transition_run
from db.records import RunTrigger
from db.runjson import JsonField, RunJson, json_expression
from server.app import create_app
from server.config import Settings
from tests.support import GraphQLClient, running, token

STRINGS = [
    "plain",
    'quote " and backslash \\ and slash /',
    "tab\tnewline\ncarriage\rform\fbell\x07 escape\x1b",
    "unicode é ß 中文 🚀 \u2028 \u2029",
]
INPUTS: list[Any] = [
    None,
    {"b": 1, "a": [1, 2.5, -0.0, 1e300, 12345678901234567890], "nested": {"x": None, "t": True}},
    [1, "two", {"three": 3}],
    "just a string",
    2.50,
    {"deep": {"er": {"est": ["\u00e9", "\n", 'q"']}}},
]


@pytest.fixture
async def seeded(pool: asyncpg.Pool) -> list[str]:
    """A tree of runs with every shape of value: strings, JSON, nulls, statuses."""
    ids: list[str] = []
    async with pool.acquire() as conn:
        for index, (subject, value) in enumerate(zip(STRINGS * 2, INPUTS * 2, strict=False)):
            parent = ids[index // 2] if index > 0 else None
            change = await create_run(
                conn,
                NewRun(
                    "ws-a",
                    f"wf_{subject}",
                    list(RunTrigger)[index % 5],
                    parent_run_id=parent,
                    input=value,
                    cf_workflow_id=subject if index % 3 == 0 else None,
                ),
                user_id=f"user {subject}",
            )
            ids.append(change.run.id)
            if index % 2:
                await transition_run(conn, ["ws-a"], change.run.id, Transition.START)
            if index % 4 == 1:
                await transition_run(
                    conn, ["ws-a"], change.run.id, Transition.COMPLETE, output=value
                )
            if index % 4 == 3:
                await transition_run(conn, ["ws-a"], change.run.id, Transition.FAIL, error=subject)
    return ids


@pytest.fixture
async def both(settings: Settings) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient, Any]]:
    compiled = create_app(settings)
    generic = create_app(replace(settings, compiled_selections=False))
    async with running(compiled) as a, running(generic) as b:
        first, second = GraphQLClient(a, token()), GraphQLClient(b, token())
        yield first, second, compiled
        await first.aclose()
        await second.aclose()


ALL_FIELDS = (
    "id workspaceId subjectId parentRunId status mode input output error triggeredBy "
    "cfWorkflowId durationMs userId startedAt completedAt createdAt updatedAt"
)
QUERIES = {
    "all fields": f'{{ workflowRuns(workspaceId: "ws-a") {{ nodes {{ {ALL_FIELDS} }} }} }}',
    "aliases and typename": (
        '{ list: workflowRuns(workspaceId: "ws-a", first: 5) { __typename '
        "items: nodes { __typename key: id s: status when: createdAt } } }"
    ),
    "edges, nodes and pageInfo": (
        '{ workflowRuns(workspaceId: "ws-a", first: 4) { totalCount pageInfo { hasNextPage '
        "hasPreviousPage startCursor endCursor } edges { cursor node { id input } } "
        "nodes { status durationMs } } }"
    ),
    "named and inline fragments": (
        '{ workflowRuns(workspaceId: "ws-a") { ...Page } } '
        "fragment Page on WorkflowRunConnection "
        "{ nodes { ...Run ... on WorkflowRun { error id } } } "
        "fragment Run on WorkflowRun { id subjectId parent { ...Parent } } "
        "fragment Parent on WorkflowRun { id status input }"
    ),
    "parents three deep": (
        '{ workflowRuns(workspaceId: "ws-a", orderBy: CREATED_AT_ASC) { nodes { id '
        "parent { id status parent { id input parent { id createdAt } } } } } }"
    ),
    "backward, filtered": (
        '{ workflowRuns(workspaceId: "ws-a", last: 3, status: [PENDING, RUNNING, COMPLETED], '
        "filter: {rootOnly: false}) { edges { cursor node { id status output } } "
        "pageInfo { hasNextPage hasPreviousPage } } }"
    ),
    "one run": "{ workflowRun(id: $ID) { __typename " + ALL_FIELDS + " parent { id subjectId } } }",
    "missing run": '{ workflowRun(id: "run_nope") { id } }',
    "not compiled: children": (
        '{ workflowRuns(workspaceId: "ws-a") '
        "{ nodes { id children { totalCount nodes { id } } } } }"
    ),
    "not compiled: directives": (
        '{ workflowRuns(workspaceId: "ws-a") { nodes { id status @include(if: true) } } }'
    ),
    "not compiled: events": "{ workflowRun(id: $ID) { id events { status cursor } } }",
}


@pytest.mark.parametrize("name", list(QUERIES))
async def test_compiled_and_generic_paths_send_the_same_bytes(
    both: tuple[GraphQLClient, GraphQLClient, Any], seeded: list[str], name: str
) -> None:
    compiled, generic, app = both
    query = QUERIES[name].replace("$ID", f'"{seeded[5]}"')
    first = await compiled.post(query)
    # The first answer planned the document, when it can be (schema/plans.py): the plan
    # answers the second.
    again = await compiled.post(query)
    second = await generic.post(query)
    assert first.status_code == again.status_code == second.status_code == 200
    assert b'"errors"' not in first.content, first.content
    assert first.content == second.content
    assert again.content == second.content
    planned = app.state.runtime.schema.plans.answered
    assert planned == (0 if name.startswith("not compiled") else 1)


async def test_a_page_of_runs_with_their_parents_costs_one_statement(
    both: tuple[GraphQLClient, GraphQLClient, Any], seeded: list[str]
) -> None:
    compiled, _, app = both
    runtime = app.state.runtime
    query = (
        '{ workflowRuns(workspaceId: "ws-a", first: 50) '
        "{ nodes { id status parent { id status } } } }"
    )
    await compiled.data(query)  # the scope of the connection is set once, on first use
    before = runtime.queries
    data = await compiled.data(query)
    assert runtime.queries - before == 1
    assert any(n["parent"] for n in data["workflowRuns"]["nodes"])


def test_a_key_that_is_not_a_graphql_name_never_reaches_the_sql_text() -> None:
    # Keys are written into the statement as literals; GraphQL names cannot hold a quote, and
    # anything else is refused rather than quoted.
    for key in ("it's", "back\\slash", "new\nline"):
        with pytest.raises(ValueError, match="not a key"):
            json_expression(RunJson((JsonField(key, column="id"),)), "r")
    assert json_expression(RunJson((JsonField("ok_1", column="id"),)), "r").startswith(
        "'{\"ok_1\":'::text || "
    )


def _subplans(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node] if node.get("Parent Relationship") == "SubPlan" else []
    for child in node.get("Plans", ()):
        found += _subplans(child)
    return found


async def test_a_parent_lookup_needs_the_row_so_no_covering_index_answers_it(
    pool: asyncpg.Pool,
) -> None:
    # Under row-level security the planner underestimates a scan of a whole workspace in an
    # index that covers `parent { id status }` (workspace_id, status, ..., id), and with one
    # large workspace it chose that index-only scan over the primary key: 2 ms a parent
    # instead of 4 us (db/runjson.py). The lookup keeps a condition on `mode`, which no
    # secondary index holds; PostgreSQL 17 and later dropped the first such condition
    # (`mode IS NOT NULL`, on a NOT NULL column) from the plan. This checks the plan.
    parent = RunJson((JsonField("id", column="id"), JsonField("status", "status", "enum")))
    spec = RunJson((JsonField("id", column="id"), JsonField("parent", parent=parent)))
    sql = (
        f"SELECT {json_expression(spec, 'page')} FROM workflow_runs page "
        "WHERE page.workspace_id = $1"
    )
    async with pool.acquire() as conn:
        [explained] = await conn.fetchval(f"EXPLAIN (FORMAT JSON, VERBOSE) {sql}", "ws-a")
    [lookup] = _subplans(explained["Plan"])
    assert lookup["Node Type"] != "Index Only Scan"
    conditions = " ".join(str(lookup.get(k, "")) for k in ("Index Cond", "Filter"))
    assert "mode" in conditions, lookup
