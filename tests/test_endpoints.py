"""The process endpoints: liveness, readiness, and /graphql's HTTP behaviour."""

from __future__ import annotations

import httpx

from tests.support import GraphQLClient


async def test_healthz_answers_without_a_token(server: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{server}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_a_migrated_reachable_database(server: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{server}/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_graphiql_is_served_to_a_browser_without_a_token(server: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{server}/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_queries_work_over_get(client: GraphQLClient) -> None:
    response = await client.http.get(
        client.url,
        params={"query": '{ workflowRunStatusCounts(workspaceId: "ws-a") { status count } }'},
        headers=client.headers(client.token),
    )
    assert response.status_code == 200
    assert len(response.json()["data"]["workflowRunStatusCounts"]) == 8


async def test_mutations_are_refused_over_get(client: GraphQLClient) -> None:
    query = (
        'mutation { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "wf", '
        "triggeredBy: USER}) { id } }"
    )
    response = await client.http.get(
        client.url, params={"query": query}, headers=client.headers(client.token)
    )
    assert response.status_code in (400, 405)
    counts = await client.data('{ workflowRuns(workspaceId: "ws-a") { totalCount } }')
    assert counts["workflowRuns"]["totalCount"] == 0


async def test_every_response_carries_a_request_id(client: GraphQLClient) -> None:
    response = await client.post("{ __typename }")
    assert response.headers["x-request-id"]
    echoed = await client.http.post(
        client.url,
        json={"query": "{ __typename }"},
        headers={**client.headers(client.token), "X-Request-ID": "abc-123"},
    )
    assert echoed.headers["x-request-id"] == "abc-123"


async def test_a_body_over_the_limit_is_refused_with_413(client: GraphQLClient) -> None:
    big = "x" * (1024 * 1024 + 1)
    response = await client.http.post(
        client.url,
        content=b'{"query": "{ __typename }", "pad": "' + big.encode() + b'"}',
        headers={**client.headers(client.token), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
