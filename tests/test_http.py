"""GraphQL over HTTP: media types, status codes, methods, CSRF, and the graphql-http audit."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from tests.support import GraphQLClient, token

GRAPHQL_RESPONSE = "application/graphql-response+json"
NODE_DIR = Path(__file__).parent / "node"


async def test_the_graphql_http_audit_passes_every_must_and_should(server: str) -> None:
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "graphql-http").exists():
        pytest.skip("needs Node >= 20 and `npm ci --prefix tests/node` (.ci/run does both)")
    process = await asyncio.create_subprocess_exec(
        "node",
        str(NODE_DIR / "audit.mjs"),
        f"{server}/graphql",
        token(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    results = [json.loads(line) for line in stdout.decode().splitlines()]
    assert len(results) >= 50
    failing = [
        f"{r['status']}: {r['name']} ({r['reason']})" for r in results if r["status"] != "ok"
    ]
    assert failing == []


async def test_a_request_error_is_400_without_data_in_graphql_response_json(
    client: GraphQLClient,
) -> None:
    headers = {**client.headers(client.token), "Accept": GRAPHQL_RESPONSE}
    for query in ("{ workflowRuns(", "{ noSuchField }"):
        response = await client.http.post(client.url, json={"query": query}, headers=headers)
        assert response.status_code == 400
        assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
        body = response.json()
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] in (
            "GRAPHQL_PARSE_FAILED",
            "GRAPHQL_VALIDATION_FAILED",
        )


async def test_legacy_json_clients_get_200_with_data_for_the_same_errors(
    client: GraphQLClient,
) -> None:
    response = await client.post("{ noSuchField }")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["data"] is None


async def test_field_errors_are_200_with_partial_data(client: GraphQLClient) -> None:
    headers = {**client.headers(client.token), "Accept": GRAPHQL_RESPONSE}
    # workflowRun is nullable: its error leaves the rest of the data in place.
    query = (
        '{ ok: workflowRunStatusCounts(workspaceId: "ws-a") { count } '
        'bad: workflowRun(id: "run_\\u0000") { id } }'
    )
    response = await client.http.post(client.url, json={"query": query}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert len(body["data"]["ok"]) == 8
    assert body["data"]["bad"] is None
    assert body["errors"][0]["path"] == ["bad"]
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_mutation_over_get_is_405_and_writes_nothing(client: GraphQLClient) -> None:
    query = (
        'mutation { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "wf", '
        "triggeredBy: USER}) { id } }"
    )
    response = await client.http.get(
        client.url, params={"query": query}, headers=client.headers(client.token)
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    counts = await client.data('{ workflowRuns(workspaceId: "ws-a") { totalCount } }')
    assert counts["workflowRuns"]["totalCount"] == 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "query=%7B__typename%7D"),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="query"\r\n\r\n{__typename}\r\n--x--',
        ),
        ("text/plain", '{"query": "{__typename}"}'),
        ("application/json; charset=latin-1", '{"query": "{__typename}"}'),
    ],
    ids=["form", "multipart", "text-plain", "other-charset"],
)
async def test_cross_site_form_bodies_are_refused_with_415(
    client: GraphQLClient, content_type: str, body: str
) -> None:
    response = await client.http.post(
        client.url,
        content=body.encode(),
        headers={**client.headers(client.token), "Content-Type": content_type},
    )
    assert response.status_code == 415


async def test_an_unacceptable_accept_header_is_406(client: GraphQLClient) -> None:
    response = await client.http.post(
        client.url,
        json={"query": "{ __typename }"},
        headers={**client.headers(client.token), "Accept": "application/xml"},
    )
    assert response.status_code == 406


async def test_batched_operations_are_refused(client: GraphQLClient) -> None:
    response = await client.http.post(
        client.url,
        json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}],
        headers=client.headers(client.token),
    )
    assert response.status_code == 400
    assert "Batched" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_other_methods_are_405(client: GraphQLClient, method: str) -> None:
    response = await client.http.request(method, client.url, headers=client.headers(client.token))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


async def test_malformed_json_bodies_are_400(client: GraphQLClient) -> None:
    for body in (
        b"{not json",
        b'"a string"',
        b'{"query": 42}',
        b'{"query": "{a}", "variables": [1]}',
    ):
        response = await client.http.post(
            client.url,
            content=body,
            headers={**client.headers(client.token), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
