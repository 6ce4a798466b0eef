"""The process endpoints: liveness, readiness, and /graphql's HTTP behaviour."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette

from tests.support import GraphQLClient, running, token


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


async def test_other_endpoints_carry_a_request_id_too(client: GraphQLClient) -> None:
    response = await client.http.get(f"{client.base_url}/healthz", headers={"X-Request-ID": "h-1"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "h-1"
    generated = await client.http.get(f"{client.base_url}/healthz")
    assert len(generated.headers["x-request-id"]) == 32


async def test_a_chunked_body_is_counted_as_it_arrives(client: GraphQLClient) -> None:
    # No Content-Length: the limit is applied to the bytes as they come.
    async def chunks(body: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    headers = {
        **client.headers(client.token),
        "Content-Type": "application/json",
        "X-Request-ID": "chunky",
    }
    small = b'{"query": "{ __typename }"}'
    answered = await client.http.post(client.url, content=chunks(small), headers=headers)
    assert answered.status_code == 200
    assert answered.json() == {"data": {"__typename": "Query"}}
    big = b'{"query": "{ __typename }", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    refused = await client.http.post(client.url, content=chunks(big), headers=headers)
    assert refused.status_code == 413
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert refused.headers["x-request-id"] == "chunky"
    # The server goes on serving.
    assert (await client.data("{ __typename }")) == {"__typename": "Query"}


async def test_a_chunked_body_declaring_a_small_length_too_is_still_counted(
    app: Starlette,
) -> None:
    # h11 (`uvicorn --http h11`) reads a body with both headers as chunked, whatever
    # Content-Length says; the limit must not trust the declared length then.
    async with running(app, http="h11") as server:
        parts = urlsplit(server)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        head = (
            "POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token()}\r\nX-Request-ID: te-cl\r\n"
            "Transfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n"
        )
        chunk = b"x" * (64 * 1024)
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode())
            for _ in range(20):  # 1.25 MiB, over the 1 MiB limit
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        head_back = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        writer.close()
        status_line, _, rest = head_back.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 413 "), head_back
        assert b"x-request-id: te-cl" in rest.lower()
        async with httpx.AsyncClient() as http:
            still = await http.get(f"{server}/healthz")
        assert still.status_code == 200


async def test_graphql_with_a_trailing_slash_is_redirected(client: GraphQLClient) -> None:
    # /graphql itself is served before routing (server/middleware.py); its route stays for this.
    response = await client.http.post(f"{client.url}/", json={"query": "{ __typename }"})
    assert response.status_code == 307
    assert response.headers["location"].endswith("/graphql")
    assert response.headers["x-request-id"]


async def test_a_body_over_the_limit_is_refused_with_413(client: GraphQLClient) -> None:
    big = "x" * (1024 * 1024 + 1)
    response = await client.http.post(
        client.url,
        content=b'{"query": "{ __typename }", "pad": "' + big.encode() + b'"}',
        headers={**client.headers(client.token), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
