"""Acceptance tests of authentication, scopes and tenancy over HTTP, judged against the contract
(README "Authentication and tenancy" and "Precise readings").

The tests share one database for the module, seeded once (`world`): runs of workspaces ws-a and
ws-b, some created through the API so that they have events. No test changes that data: the
tests that try to write either target the empty workspace ws-c or check that a seeded run did
not change. Servers with other key settings (RS256, ES256, issuer/audience) are started per
test on the same database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from db.pool import create_pool
from server.app import create_app
from server.config import Settings
from tests.factories import seed_runs
from tests.support import SECRET, GraphQLClient, create_run, running, token, with_database

A, B, C = "ws-a", "ws-b", "ws-c"
READ, WRITE = "runs:read", "runs:write"

LIST = """
query List($ws: ID!) { workflowRuns(workspaceId: $ws, first: 500) { totalCount nodes { id } } }
"""
COUNTS = "query Counts($ws: ID!) { workflowRunStatusCounts(workspaceId: $ws) { status count } }"
RUN = "query Run($id: ID!) { workflowRun(id: $id) { id workspaceId status } }"
CREATE = """
mutation Create($ws: ID!, $parent: ID) {
  createWorkflowRun(input: {workspaceId: $ws, subjectId: "wf_auth", triggeredBy: USER,
                            parentRunId: $parent}) { id }
}
"""
START = "mutation Start($id: ID!) { startWorkflowRun(id: $id) { id status } }"
NESTED = """
query Nested($ws: ID!) {
  workflowRuns(workspaceId: $ws, first: 500) {
    nodes {
      id workspaceId
      parent { id workspaceId }
      children(first: 500) { totalCount nodes { id workspaceId } }
      events { runId workspaceId run { id workspaceId } }
    }
  }
}
"""


# --- tokens ---------------------------------------------------------------------------------


def claims(
    workspaces: tuple[str, ...] = (A,), scopes: str = f"{READ} {WRITE}", **extra: Any
) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "user-1",
        "workspaces": list(workspaces),
        "scope": scopes,
        "iat": now,
        "exp": now + 600,
        **extra,
    }


def hs256(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any], alg: str = "none", signature: str = "") -> str:
    """A token crafted by hand: {"alg": alg} header, payload, and the given signature."""
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(payload).encode())
    return f"{header}.{body}.{signature}"


def hmac_signed_with(key: bytes, payload: dict[str, Any]) -> str:
    """An HS256 token whose HMAC key is `key` (crafted by hand: PyJWT refuses PEM keys)."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(payload).encode())
    signature = hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64url(signature)}"


def without(payload: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != name}


def private_pem(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(  # type: ignore[no-any-return]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        .decode()
    )


# --- the shared world ------------------------------------------------------------------------


@dataclass
class World:
    database_url: str
    server: str
    settings: Settings
    # Ids of runs per workspace (seeded and API-created).
    runs: dict[str, set[str]]
    # A PENDING run of each workspace, created through the API (with events).
    pending: dict[str, str]


@pytest.fixture(scope="module")
async def world(
    admin_dsn: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    name = f"wr_auth_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        database_url = with_database(admin_dsn, name)
        pool = await create_pool(database_url, min_size=1, max_size=2)
        try:
            seeded = {
                ws: await seed_runs(pool, ws, 40, rng=random.Random(n), child_ratio=0.5)
                for n, ws in enumerate((A, B))
            }
        finally:
            await pool.close()
        settings = replace(
            Settings.from_env({}),
            database_url=database_url,
            jwt_secret=SECRET,
            data_dir=tmp_path_factory.mktemp("auth"),
            pool_min_size=1,
        )
        async with running(create_app(settings)) as server:
            client = GraphQLClient(server, token([A, B]))
            runs = {ws: {r["id"] for r in seeded[ws]} for ws in (A, B)}
            pending = {}
            for ws in (A, B):
                parent = await create_run(client, ws)
                await client.data(START, {"id": parent["id"]})
                child = await create_run(client, ws, parentRunId=parent["id"])
                runs[ws] |= {parent["id"], child["id"]}
                pending[ws] = child["id"]
            await client.aclose()
            yield World(database_url, server, settings, runs, pending)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def http(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=world.server, timeout=30) as client:
        yield client


@pytest.fixture
async def as_a(world: World) -> AsyncIterator[GraphQLClient]:
    """A client whose token reads and writes workspace ws-a (and ws-c) only."""
    client = GraphQLClient(world.server, token([A, C]))
    yield client
    await client.aclose()


async def post(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    authorization: str | None = None,
) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


def assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert not body.get("data")
    assert SECRET not in response.text


def only_code(body: dict[str, Any]) -> str:
    assert body.get("errors"), body
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert len(codes) == 1, body
    return codes.pop()


async def stored(world: World, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(world.database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


# --- missing or invalid tokens: 401 -----------------------------------------------------------

BAD_AUTHORIZATION: dict[str, Any] = {
    "missing_header": lambda: None,
    "empty_header": lambda: "",
    "other_scheme": lambda: "Token " + hs256(claims()),
    "basic_scheme": lambda: "Basic dXNlcjpwYXNzd29yZA==",
    "bearer_alone": lambda: "Bearer",
    "bearer_and_dot": lambda: "Bearer .",
    "token_without_scheme": lambda: hs256(claims()),
    "garbage_token": lambda: "Bearer garbage",
    "three_garbage_parts": lambda: "Bearer aaa.bbb.ccc",
    "truncated_signature": lambda: "Bearer " + hs256(claims())[:-6],
    "expired": lambda: "Bearer " + hs256(claims(exp=int(time.time()) - 30)),
    "another_secret": lambda: "Bearer " + hs256(claims(), "another-secret-0123456789abcdef01234"),
    "alg_none": lambda: "Bearer " + unsigned(claims()),
    "alg_none_capitalised": lambda: "Bearer " + unsigned(claims(), "None"),
    "alg_none_upper": lambda: "Bearer " + unsigned(claims(), "NONE"),
    "alg_none_with_signature": lambda: "Bearer " + unsigned(claims(), signature="c2ln"),
    "alg_missing": lambda: "Bearer " + unsigned(claims(), ""),
    "hs512_with_the_secret": lambda: "Bearer " + jwt.encode(claims(), SECRET, algorithm="HS512"),
    "without_exp": lambda: "Bearer " + hs256(without(claims(), "exp")),
    "exp_not_a_number": lambda: "Bearer " + hs256(claims(exp="tomorrow")),
    "without_sub": lambda: "Bearer " + hs256(without(claims(), "sub")),
    "empty_sub": lambda: "Bearer " + hs256(claims(sub="")),
    "not_yet_valid": lambda: "Bearer " + hs256(claims(nbf=int(time.time()) + 600)),
    "payload_tampered": lambda: "Bearer " + tampered(hs256(claims())),
}


def tampered(valid: str) -> str:
    """A valid token whose payload was swapped for one granting more workspaces."""
    header, _, signature = valid.split(".")
    payload = b64url(json.dumps(claims((A, B, C))).encode())
    return f"{header}.{payload}.{signature}"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("case", list(BAD_AUTHORIZATION))
async def test_query_without_a_valid_token_is_401_unauthenticated(
    http: httpx.AsyncClient, case: str
) -> None:
    response = await post(http, LIST, {"ws": A}, BAD_AUTHORIZATION[case]())
    assert_unauthenticated(response)


@pytest.mark.parametrize("case", ["missing_header", "expired", "alg_none", "without_sub"])
async def test_mutation_without_a_valid_token_is_401_and_writes_nothing(
    http: httpx.AsyncClient, world: World, case: str
) -> None:
    response = await post(http, CREATE, {"ws": C}, BAD_AUTHORIZATION[case]())
    assert_unauthenticated(response)
    assert await stored(world, "SELECT count(*) FROM workflow_runs WHERE workspace_id = $1", C) == 0


async def test_get_query_without_a_token_is_401(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/graphql",
        params={"query": '{ workflowRunStatusCounts(workspaceId: "ws-a") { count } }'},
        headers={"Accept": "application/json"},
    )
    assert_unauthenticated(response)


async def test_a_valid_token_is_accepted(http: httpx.AsyncClient, world: World) -> None:
    response = await post(http, LIST, {"ws": A}, "Bearer " + hs256(claims()))
    assert response.status_code == 200
    assert response.json()["data"]["workflowRuns"]["totalCount"] == len(world.runs[A])


async def test_the_bearer_scheme_is_case_insensitive(http: httpx.AsyncClient) -> None:
    response = await post(http, LIST, {"ws": A}, "bearer " + hs256(claims()))
    assert response.status_code == 200
    assert "errors" not in response.json()


# --- tenancy ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [LIST, COUNTS], ids=["workflowRuns", "workflowRunStatusCounts"])
@pytest.mark.parametrize("workspace", [B, "WS-A", "ws-a ", "ws-"])
async def test_lists_of_a_workspace_outside_the_token_are_forbidden(
    as_a: GraphQLClient, world: World, query: str, workspace: str
) -> None:
    body = await as_a.execute(query, {"ws": workspace})
    assert only_code(body) == "FORBIDDEN"
    assert body.get("data") is None
    assert not any(run_id in json.dumps(body) for run_id in world.runs[B])


@pytest.mark.parametrize("workspaces", [(), None], ids=["empty_list", "no_claim"])
async def test_a_token_without_workspaces_may_list_none(
    http: httpx.AsyncClient, workspaces: tuple[str, ...] | None
) -> None:
    payload = claims(workspaces or ())
    if workspaces is None:
        payload = without(payload, "workspaces")
    response = await post(http, LIST, {"ws": A}, "Bearer " + hs256(payload))
    assert response.status_code == 200
    assert only_code(response.json()) == "FORBIDDEN"


async def test_a_run_of_another_workspace_reads_as_null(as_a: GraphQLClient, world: World) -> None:
    for run_id in sorted(world.runs[B])[:10]:
        body = await as_a.execute(RUN, {"id": run_id})
        assert body == {"data": {"workflowRun": None}}


async def test_a_run_of_the_tokens_workspace_reads_normally(
    as_a: GraphQLClient, world: World
) -> None:
    run_id = sorted(world.runs[A])[0]
    data = await as_a.data(RUN, {"id": run_id})
    assert data["workflowRun"]["id"] == run_id
    assert data["workflowRun"]["workspaceId"] == A


async def test_nested_fields_never_reach_another_workspace(
    as_a: GraphQLClient, world: World
) -> None:
    data = await as_a.data(NESTED, {"ws": A})
    text = json.dumps(data)
    assert not any(run_id in text for run_id in world.runs[B])
    assert B not in text
    nodes = data["workflowRuns"]["nodes"]
    assert {n["id"] for n in nodes} == world.runs[A]
    assert any(n["events"] for n in nodes)
    assert any(n["children"]["nodes"] for n in nodes)


async def test_filtering_by_a_foreign_parent_finds_nothing(
    as_a: GraphQLClient, world: World
) -> None:
    query = """
    query Children($ws: ID!, $parent: ID!) {
      workflowRuns(workspaceId: $ws, filter: {parentRunId: $parent}) { totalCount nodes { id } }
    }
    """
    foreign_parent = await stored(
        world,
        "SELECT parent_run_id FROM workflow_runs WHERE workspace_id = $1 "
        "AND parent_run_id IS NOT NULL LIMIT 1",
        B,
    )
    data = await as_a.data(query, {"ws": A, "parent": foreign_parent})
    assert data["workflowRuns"] == {"totalCount": 0, "nodes": []}


async def test_a_transition_of_another_workspaces_run_is_not_found(
    as_a: GraphQLClient, world: World
) -> None:
    run_id = world.pending[B]
    body = await as_a.execute(START, {"id": run_id})
    assert only_code(body) == "NOT_FOUND"
    status = await stored(world, "SELECT status FROM workflow_runs WHERE id = $1", run_id)
    assert status == "pending"


FOREIGN_TRANSITIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # name: (mutation, B status for which it would be allowed, B status for which it would not)
    "start": ("startWorkflowRun(id: $id)", "pending", "completed"),
    "mark_waiting": ("markWorkflowRunWaiting(id: $id)", "running", "failed"),
    "pause": ("pauseWorkflowRun(id: $id)", "running", "cancelled"),
    "resume": ("resumeWorkflowRun(id: $id)", "paused", "pending"),
    "complete": ("completeWorkflowRun(id: $id, output: {x: 1})", "waiting", "paused"),
    "fail": ('failWorkflowRun(id: $id, error: "boom")', "pending", "timed_out"),
    "cancel": ('cancelWorkflowRun(id: $id, reason: "stop")', "running", "completed"),
    "time_out": ("timeOutWorkflowRun(id: $id)", "waiting", "failed"),
    "retry": ("retryWorkflowRun(id: $id)", "failed", "running"),
}


@pytest.mark.parametrize("allowed", [True, False], ids=["allowed_status", "refused_status"])
@pytest.mark.parametrize("name", list(FOREIGN_TRANSITIONS))
async def test_mutating_another_workspaces_run_is_not_found_and_changes_nothing(
    as_a: GraphQLClient, world: World, name: str, allowed: bool
) -> None:
    mutation, allowed_status, refused_status = FOREIGN_TRANSITIONS[name]
    status = allowed_status if allowed else refused_status
    run_id = await stored(
        world,
        "SELECT id FROM workflow_runs WHERE workspace_id = $1 AND status = $2 ORDER BY id LIMIT 1",
        B,
        status,
    )
    assert run_id is not None, f"the seed has no {status} run in {B}"
    state = (
        "SELECT status || updated_at::text FROM workflow_runs WHERE workspace_id = $1 AND id = $2"
    )
    runs_of_b = "SELECT count(*) FROM workflow_runs WHERE workspace_id = $1"
    before = (await stored(world, state, B, run_id), await stored(world, runs_of_b, B))
    body = await as_a.execute(
        f"mutation M($id: ID!) {{ {mutation} {{ id status }} }}", {"id": run_id}
    )
    assert only_code(body) == "NOT_FOUND"
    assert status.upper() not in json.dumps(body["errors"])
    after = (await stored(world, state, B, run_id), await stored(world, runs_of_b, B))
    assert after == before


async def test_creating_in_another_workspace_is_forbidden_and_writes_nothing(
    as_a: GraphQLClient, world: World
) -> None:
    before = await stored(world, "SELECT count(*) FROM workflow_runs WHERE workspace_id = $1", B)
    body = await as_a.execute(CREATE, {"ws": B})
    assert only_code(body) == "FORBIDDEN"
    after = await stored(world, "SELECT count(*) FROM workflow_runs WHERE workspace_id = $1", B)
    assert after == before


async def test_a_foreign_parent_at_create_is_bad_user_input(
    as_a: GraphQLClient, world: World
) -> None:
    body = await as_a.execute(CREATE, {"ws": C, "parent": world.pending[B]})
    assert only_code(body) == "BAD_USER_INPUT"
    assert await stored(world, "SELECT count(*) FROM workflow_runs WHERE workspace_id = $1", C) == 0


# --- scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "variables"),
    [(LIST, {"ws": A}), (COUNTS, {"ws": A}), (RUN, {"id": "run_x"})],
    ids=["workflowRuns", "workflowRunStatusCounts", "workflowRun"],
)
@pytest.mark.parametrize("scopes", [WRITE, "", "runs:admin"], ids=["write_only", "none", "other"])
async def test_queries_need_the_read_scope(
    http: httpx.AsyncClient, world: World, query: str, variables: dict[str, Any], scopes: str
) -> None:
    variables = dict(variables)
    if "id" in variables:
        variables["id"] = sorted(world.runs[A])[0]
    response = await post(http, query, variables, "Bearer " + hs256(claims(scopes=scopes)))
    assert response.status_code == 200
    body = response.json()
    assert only_code(body) == "FORBIDDEN"
    assert not any(run_id in response.text for run_id in world.runs[A])


async def test_a_token_without_a_scope_claim_can_do_nothing(
    http: httpx.AsyncClient, world: World
) -> None:
    bearer = "Bearer " + hs256(without(claims(), "scope"))
    assert only_code((await post(http, LIST, {"ws": A}, bearer)).json()) == "FORBIDDEN"
    assert only_code((await post(http, CREATE, {"ws": C}, bearer)).json()) == "FORBIDDEN"


async def test_the_read_scope_among_others_is_enough_to_query(
    http: httpx.AsyncClient, world: World
) -> None:
    bearer = "Bearer " + hs256(claims(scopes=f"openid {READ} profile"))
    response = await post(http, LIST, {"ws": A}, bearer)
    assert response.json()["data"]["workflowRuns"]["totalCount"] == len(world.runs[A])


async def test_a_read_only_token_cannot_create_and_nothing_is_written(
    http: httpx.AsyncClient, world: World
) -> None:
    bearer = "Bearer " + hs256(claims((A, C), scopes=READ))
    response = await post(http, CREATE, {"ws": C}, bearer)
    assert response.status_code == 200
    assert only_code(response.json()) == "FORBIDDEN"
    assert await stored(world, "SELECT count(*) FROM workflow_runs WHERE workspace_id = $1", C) == 0
    events = "SELECT count(*) FROM workflow_run_events WHERE workspace_id = $1"
    assert await stored(world, events, C) == 0


async def test_a_read_only_token_cannot_move_a_run(http: httpx.AsyncClient, world: World) -> None:
    run_id = world.pending[A]
    events = "SELECT count(*) FROM workflow_run_events WHERE run_id = $1"
    before = await stored(world, events, run_id)
    bearer = "Bearer " + hs256(claims((A,), scopes=READ))
    response = await post(http, START, {"id": run_id}, bearer)
    assert only_code(response.json()) == "FORBIDDEN"
    assert (
        await stored(world, "SELECT status FROM workflow_runs WHERE id = $1", run_id) == "pending"
    )
    assert await stored(world, events, run_id) == before


# --- RS256 / ES256 --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


KEYS = {"RS256": "rsa_key", "ES256": "ec_key"}


async def query_with(server: str, bearer: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        return await post(http, LIST, {"ws": A}, bearer)


@pytest.mark.parametrize("alg", list(KEYS))
async def test_tokens_signed_with_the_private_key_are_accepted(
    world: World, request: pytest.FixtureRequest, alg: str
) -> None:
    key = request.getfixturevalue(KEYS[alg])
    settings = replace(world.settings, jwt_secret=None, jwt_public_key=public_pem(key))
    async with running(create_app(settings)) as server:
        response = await query_with(server, "Bearer " + jwt.encode(claims(), key, algorithm=alg))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["workflowRuns"]["totalCount"] == len(world.runs[A])


@pytest.mark.parametrize("alg", list(KEYS))
async def test_hs256_signed_with_the_public_key_is_refused(
    world: World, request: pytest.FixtureRequest, alg: str
) -> None:
    key = request.getfixturevalue(KEYS[alg])
    pem = public_pem(key)
    settings = replace(world.settings, jwt_secret=None, jwt_public_key=pem)
    async with running(create_app(settings)) as server:
        response = await query_with(server, "Bearer " + hmac_signed_with(pem.encode(), claims()))
    assert_unauthenticated(response)


@pytest.mark.parametrize("alg", list(KEYS))
async def test_public_key_servers_refuse_other_tokens(
    world: World, request: pytest.FixtureRequest, alg: str
) -> None:
    key = request.getfixturevalue(KEYS[alg])
    stranger = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    other_family = ec.generate_private_key(ec.SECP256R1()) if alg == "RS256" else None
    refused = {
        "hs256_with_the_old_secret": hs256(claims()),
        "signed_by_another_key": jwt.encode(claims(), stranger, algorithm=alg),
        "expired": jwt.encode(claims(exp=int(time.time()) - 30), key, algorithm=alg),
        "without_exp": jwt.encode(without(claims(), "exp"), key, algorithm=alg),
        "alg_none": unsigned(claims()),
        "other_algorithm_family": (
            jwt.encode(claims(), other_family, algorithm="ES256")
            if other_family is not None
            else jwt.encode(
                claims(),
                rsa.generate_private_key(public_exponent=65537, key_size=2048),
                algorithm="RS256",
            )
        ),
    }
    settings = replace(world.settings, jwt_secret=None, jwt_public_key=public_pem(key))
    async with running(create_app(settings)) as server:
        for name, bad in refused.items():
            response = await query_with(server, "Bearer " + bad)
            assert response.status_code == 401, (name, response.text)
            assert_unauthenticated(response)


# --- issuer and audience ----------------------------------------------------------------------

ISSUER = "https://auth.example.com/"
AUDIENCE = "workflow-runs-api"

ISSUER_AUDIENCE_CASES: dict[str, tuple[dict[str, Any], bool]] = {
    # name: (claims to add or drop (None = drop), accepted)
    "matching": ({"iss": ISSUER, "aud": AUDIENCE}, True),
    "audience_in_a_list": ({"iss": ISSUER, "aud": ["other-api", AUDIENCE]}, True),
    "wrong_issuer": ({"iss": "https://evil.example.com/", "aud": AUDIENCE}, False),
    "missing_issuer": ({"aud": AUDIENCE}, False),
    "wrong_audience": ({"iss": ISSUER, "aud": "another-api"}, False),
    "missing_audience": ({"iss": ISSUER}, False),
    "audience_list_without_ours": ({"iss": ISSUER, "aud": ["a", "b"]}, False),
    "both_missing": ({}, False),
}


@pytest.mark.parametrize("case", list(ISSUER_AUDIENCE_CASES))
async def test_issuer_and_audience_are_checked_when_configured(world: World, case: str) -> None:
    extra, accepted = ISSUER_AUDIENCE_CASES[case]
    settings = replace(world.settings, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    async with running(create_app(settings)) as server:
        response = await query_with(server, "Bearer " + hs256(claims(**extra)))
    if accepted:
        assert response.status_code == 200, response.text
        assert "errors" not in response.json()
    else:
        assert_unauthenticated(response)


async def test_issuer_and_audience_are_ignored_when_not_configured(
    http: httpx.AsyncClient,
) -> None:
    bearer = "Bearer " + hs256(claims(iss="https://anyone.example/", aud="anything"))
    response = await post(http, LIST, {"ws": A}, bearer)
    assert response.status_code == 200
    assert "errors" not in response.json()


async def test_a_verified_token_is_refused_once_it_expires_though_it_was_cached() -> None:
    from server.auth import AuthError, TokenVerifier
    from tests.support import wait_for

    verifier = TokenVerifier(secret=SECRET)
    short_lived = hs256(claims(exp=int(time.time()) + 2))
    first = verifier.verify(short_lived)
    assert verifier.verify(short_lived) == first  # served from the cache

    reasons: list[str] = []

    def refused() -> bool:
        try:
            verifier.verify(short_lived)
        except AuthError as exc:
            reasons.append(str(exc))
            return True
        return False

    await wait_for(refused, within=5, what="the cached token to expire")
    assert "expired" in reasons[-1].lower()
    # A forged variant of a cached token is still checked in full.
    head, body, signature = short_lived.split(".")
    with pytest.raises(AuthError):
        verifier.verify(f"{head}.{body}.{signature[:-2]}AA")
