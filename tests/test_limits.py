"""Each query limit at its edge: the limit itself is served, one more is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from server.app import create_app
from server.config import Settings
from tests.support import GraphQLClient, running, runs_locked, token


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[GraphQLClient]:
    async with running(create_app(settings)) as server:
        client = GraphQLClient(server, token())
        try:
            yield client
        finally:
            await client.aclose()


def _nested(parents: int) -> str:
    return '{ workflowRun(id: "x") { ' + "parent { " * parents + "id" + " }" * parents + " } }"


def _code(body: dict[str, object]) -> object:
    errors = body.get("errors")
    assert isinstance(errors, list) and errors, body
    return errors[0]["extensions"]["code"]


async def test_query_depth_is_limited_at_its_edge(client: GraphQLClient) -> None:
    # workflowRun is depth 1, each parent one more: 11 parents put `id` at depth 12.
    assert "errors" not in await client.execute(_nested(10))
    assert "errors" not in await client.execute(_nested(11))
    assert _code(await client.execute(_nested(12))) == "QUERY_TOO_COMPLEX"


async def test_aliases_are_limited_at_their_edge(client: GraphQLClient) -> None:
    def aliased(count: int) -> str:
        return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"

    assert "errors" not in await client.execute(aliased(30))
    assert _code(await client.execute(aliased(31))) == "QUERY_TOO_COMPLEX"


async def test_tokens_are_limited_at_their_edge(client: GraphQLClient) -> None:
    # A long status list: 15 tokens around it, one per value (commas are not tokens).
    def tokens(count: int) -> str:
        statuses = " ".join(["PENDING"] * (count - 15))
        return f'{{ workflowRuns(workspaceId: "ws-a", status: [{statuses}]) {{ totalCount }} }}'

    assert "errors" not in await client.execute(tokens(5_000))
    assert _code(await client.execute(tokens(5_001))) == "QUERY_TOO_COMPLEX"


async def test_circular_introspection_is_refused(client: GraphQLClient) -> None:
    # The depth limiter skips `__` fields; graphql-core bounds introspection depth itself.
    for levels in (3, 400):
        circular = (
            "{ __schema { types { "
            + "fields { type { " * levels
            + "name"
            + " } }" * levels
            + " } } }"
        )
        assert _code(await client.execute(circular)) == "QUERY_TOO_COMPLEX"
    # GraphiQL's own introspection query is served.
    from graphql import get_introspection_query

    assert "errors" not in await client.execute(get_introspection_query())


async def test_duplicated_fields_are_refused_before_costly_validation(
    client: GraphQLClient,
) -> None:
    def repeated(count: int) -> str:
        return "{ " + " ".join(['workflowRun(id: "x") { id }'] * count) + " }"

    assert "errors" not in await client.execute(repeated(5))
    assert _code(await client.execute(repeated(6))) == "QUERY_TOO_COMPLEX"
    assert _code(await client.execute(repeated(600))) == "QUERY_TOO_COMPLEX"
    assert _code(await client.execute("{ " + "__typename " * 4_000 + "}")) == "QUERY_TOO_COMPLEX"


async def test_the_number_of_fields_is_limited_at_its_edge(client: GraphQLClient) -> None:
    # Each alias selects 1 + 1 + 23 fields: workflowRuns, nodes and 23 distinct run fields.
    leaves = (
        "id workspaceId subjectId parentRunId status mode input output error triggeredBy "
        "cfWorkflowId durationMs userId startedAt completedAt createdAt updatedAt "
        "parent { id status } events { status cursor }"
    )

    def fields(aliases: int) -> str:
        each = f'workflowRuns(workspaceId: "ws-a") {{ nodes {{ {leaves} }} }}'
        return "{ " + " ".join(f"a{i}: {each}" for i in range(aliases)) + " }"

    assert "errors" not in await client.execute(fields(20))  # 500 fields
    assert _code(await client.execute(fields(21))) == "QUERY_TOO_COMPLEX"


async def test_introspection_and_field_suggestions_can_be_switched_off(
    settings: Settings,
) -> None:
    async with serving(replace(settings, introspection=False)) as closed:
        refused = await closed.execute("{ __schema { queryType { name } } }")
        assert _code(refused) == "GRAPHQL_VALIDATION_FAILED"
        typo = await closed.execute('{ workflowRunz(workspaceId: "ws-a") { totalCount } }')
        assert "Did you mean" not in str(typo)
        # The API itself still answers.
        assert "errors" not in await closed.execute('{ workflowRun(id: "x") { id } }')
    async with serving(settings) as open_:
        typo = await open_.execute('{ workflowRunz(workspaceId: "ws-a") { totalCount } }')
        assert "Did you mean" in str(typo)
        assert "errors" not in await open_.execute("{ __schema { queryType { name } } }")


@pytest.mark.parametrize("limit", ["execution", "statement"])
async def test_slow_operations_are_cut_off_with_query_too_complex(
    settings: Settings, database_url: str, limit: str
) -> None:
    limits = replace(
        settings.limits,
        execution_timeout_ms=300 if limit == "execution" else 60_000,
        statement_timeout_ms=300 if limit == "statement" else 60_000,
    )
    configured = replace(settings, limits=limits)
    async with serving(configured) as client, runs_locked(database_url):
        body = await client.execute('{ workflowRuns(workspaceId: "ws-a") { totalCount } }')
    assert _code(body) == "QUERY_TOO_COMPLEX"
    assert "took longer" in str(body)
