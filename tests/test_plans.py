"""Planned operations (schema/plans.py) answer as the generic path does, byte for byte.

A document is planned once the generic path has answered it without an error; from then on
its requests skip graphql-core's executor. Each test here sends the same request to a service
whose plans are learnt and to one that never plans (its compiled selections off), and compares
what a client receives: status, content type and body.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from server.app import create_app
from server.config import Settings
from tests.factories import seed_runs
from tests.support import running, runs_locked, token

RUN_FIELDS = (
    "id workspaceId subjectId parentRunId status mode input output error triggeredBy "
    "cfWorkflowId durationMs userId startedAt completedAt createdAt updatedAt"
)
PAGE = f"""query Page($ws: ID!, $status: [WorkflowRunStatus!], $first: Int, $after: String) {{
  workflowRuns(workspaceId: $ws, status: $status, first: $first, after: $after) {{
    totalCount
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    edges {{ cursor node {{ id status }} }}
    nodes {{ {RUN_FIELDS} parent {{ id status }} }}
  }}
}}"""
BACKWARD = """query Back($ws: ID!, $last: Int!, $before: String, $filter: WorkflowRunFilter) {
  workflowRuns(workspaceId: $ws, last: $last, before: $before, filter: $filter,
               orderBy: UPDATED_AT_DESC) {
    pageInfo { __typename hasPreviousPage startCursor }
    edges { __typename node { id updatedAt } cursor }
  }
}"""
BY_ID = f"query Run($id: ID!) {{ __typename run: workflowRun(id: $id) {{ {RUN_FIELDS} }} }}"


@dataclass
class Side:
    """One service and a client of it."""

    app: Starlette
    http: httpx.AsyncClient
    url: str

    @property
    def answered(self) -> int:
        plans = self.app.state.runtime.schema.plans
        return int(plans.answered) if plans is not None else 0

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, bearer: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {bearer or token(['ws-a', 'ws-b'])}"}
        body = {"query": query, "variables": variables}
        return await self.http.post(self.url, json=body, headers=headers)

    async def get(self, query: str, variables: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token(['ws-a', 'ws-b'])}"}
        params = {"query": query, "variables": variables}
        return await self.http.get(self.url, params=params, headers=headers)


@asynccontextmanager
async def serving_both(settings: Settings) -> AsyncIterator[tuple[Side, Side]]:
    """The service as configured, and the same service never planning nor compiling."""
    planned_app = create_app(settings)
    generic_app = create_app(replace(settings, compiled_selections=False))
    async with (
        running(planned_app) as planned_url,
        running(generic_app) as generic_url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        yield (
            Side(planned_app, http, f"{planned_url}/graphql"),
            Side(generic_app, http, f"{generic_url}/graphql"),
        )


@pytest.fixture
async def sides(
    settings: Settings, pool: asyncpg.Pool
) -> AsyncIterator[tuple[Side, Side, list[dict[str, Any]]]]:
    seeded = await seed_runs(pool, "ws-a", 120, rng=random.Random(7))
    await seed_runs(pool, "ws-b", 5, rng=random.Random(8))
    async with serving_both(settings) as (planned, generic):
        yield planned, generic, seeded


def _same(planned: httpx.Response, generic: httpx.Response) -> None:
    assert planned.status_code == generic.status_code
    assert planned.headers["content-type"] == generic.headers["content-type"]
    assert planned.content == generic.content


def _without_request_ids(body: dict[str, Any]) -> dict[str, Any]:
    for error in body.get("errors", []):
        error.get("extensions", {}).pop("requestId", None)
    return body


async def test_pages_walked_with_variables_match_the_generic_path(
    sides: tuple[Side, Side, list[dict[str, Any]]],
) -> None:
    planned, generic, _ = sides
    statuses: list[Any] = [None, ["COMPLETED", "FAILED"], ["RUNNING"], []]
    requests = 0
    for status in statuses:
        after = None
        while True:
            variables = {"ws": "ws-a", "status": status, "first": 17, "after": after}
            expected = await generic.post(PAGE, variables)
            got = await planned.post(PAGE, variables)
            requests += 1
            _same(got, expected)
            body = got.json()
            assert "errors" not in body, body
            page_info = body["data"]["workflowRuns"]["pageInfo"]
            if not page_info["hasNextPage"]:
                break
            after = page_info["endCursor"]
    assert requests > 10
    # The first request was answered by the generic path, which planned the document.
    assert planned.answered == requests - 1


async def test_backward_pages_filters_and_typenames_match(
    sides: tuple[Side, Side, list[dict[str, Any]]],
) -> None:
    planned, generic, seeded = sides
    parent = next(r["parent_run_id"] for r in seeded if r["parent_run_id"])
    cases: list[dict[str, Any]] = [
        {"ws": "ws-a", "last": 5},
        {"ws": "ws-a", "last": 50, "filter": {"rootOnly": False}},
        {"ws": "ws-a", "last": 3, "filter": {"parentRunId": parent}},
        {"ws": "ws-b", "last": 500, "filter": {"subjectId": "nobody"}},
    ]
    for variables in cases:
        await planned.post(BACKWARD, variables)  # (learns)
        before = planned.answered
        got, expected = (
            await planned.post(BACKWARD, variables),
            await generic.post(BACKWARD, variables),
        )
        _same(got, expected)
        assert planned.answered == before + 1
        cursor = got.json()["data"]["workflowRuns"]["pageInfo"]["startCursor"]
        if cursor is not None:
            variables = {**variables, "before": cursor}
            _same(await planned.post(BACKWARD, variables), await generic.post(BACKWARD, variables))


async def test_runs_by_id_present_missing_and_elsewhere_match(
    sides: tuple[Side, Side, list[dict[str, Any]]],
) -> None:
    planned, generic, seeded = sides
    await planned.post(BY_ID, {"id": seeded[0]["id"]})
    before = planned.answered
    ids = [r["id"] for r in seeded[:20]] + ["run_missing", seeded[1]["id"]]
    for run_id in ids:
        _same(await planned.post(BY_ID, {"id": run_id}), await generic.post(BY_ID, {"id": run_id}))
    # A run of a workspace the token does not name is null, as on the generic path.
    only_b = token(["ws-b"])
    got = await planned.post(BY_ID, {"id": seeded[2]["id"]}, bearer=only_b)
    _same(got, await generic.post(BY_ID, {"id": seeded[2]["id"]}, bearer=only_b))
    assert got.json() == {"data": {"__typename": "Query", "run": None}}
    assert planned.answered == before + len(ids) + 1
    # Over GET too (queries only), and as application/graphql-response+json.
    variables = f'{{"id": "{seeded[3]["id"]}"}}'
    _same(await planned.get(BY_ID, variables), await generic.get(BY_ID, variables))
    assert planned.answered == before + len(ids) + 2


BAD_REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "a variable of the wrong type": (PAGE, {"ws": "ws-a", "first": "ten"}),
    "a missing required variable": (PAGE, {"first": 3}),
    "an unknown status": (PAGE, {"ws": "ws-a", "status": ["SLEEPING"]}),
    "first out of range": (PAGE, {"ws": "ws-a", "first": 0}),
    "a malformed cursor": (PAGE, {"ws": "ws-a", "after": "not-a-cursor"}),
    "another workspace's cursor": (PAGE, {"ws": "ws-b", "after": "$CURSOR"}),
    "a forbidden workspace": (PAGE, {"ws": "ws-z"}),
    "a NUL byte in an id": (BY_ID, {"id": "run_\u0000"}),
    "an oversized id": (BY_ID, {"id": "r" * 70_000}),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
async def test_bad_requests_to_a_planned_document_get_the_generic_paths_errors(
    sides: tuple[Side, Side, list[dict[str, Any]]], name: str
) -> None:
    planned, generic, _ = sides
    query, variables = BAD_REQUESTS[name]
    # The document is planned: a good request first.
    good = {"ws": "ws-a", "first": 2} if query == PAGE else {"id": "run_none"}
    learnt = await planned.post(query, good)
    assert "errors" not in learnt.json()
    assert "errors" not in (await planned.post(query, good)).json()
    if variables.get("after") == "$CURSOR":
        variables = {
            **variables,
            "after": learnt.json()["data"]["workflowRuns"]["edges"][0]["cursor"],
        }
    got, expected = await planned.post(query, variables), await generic.post(query, variables)
    assert got.status_code == expected.status_code
    body = got.json()
    assert body.get("errors"), body
    assert body["errors"][0]["extensions"]["code"]
    assert _without_request_ids(body) == _without_request_ids(expected.json())
    # And the service goes on answering from the plan.
    assert "errors" not in (await planned.post(query, good)).json()


async def test_mutations_and_unplannable_queries_are_never_planned(
    sides: tuple[Side, Side, list[dict[str, Any]]],
) -> None:
    planned, _, seeded = sides
    documents = [
        # children, events, counts: executed by graphql-core every time
        f'{{ workflowRun(id: "{seeded[0]["id"]}") {{ id children {{ totalCount }} }} }}',
        f'{{ workflowRun(id: "{seeded[0]["id"]}") {{ id events {{ status }} }} }}',
        '{ workflowRunStatusCounts(workspaceId: "ws-a") { status count } }',
        # directives depend on variables
        'query($x: Boolean!) { workflowRuns(workspaceId: "ws-a") { nodes { id @skip(if: $x) } } }',
        # a mutation, even one that would succeed twice
        'mutation { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "s", '
        'triggeredBy: USER, idempotencyKey: "k"}) { id } }',
    ]
    for document in documents:
        variables = {"x": False} if "$x" in document else None
        for _ in range(2):
            body = (await planned.post(document, variables)).json()
            assert "errors" not in body, body
    assert planned.answered == 0


async def test_a_plan_picks_the_named_operation_of_a_document(
    sides: tuple[Side, Side, list[dict[str, Any]]],
) -> None:
    planned, generic, seeded = sides
    document = (
        f"{BY_ID}\nquery Count($ws: ID!) {{ workflowRuns(workspaceId: $ws) {{ totalCount }} }}"
    )
    for _ in range(2):
        for name, variables in (("Run", {"id": seeded[0]["id"]}), ("Count", {"ws": "ws-a"})):
            body = {"query": document, "variables": variables, "operationName": name}
            headers = {"Authorization": f"Bearer {token(['ws-a'])}"}
            got = await planned.http.post(planned.url, json=body, headers=headers)
            _same(got, await generic.http.post(generic.url, json=body, headers=headers))
    assert planned.answered == 2
    count = await planned.http.post(
        planned.url,
        json={"query": document, "variables": {"ws": "ws-a"}, "operationName": "Count"},
        headers={"Authorization": f"Bearer {token(['ws-a'])}"},
    )
    assert count.json() == {"data": {"workflowRuns": {"totalCount": 120}}}


async def test_planned_operations_are_counted_in_metrics(
    sides: tuple[Side, Side, list[dict[str, Any]]],
) -> None:
    planned, _, seeded = sides
    for _ in range(3):
        await planned.post(BY_ID, {"id": seeded[0]["id"]})
    assert planned.answered == 2
    metrics = (await planned.http.get(planned.url.replace("/graphql", "/metrics"))).text
    line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("workflow_runs_graphql_operations_total{")
        and 'operation="Run"' in line
        and 'outcome="ok"' in line
    )
    assert line.endswith(" 3.0"), line


async def _planned_page(planned: Side) -> dict[str, Any]:
    """Variables of a page request whose document is now planned (and answered once so)."""
    variables = {"ws": "ws-a", "first": 5}
    for _ in range(2):
        assert "errors" not in (await planned.post(PAGE, variables)).json()
    assert planned.answered == 1
    return variables


async def test_a_planned_operation_past_the_execution_deadline_says_so_as_the_generic_path(
    settings: Settings, database_url: str
) -> None:
    limits = replace(settings.limits, execution_timeout_ms=300)
    async with serving_both(replace(settings, limits=limits)) as (planned, generic):
        variables = await _planned_page(planned)
        async with runs_locked(database_url):
            got = await planned.post(PAGE, variables)
            expected = await generic.post(PAGE, variables)
        assert planned.answered == 1
        assert got.status_code == expected.status_code == 200
        body = got.json()
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert _without_request_ids(body) == _without_request_ids(expected.json())
        # Once the table is free the plan answers again.
        assert "errors" not in (await planned.post(PAGE, variables)).json()
        assert planned.answered == 2


async def test_a_plan_that_gives_up_leaves_the_generic_path_only_what_is_left_of_the_deadline(
    settings: Settings, database_url: str
) -> None:
    # The statement timeout (200 ms) fails the plan; the generic path, run after it, must
    # end within the same 300 ms deadline rather than start a fresh one.
    limits = replace(settings.limits, execution_timeout_ms=300, statement_timeout_ms=200)
    async with serving_both(replace(settings, limits=limits)) as (planned, generic):
        variables = await _planned_page(planned)
        async with runs_locked(database_url):
            got = (await planned.post(PAGE, variables)).json()
            alone = (await generic.post(PAGE, variables)).json()
        plans = planned.app.state.runtime.schema.plans
        assert plans.declined == 1
        assert got["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert "took longer than 300 ms" in got["errors"][0]["message"]
        # Alone, the generic path meets the statement timeout first.
        assert alone["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert "database allows" in alone["errors"][0]["message"]
        metrics = (await planned.http.get(planned.url.replace("/graphql", "/metrics"))).text
        assert "workflow_runs_graphql_planned_total 1.0" in metrics
        assert "workflow_runs_graphql_plan_fallbacks_total 1.0" in metrics


async def test_several_roots_with_counts_and_neighbours_match_the_generic_path(
    sides: tuple[Side, Side, list[dict[str, Any]]],
) -> None:
    planned, generic, seeded = sides
    document = f"""query Several($ws: ID!, $id: ID!, $after: String) {{
      a: workflowRuns(workspaceId: $ws, first: 3, after: $after) {{
        totalCount pageInfo {{ hasNextPage hasPreviousPage endCursor }} nodes {{ id }}
      }}
      b: workflowRuns(workspaceId: "ws-b", last: 2) {{
        pageInfo {{ hasPreviousPage hasNextPage }} totalCount
      }}
      run: workflowRun(id: $id) {{ {RUN_FIELDS} }}
      again: workflowRun(id: $id) {{ id }}
      __typename
    }}"""
    after = None
    for run in seeded[:4]:
        variables = {"ws": "ws-a", "id": run["id"], "after": after}
        got = await planned.post(document, variables)
        _same(got, await generic.post(document, variables))
        after = got.json()["data"]["a"]["pageInfo"]["endCursor"]
    assert planned.answered == 3
