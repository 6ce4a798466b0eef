"""The probes a GraphQL security scanner (graphql-cop and the like) makes, each against the
production settings (introspection and field suggestions off), each refused precisely and
writing nothing.

Every probe runs on a real uvicorn with its own per-test database; "nothing was written" is
checked in the database itself (runs and events counted by the owner, past row-level security).
Timings of the CPU-heavy probes are measured and printed (`pytest -s` shows them); they are
asserted to answer, not held to a threshold, except where the refusal itself is the point.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest

from server.app import create_app
from server.config import Settings
from tests.support import GraphQLClient, running, token

GRAPHQL_RESPONSE = "application/graphql-response+json"
CREATE = (
    'createWorkflowRun(input: {{workspaceId: "ws-a", subjectId: "{subject}", triggeredBy: USER}})'
)
ERROR_EXTENSION_KEYS = {"code", "currentStatus", "targetStatus", "requestId", "retryable"}
# What must never reach a client: stack traces, source paths, SQL, the driver's own wording.
INTERNALS = re.compile(
    r"Traceback|most recent call last|File \"|\.py\b|site-packages|/work/|/usr/"
    r"|\b(?:SELECT|INSERT|UPDATE|DELETE|FROM|WHERE|RETURNING)\b|\$\d+|workflow_run|jsonb"
    r"|asyncpg|postgres|relation \"|query argument|datetime\.datetime|<class '| object at 0x"
    r"|\b[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*\.[A-Z]\w*(?:Error|Exception)\b"
)


def create(subject: str = "wf", *, selection: str = " { id }") -> str:
    """A createWorkflowRun field in ws-a (the `selection` is left to the caller if empty)."""
    return CREATE.format(subject=subject) + selection


@pytest.fixture
async def production(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A client of the service under the production settings: introspection off."""
    async with running(create_app(replace(settings, introspection=False))) as base_url:
        client = GraphQLClient(base_url, token(["ws-a"]))
        yield client
        await client.aclose()


async def _rows(pool: asyncpg.Pool) -> tuple[int, int]:
    async with pool.acquire() as conn:
        runs = await conn.fetchval("SELECT count(*) FROM workflow_runs")
        events = await conn.fetchval("SELECT count(*) FROM workflow_run_events")
    return runs, events


@asynccontextmanager
async def writes_nothing(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Asserts that no run and no event was written inside the block."""
    before = await _rows(pool)
    yield
    assert await _rows(pool) == before, "the probe wrote to the database"


async def _post(
    client: GraphQLClient, body: Any, *, accept: str | None = None, **headers: str
) -> httpx.Response:
    sent = {**client.headers(client.token), **headers}
    if accept is not None:
        sent["Accept"] = accept
    return await client.http.post(client.url, json=body, headers=sent)


def _only_code(response: httpx.Response) -> str:
    """The code of a response whose errors all share one; asserts it carries no data."""
    body = response.json()
    assert body.get("data") is None, body
    codes = {error["extensions"]["code"] for error in body["errors"]}
    assert len(codes) == 1, body
    return codes.pop()


async def _timed(client: GraphQLClient, query: str, **extra: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await _post(client, {"query": query, **extra})
    return response, time.perf_counter() - started


# --- alias overload -------------------------------------------------------------------------------


async def test_alias_overload_is_refused_and_writes_nothing(
    production: GraphQLClient, pool: asyncpg.Pool
) -> None:
    aliased_typename = "{ " + " ".join(f"a{i}: __typename" for i in range(1_000)) + " }"
    aliased_lists = (
        "{ "
        + " ".join(f'a{i}: workflowRuns(workspaceId: "ws-a") {{ totalCount }}' for i in range(31))
        + " }"
    )
    aliased_creates = "mutation { " + " ".join(f"a{i}: {create()}" for i in range(100)) + " }"
    # Aliases hidden in fragments count too.
    in_fragments = (
        "{ ...A ...B } "
        "fragment A on Query { " + " ".join(f"a{i}: __typename" for i in range(20)) + " } "
        "fragment B on Query { " + " ".join(f"b{i}: __typename" for i in range(20)) + " }"
    )
    async with writes_nothing(pool):
        for document in (aliased_typename, aliased_lists, aliased_creates, in_fragments):
            response = await _post(production, {"query": document})
            assert response.status_code == 200
            assert _only_code(response) == "QUERY_TOO_COMPLEX", document[:80]
            strict = await _post(production, {"query": document}, accept=GRAPHQL_RESPONSE)
            assert strict.status_code == 400
            assert "data" not in strict.json()
            assert strict.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


# --- batching -------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 50])
async def test_a_json_array_batch_is_refused_and_writes_nothing(
    production: GraphQLClient, pool: asyncpg.Pool, count: int
) -> None:
    batch = [{"query": f"mutation {{ {create(f'wf-{i}')} }}"} for i in range(count)]
    async with writes_nothing(pool):
        response = await _post(production, batch)
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Batched operations are not supported" in body["errors"][0]["message"]


async def test_many_operations_in_one_document_run_only_the_named_one(
    production: GraphQLClient, pool: asyncpg.Pool
) -> None:
    document = " ".join(f"mutation m{i} {{ {create(f'wf-{i}')} }}" for i in range(20))
    response = await _post(production, {"query": document, "operationName": "m7"})
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body
    assert list(body["data"]) == ["createWorkflowRun"]
    async with pool.acquire() as conn:
        subjects = [
            r["subject_id"] for r in await conn.fetch("SELECT subject_id FROM workflow_runs")
        ]
    assert subjects == ["wf-7"]
    async with writes_nothing(pool):
        unknown = await _post(production, {"query": document, "operationName": "m99"})
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_many_operations_without_an_operation_name_are_refused(
    production: GraphQLClient, pool: asyncpg.Pool
) -> None:
    document = " ".join(f"mutation m{i} {{ {create(f'wf-{i}')} }}" for i in range(20))
    async with writes_nothing(pool):
        response = await _post(production, {"query": document})
    body = response.json()
    assert body.get("data") is None, body
    assert body["errors"][0]["extensions"]["code"] in (
        "BAD_USER_INPUT",
        "GRAPHQL_VALIDATION_FAILED",
    )


# --- introspection --------------------------------------------------------------------------------


def _circular(levels: int, root: str = "__schema { types { ", close: str = " } }") -> str:
    return "{ " + root + "fields { type { " * levels + "name" + " } }" * levels + close + " }"


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        (1, {"GRAPHQL_VALIDATION_FAILED"}),
        # Past graphql-core's introspection depth, that is refused as well.
        (3, {"GRAPHQL_VALIDATION_FAILED", "QUERY_TOO_COMPLEX"}),
        # Nested too deeply to parse: refused before validation.
        (400, {"QUERY_TOO_COMPLEX"}),
    ],
)
async def test_circular_introspection_is_refused_in_production(
    production: GraphQLClient, pool: asyncpg.Pool, levels: int, expected: set[str]
) -> None:
    circular = [
        _circular(levels),
        _circular(levels, '__type(name: "WorkflowRun") { ', " }"),
        # Hidden under an alias, or in a fragment.
        _circular(levels, "s: __schema { types { "),
        "{ ...F } fragment F on Query { " + _circular(levels)[2:-2] + " }",
    ]
    async with writes_nothing(pool):
        for document in [*circular, "{ __schema @include(if: true) { types { name } } }"]:
            over_post = await _post(production, {"query": document})
            over_get = await production.http.get(
                production.url,
                params={"query": document},
                headers=production.headers(production.token),
            )
            for response in (over_post, over_get):
                assert response.status_code == 200
                body = response.json()
                assert body["data"] is None
                codes = {error["extensions"]["code"] for error in body["errors"]}
                wanted = expected if document in circular else {"GRAPHQL_VALIDATION_FAILED"}
                assert codes == wanted, (document[:80], body)
                if "GRAPHQL_VALIDATION_FAILED" in wanted:
                    assert "introspection has been disabled" in response.text
                assert '"__schema":' not in response.text and '"types":' not in response.text
    # __typename is not introspection: it is served.
    assert (await production.data("{ __typename }")) == {"__typename": "Query"}


# --- directive overload ---------------------------------------------------------------------------


@pytest.mark.parametrize("directive", ["@skip(if: false)", "@include(if: true)", "@aa", "@a(b: 1)"])
async def test_directive_overload_is_refused_quickly(
    production: GraphQLClient, pool: asyncpg.Pool, directive: str
) -> None:
    tokens = len(re.findall(r"[@()!:]|\w+", directive))
    repeats = (5_000 - 40) // tokens  # as many as the token limit lets through
    timings = {}
    async with writes_nothing(pool):
        for name, document in (
            ("query", "{ __typename " + f"{directive} " * repeats + "}"),
            (
                "mutation",
                f"mutation {{ {create(selection='')} " + f"{directive} " * repeats + "{ id } }",
            ),
            (
                "fragment",
                "{ ...F " + f"{directive} " * repeats + "} fragment F on Query { id: __typename }",
            ),
        ):
            response, timings[name] = await _timed(production, document)
            assert response.status_code == 200, response.text[:300]
            assert _only_code(response) == "GRAPHQL_VALIDATION_FAILED", response.text[:300]
            assert len(response.json()["errors"]) <= 101  # graphql-core stops at 100 errors
        # One more directive than the token limit allows: refused before validation.
        over, timings["over the token limit"] = await _timed(
            production, "{ __typename " + f"{directive} " * (5_000 // tokens + 1) + "}"
        )
        assert _only_code(over) == "QUERY_TOO_COMPLEX"
    print(
        f"\ndirective overload {directive} x{repeats}: "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in timings.items())
    )


# --- field duplication ----------------------------------------------------------------------------


async def test_field_duplication_is_refused(production: GraphQLClient, pool: asyncpg.Pool) -> None:
    timings = {}
    async with writes_nothing(pool):
        for name, document in (
            ("__typename x4,000", "{ " + "__typename " * 4_000 + "}"),
            ("workflowRun x6", "{ " + 'workflowRun(id: "x") { id } ' * 6 + "}"),
            ("workflowRun x600", "{ " + 'workflowRun(id: "x") { id } ' * 600 + "}"),
            ("nested id x2,000", '{ workflowRun(id: "x") { ' + "id " * 2_000 + "} }"),
            ("createWorkflowRun x6", "mutation { " + f"{create()} " * 6 + "}"),
        ):
            response, timings[name] = await _timed(production, document)
            assert response.status_code == 200
            assert _only_code(response) == "QUERY_TOO_COMPLEX", (name, response.text[:300])
    print("\nfield duplication: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))


@pytest.mark.parametrize("how", ["inline fragments", "fragment spreads"])
async def test_field_duplication_through_fragments_is_refused(
    production: GraphQLClient, pool: asyncpg.Pool, how: str
) -> None:
    field = 'workflowRun(id: "x") { id }'
    if how == "inline fragments":
        document = "{ " + f"... on Query {{ {field} }} " * 240 + "}"
    else:
        spreads = " ".join(f"...F{i}" for i in range(240))
        fragments = " ".join(f"fragment F{i} on Query {{ {field} }}" for i in range(240))
        document = f"{{ {spreads} }} {fragments}"
    async with writes_nothing(pool):
        response, seconds = await _timed(production, document)
    print(f"\nfield duplication through {how}: {seconds * 1000:.0f} ms")
    assert _only_code(response) == "QUERY_TOO_COMPLEX", response.text[:300]


def _fragment_bomb(levels: int, fan_out: int = 5) -> str:
    """Fragments that each spread the next `fan_out` times: fan_out ** levels paths."""
    fragments = [
        f"fragment F{i} on Query {{ " + f"...F{i + 1} " * fan_out + "}" for i in range(levels)
    ]
    return "{ ...F0 } " + " ".join(fragments) + f" fragment F{levels} on Query {{ __typename }}"


async def test_a_fragment_bomb_is_refused(production: GraphQLClient, pool: asyncpg.Pool) -> None:
    # 8 levels keep this test near a second; each level multiplies the cost by 5.
    document = _fragment_bomb(8)
    assert len(document) < 600
    async with writes_nothing(pool):
        response, seconds = await _timed(production, document)
    print(f"\nfragment bomb, 8 levels, {len(document)} bytes: {seconds * 1000:.0f} ms")
    assert _only_code(response) == "QUERY_TOO_COMPLEX", response.text[:300]


# --- field suggestions ----------------------------------------------------------------------------


async def test_field_names_are_not_suggested_in_production(
    production: GraphQLClient, pool: asyncpg.Pool
) -> None:
    async with writes_nothing(pool):
        for document in (
            '{ workflowRunz(workspaceId: "ws-a") { totalCount } }',
            '{ workflowRun(id: "x") { statu } }',
            '{ workflowRuns(workspaceId: "ws-a") { nodes { parnt { id } } } }',
            "mutation { createWorkflowRunn(input: {}) { id } }",
        ):
            response = await _post(production, {"query": document})
            assert response.status_code == 200
            assert _only_code(response) == "GRAPHQL_VALIDATION_FAILED"
            assert "Did you mean" not in response.text, response.text


@pytest.mark.parametrize(
    ("what", "document", "variables"),
    [
        ("argument", '{ workflowRuns(workspaceId: "ws-a", filtr: {}) { totalCount } }', None),
        (
            "type",
            'query($f: WorkflowRunFiltr) { workflowRuns(workspaceId: "ws-a", filter: $f) '
            "{ totalCount } }",
            None,
        ),
        (
            "input field",
            '{ workflowRuns(workspaceId: "ws-a", filter: {subjectID: "x"}) { totalCount } }',
            None,
        ),
        (
            "input field in variables",
            'query($f: WorkflowRunFilter) { workflowRuns(workspaceId: "ws-a", filter: $f) '
            "{ totalCount } }",
            {"f": {"subjectID": "x"}},
        ),
        (
            "enum value",
            '{ workflowRuns(workspaceId: "ws-a", orderBy: CREATED_AT_DES) { totalCount } }',
            None,
        ),
    ],
)
async def test_no_other_names_are_suggested_in_production(
    production: GraphQLClient, what: str, document: str, variables: Any
) -> None:
    response = await _post(production, {"query": document, "variables": variables})
    assert response.status_code == 200
    assert _only_code(response) in ("GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT")
    assert "Did you mean" not in response.text, response.text


# --- GET-based mutations and cross-site bodies ----------------------------------------------------


@pytest.mark.parametrize(
    ("document", "operation_name"),
    [
        (f"mutation {{ {create()} }}", None),
        (f"mutation M {{ {create()} }}", "M"),
        (f"query Q {{ __typename }} mutation M {{ {create()} }}", "M"),
        (f"mutation M {{ {create()} }} query Q {{ __typename }}", "M"),
    ],
)
async def test_a_mutation_over_get_is_405_and_writes_nothing(
    production: GraphQLClient, pool: asyncpg.Pool, document: str, operation_name: str | None
) -> None:
    params = {"query": document}
    if operation_name is not None:
        params["operationName"] = operation_name
    async with writes_nothing(pool):
        response = await production.http.get(
            production.url, params=params, headers=production.headers(production.token)
        )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_get_never_reaches_a_mutation_by_other_routes(
    production: GraphQLClient, pool: asyncpg.Pool
) -> None:
    headers = production.headers(production.token)
    async with writes_nothing(pool):
        # A query first and no operationName: ambiguous, so nothing runs.
        ambiguous = await production.http.get(
            production.url,
            params={"query": f"query Q {{ __typename }} mutation M {{ {create()} }}"},
            headers=headers,
        )
        assert ambiguous.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert ambiguous.json().get("data") is None
        # Naming the query: only the query runs.
        first = await production.http.get(
            production.url,
            params={
                "query": f"query Q {{ __typename }} mutation M {{ {create()} }}",
                "operationName": "Q",
            },
            headers=headers,
        )
        assert first.status_code == 200
        assert first.json() == {"data": {"__typename": "Query"}}
        # A query and a mutation sharing a name: invalid, nothing runs.
        same_name = await production.http.get(
            production.url,
            params={
                "query": f"query M {{ __typename }} mutation M {{ {create()} }}",
                "operationName": "M",
            },
            headers=headers,
        )
        assert _only_code(same_name) == "GRAPHQL_VALIDATION_FAILED"
        # A body on a GET is ignored.
        with_body = await production.http.request(
            "GET",
            production.url,
            params={"query": "{ __typename }"},
            json={"query": f"mutation {{ {create()} }}"},
            headers=headers,
        )
        assert with_body.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "application/x-www-form-urlencoded",
            "query=" + httpx.QueryParams({"q": f"mutation {{ {create()} }}"})["q"],
        ),
        (
            "application/x-www-form-urlencoded; charset=utf-8",
            str(httpx.QueryParams({"query": f"mutation {{ {create()} }}"})),
        ),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="query"\r\n\r\n'
            f"mutation {{ {create()} }}\r\n--x--",
        ),
        ("text/plain", '{"query": "mutation { ' + create().replace('"', '\\"') + ' }"}'),
        ("", '{"query": "mutation { ' + create().replace('"', '\\"') + ' }"}'),
    ],
    ids=["form", "form-utf8", "multipart", "text-plain", "no-content-type"],
)
async def test_a_url_encoded_or_other_simple_post_is_415_and_writes_nothing(
    production: GraphQLClient, pool: asyncpg.Pool, content_type: str, body: str
) -> None:
    headers = production.headers(production.token)
    if content_type:
        headers["Content-Type"] = content_type
    async with writes_nothing(pool):
        response = await production.http.post(
            production.url, content=body.encode(), headers=headers
        )
        # The operation in the URL of a form POST is not taken either.
        in_url = await production.http.post(
            production.url,
            params={"query": f"mutation {{ {create()} }}"},
            content=b"",
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
    for refused in (response, in_url):
        assert refused.status_code == 415
        assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# --- trace and debug output -----------------------------------------------------------------------


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


BROKEN: list[tuple[str, dict[str, Any] | None]] = [
    ('{ workflowRun(id: "run_\\u0000") { id } }', None),
    ('{ workflowRuns(workspaceId: "ws-a", after: "bm90IGEgY3Vyc29y") { totalCount } }', None),
    ('{ workflowRuns(workspaceId: "ws-a", first: 0) { totalCount } }', None),
    ('{ workflowRuns(workspaceId: "ws-a", first: 1, last: 1) { totalCount } }', None),
    ('{ workflowRuns(workspaceId: "ws-a", filter: {subjectId: "a\\u0000"}) { totalCount } }', None),
    (
        '{ workflowRuns(workspaceId: "ws-a", filter: {createdAfter: "yesterday"}) { totalCount } }',
        None,
    ),
    (
        'query($n: Int) { workflowRuns(workspaceId: "ws-a", first: $n) { totalCount } }',
        {"n": 2**40},
    ),
    ('query($n: Int) { workflowRuns(workspaceId: "ws-a", first: $n) { totalCount } }', {"n": "1"}),
    ('{ workflowRuns(workspaceId: "ws-b") { totalCount } }', None),
    ('mutation { startWorkflowRun(id: "run_missing") { id } }', None),
    (
        'mutation { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "", '
        "triggeredBy: USER}) { id } }",
        None,
    ),
    (
        'mutation($i: JSON) { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "s", '
        "triggeredBy: USER, input: $i}) { id } }",
        {"i": {"a": "\u0000"}},
    ),
    (
        'mutation($i: JSON) { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "s", '
        "triggeredBy: USER, input: $i}) { id } }",
        {"i": _deep_list(300)},  # deeper than JSON encoding allows
    ),
    (
        'mutation { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "s", '
        'triggeredBy: USER, parentRunId: "run_missing"}) { id } }',
        None,
    ),
    ('mutation { failWorkflowRun(id: "run_missing", error: "' + "e" * 70_000 + '") { id } }', None),
    ("{ workflowRuns(", None),
    ("{ " + "[" * 500, None),
    ("{ nope }", None),
    ('subscription { workflowRunStatusChanged(workspaceId: "ws-a") { cursor } }', None),
]


def _assert_no_debug_output(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:500]
    body = response.json()
    # No tracing, timing or debug block; `lsn` (a commit's WAL position, with read replicas
    # configured) is the only top-level extension the service adds.
    assert set(body.get("extensions", {})) <= {"lsn"}, body
    for error in body.get("errors", []):
        assert set(error.get("extensions", {})) <= ERROR_EXTENSION_KEYS, error
        assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", error
        leak = INTERNALS.search(error["message"])
        assert leak is None, f"{leak.group(0)!r} in {error['message'][:500]!r}"
    assert "Traceback" not in response.text
    assert "stacktrace" not in response.text.lower()


@pytest.mark.parametrize(("document", "variables"), BROKEN, ids=range(len(BROKEN)))
async def test_broken_input_gets_no_trace_debug_or_internal_detail(
    production: GraphQLClient, pool: asyncpg.Pool, document: str, variables: Any
) -> None:
    async with writes_nothing(pool):
        for extra, headers, params in (
            ({}, {}, {}),
            # What debug switches of other servers look like: ignored here.
            ({"extensions": {"tracing": True, "debug": True}}, {"X-Debug": "1"}, {"debug": "1"}),
        ):
            response = await production.http.post(
                production.url,
                json={"query": document, "variables": variables, **extra},
                params=params,
                headers={**production.headers(production.token), **headers},
            )
            _assert_no_debug_output(response)
            assert response.json().get("errors"), response.text[:300]


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_an_out_of_range_datetime_shows_no_driver_detail(
    production: GraphQLClient, value: str
) -> None:
    response = await _post(
        production,
        {
            "query": 'query($d: DateTime) { workflowRuns(workspaceId: "ws-a", '
            "filter: {createdAfter: $d}) { totalCount } }",
            "variables": {"d": value},
        },
    )
    assert _only_code(response) == "BAD_USER_INPUT"
    _assert_no_debug_output(response)


async def test_an_unexpected_failure_is_masked_with_a_request_id(
    production: GraphQLClient, pool: asyncpg.Pool
) -> None:
    # Break the database under the service (no mock): its statements now fail unexpectedly.
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE workflow_runs RENAME TO workflow_runs_gone")
    try:
        response = await _post(
            production,
            {"query": '{ workflowRun(id: "run_x") { id } }'},
            **{"X-Request-ID": "probe-123"},
        )
    finally:
        async with pool.acquire() as conn:
            await conn.execute("ALTER TABLE workflow_runs_gone RENAME TO workflow_runs")
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "probe-123"
    body = response.json()
    assert body["data"] == {"workflowRun": None}
    [error] = body["errors"]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "probe-123"}
    assert INTERNALS.search(response.text) is None, response.text
