"""Property-based operations against the real service: whatever a client sends, the server never
fails as a server.

The property, for every generated operation:

- the HTTP status is never 5xx;
- no error carries `extensions.code` INTERNAL_SERVER_ERROR, and every code is one the contract
  lists (or GraphQL's own parse / validation codes);
- no response text shows a traceback, a Python exception class path or a source file path;
- afterwards, the server still answers a normal query.

What is generated (each family is one test below; their example counts add up to 2,150, and
each test asserts that it really sent its share):

- valid queries and valid mutations from `hypothesis-graphql`, built from the schema the app
  serves (`app.state.runtime.schema.as_str()`);
- `hypothesis-graphql`'s NEGATIVE mode: documents with one schema violation (wrong argument
  type, missing required argument, unknown enum value, ...);
- generated documents with random tokens dropped, duplicated, swapped or inserted;
- one operation per root field with every argument a variable, sent with garbage variables:
  wrong types, unknown enum values, huge strings, NUL characters, deep nesting, NaN;
- random bytes, random JSON and random text as the request body, with random Accept,
  Content-Type, X-Min-LSN and X-Request-ID headers;
- deep nesting: selections, list and object literals, inline fragments, fragment chains;
- valid generated queries over GET, and generated mutations over GET (405).

Arguments hit real data: runs are seeded first (in ws-a and ws-b, with parents, children and
several statuses), and the ID / String / Int / DateTime / JSON / Long strategies draw from them.
hypothesis-graphql draws a value per scalar *type*, not per argument, so the ID and String
strategies draw placeholders ("\\ue000<n>") that `_Substitute` replaces by argument name:
`workspaceId` -> a workspace (ws-a, ws-b, or one outside the token), `id` / `parentRunId` /
`runId` -> a seeded run id (or one that never existed), `after` / `before` -> a real cursor,
`idempotencyKey` -> one of a few keys (so retries and CONFLICT happen), and so on. The token
reads and writes ws-a and ws-b.

How the event loops fit together: Hypothesis runs a synchronous test function many times, and
pytest-asyncio runs this suite's async fixtures and the `server` fixture in one session event
loop. A synchronous HTTP client in the test would block that loop, and with it the server.
So these tests do not use the `server` fixture: `_ServedInThread` runs the app with
`tests.support.running` (real uvicorn, real pool) in a thread that owns its own event loop, and
the Hypothesis tests talk to it with a synchronous `httpx.Client`. The per-test database comes
from the usual fixtures (`settings` -> `database_url`), which are set up before the test body
runs. Runs are reproducible: `derandomize=True` and no example database.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries
from starlette.applications import Starlette

from server.app import create_app
from server.config import Settings
from tests.support import running, token

# --- the property ---------------------------------------------------------------------------------

CONTRACT_CODES = {
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "INVALID_TRANSITION",
    "CONFLICT",
    "CURSOR_EXPIRED",
    "QUERY_TOO_COMPLEX",
    # GraphQL's own request errors.
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
}
# A traceback, a Python exception class path (asyncpg.exceptions.DataError, builtins.KeyError),
# a source file or a repr of an object: internals that must never reach a client.
LEAK = re.compile(
    r"Traceback|most recent call last|File \"|\.py\b|site-packages|/work/"
    r"|\b[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*\.[A-Z]\w*(?:Error|Exception|Warning)\b"
    r"|<class '| object at 0x"
)
WORKSPACES = ("ws-a", "ws-b")
OUTSIDE = "ws-outside"
NEVER_EXISTED = "run_00000000000000000000000000"
HEALTH = '{ workflowRunStatusCounts(workspaceId: "ws-a") { status count } }'
PLACEHOLDER = "\ue000"

# Generated operations per test; each test asserts that it sent at least its quota.
QUOTAS = {
    "queries": 450,
    "mutations": 400,
    "over GET": 100,
    "schema violations": 300,
    "mangled": 300,
    "garbage variables": 300,
    "random bodies": 150,
    "deep": 100,
}
SETTINGS = hypothesis_settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)


def _examples(count: int) -> hypothesis_settings:
    return hypothesis_settings(SETTINGS, max_examples=count)


@dataclass
class Target:
    """The running service, as a synchronous client sees it, and what the tests sent it."""

    http: httpx.Client
    url: str
    headers: dict[str, str]
    sent: int = 0
    codes: dict[str, int] = field(default_factory=dict)

    def post(self, query: str, variables: Any = None, **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        body.update(extra)
        return self.http.post(self.url, json=body, headers=self.headers)

    def operation(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        """Send one generated operation and check the property around it."""
        self.sent += 1
        response = send()
        check_response(response, self.codes)
        self.assert_alive()
        return response

    def assert_alive(self) -> None:
        response = self.post(HEALTH)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        assert len(body["data"]["workflowRunStatusCounts"]) == 8


def check_response(response: httpx.Response, codes: dict[str, int] | None = None) -> None:
    """The property every response must have."""
    text = response.text
    assert response.status_code < 500, (response.status_code, text[:2000])
    leak = LEAK.search(text)
    assert leak is None, f"internal detail {leak.group(0)!r} in: {text[:2000]}"
    if "json" not in response.headers.get("content-type", ""):
        return
    body = response.json()
    assert isinstance(body, dict), text[:2000]
    errors = body.get("errors") or []
    assert isinstance(errors, list), text[:2000]
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        assert code != "INTERNAL_SERVER_ERROR", text[:2000]
        assert code in CONTRACT_CODES, (code, text[:2000])
        if codes is not None:
            codes[code] = codes.get(code, 0) + 1
    assert "tracing" not in (body.get("extensions") or {}), text[:2000]


# --- the service, in its own thread and event loop ------------------------------------------------


class _ServedInThread:
    """The app on a real uvicorn, in a thread with its own event loop (see the docstring)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.base_url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="served-app", daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        assert self._ready.wait(60), "the app did not start within 60 s"
        if self._error is not None:
            raise self._error
        return self.base_url

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive(), "the app did not stop within 60 s"
        if self._error is not None:
            raise AssertionError("the app failed while serving") from self._error

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with running(self.app) as base_url:
                self.base_url = base_url
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise


# --- seeded data, and the pools the strategies draw from ------------------------------------------


@dataclass
class Pools:
    run_ids: list[str]
    cursors: list[str]
    subjects: list[str]
    created: list[str]
    users: list[str] = field(default_factory=lambda: ["user-1", "user-2", ""])
    keys: list[str] = field(default_factory=lambda: ["key-1", "key-2", "key-3"])


_SEED_CREATE = """
mutation($input: CreateWorkflowRunInput!) { createWorkflowRun(input: $input) { id createdAt } }
"""


def _seed(target: Target) -> Pools:
    """Runs in ws-a and ws-b: roots and children, in several statuses; and their cursors."""

    def create(workspace: str, subject: str, parent: str | None = None) -> dict[str, Any]:
        run_input = {
            "workspaceId": workspace,
            "subjectId": subject,
            "triggeredBy": "USER",
            "parentRunId": parent,
            "input": {"n": 1, "nested": [1, "two", None]},
        }
        response = target.post(_SEED_CREATE, {"input": run_input})
        body = response.json()
        assert "errors" not in body, body
        created: dict[str, Any] = body["data"]["createWorkflowRun"]
        return created

    def move(mutation: str, run_id: str) -> None:
        body = target.post(f'mutation {{ {mutation}(id: "{run_id}") {{ id }} }}').json()
        assert "errors" not in body, body

    runs: list[dict[str, Any]] = []
    for workspace in WORKSPACES:
        root = create(workspace, "wf_root")
        runs.append(root)
        for i in range(3):
            child = create(workspace, f"wf_child_{i}", root["id"])
            runs.append(child)
            runs.append(create(workspace, "agt_grandchild", child["id"]))
        started = create(workspace, "swm_started")
        move("startWorkflowRun", started["id"])
        waiting = create(workspace, "swm_waiting")
        move("startWorkflowRun", waiting["id"])
        move("markWorkflowRunWaiting", waiting["id"])
        failed = create(workspace, "wf_failed")
        failure = target.post(
            f'mutation {{ failWorkflowRun(id: "{failed["id"]}", error: "boom") {{ id }} }}'
        )
        assert "errors" not in failure.json(), failure.text
        paused = create(workspace, "wf_paused")
        move("pauseWorkflowRun", paused["id"])
        runs += [started, waiting, failed, paused]
    cursors: list[str] = []
    for workspace in WORKSPACES:
        for order in ("CREATED_AT_DESC", "CREATED_AT_ASC", "UPDATED_AT_DESC"):
            query = (
                f'{{ workflowRuns(workspaceId: "{workspace}", orderBy: {order}, first: 5) '
                "{ edges { cursor } nodes { children(first: 1) { edges { cursor } } "
                "events { cursor } } } }"
            )
            data = target.post(query).json()["data"]["workflowRuns"]
            cursors += [edge["cursor"] for edge in data["edges"]]
            for node in data["nodes"]:
                cursors += [edge["cursor"] for edge in node["children"]["edges"]]
                cursors += [event["cursor"] for event in node["events"]]
    return Pools(
        run_ids=[run["id"] for run in runs],
        cursors=list(dict.fromkeys(cursors)),  # in the order read: the same on every run
        subjects=["wf_root", "wf_child_0", "agt_grandchild", "swm_started", "wf_failed"],
        created=[run["createdAt"] for run in runs],
    )


@pytest.fixture
def target(settings: Settings) -> Iterator[tuple[Target, Pools, str]]:
    """The service in its own thread, seeded; and the SDL it serves."""
    app = create_app(settings)
    sdl = app.state.runtime.schema.as_str()
    with (
        _ServedInThread(app) as base_url,
        httpx.Client(timeout=httpx.Timeout(60.0)) as http,
    ):
        headers = {"Authorization": f"Bearer {token(WORKSPACES, user='user-1')}"}
        service = Target(http, f"{base_url}/graphql", headers)
        pools = _seed(service)
        service.assert_alive()
        yield service, pools, sdl


# --- value strategies -----------------------------------------------------------------------------


def _text(max_size: int = 30) -> st.SearchStrategy[str]:
    # Any code point except lone surrogates (a JSON body cannot carry them); NUL included.
    return st.text(st.characters(blacklist_categories=["Cs"]), max_size=max_size)


def _placeholder() -> st.SearchStrategy[graphql.ValueNode]:
    return st.integers(0, 10**6).map(lambda n: nodes.String(f"{PLACEHOLDER}{n}"))


def _datetimes(pools: Pools) -> st.SearchStrategy[str]:
    offsets = st.sampled_from(
        [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12, minutes=-30))]
    )
    return st.one_of(
        st.sampled_from(pools.created),
        st.datetimes(
            min_value=datetime(1, 1, 2),  # the offset comes from `timezones`
            max_value=datetime(9999, 12, 30),
            timezones=offsets,
        ).map(lambda d: d.isoformat()),
        st.sampled_from(
            [
                "2026-11-24T19:15:00.123456+00:00",
                "2026-11-24T19:15:00Z",
                "2026-11-24T19:15:00",  # no offset: BAD_USER_INPUT
                "not a date",
                "",
            ]
        ),
    )


def _json_nodes() -> st.SearchStrategy[graphql.ValueNode]:
    names = st.from_regex(r"[_A-Za-z][_0-9A-Za-z]{0,8}", fullmatch=True)
    leaves = st.one_of(
        st.none().map(lambda _: nodes.Null),
        st.booleans().map(nodes.Boolean),
        st.integers(-(2**70), 2**70).map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        _text().map(nodes.String),
        st.sampled_from(["PENDING", "NOT_A_VALUE"]).map(nodes.Enum),
    )

    def objects(children: st.SearchStrategy[graphql.ValueNode]) -> Any:
        fields = st.dictionaries(names, children, max_size=4).map(
            lambda d: [
                graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v)
                for k, v in d.items()
            ]
        )
        return st.lists(children, max_size=4).map(nodes.List) | fields.map(nodes.Object)

    return st.recursive(leaves, objects, max_leaves=12)


def _scalars(pools: Pools) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    known = _placeholder()
    return {
        "ID": st.one_of(
            known,
            known,
            known,
            _text().map(nodes.String),
            st.integers(-(2**31), 2**31 - 1).map(nodes.Int),
        ),
        "String": st.one_of(known, known, _text().map(nodes.String)),
        # Page sizes: mostly within 1..500, sometimes at and past the edges.
        "Int": st.one_of(
            st.integers(1, 60),
            st.integers(1, 60),
            st.sampled_from([0, -1, 500, 501, 2**31 - 1, -(2**31)]),
        ).map(nodes.Int),
        "DateTime": _datetimes(pools).map(nodes.String),
        "JSON": _json_nodes(),
        "Long": st.integers(-(2**63), 2**63 - 1).map(nodes.Int),
    }


def _by_name(pools: Pools, *, huge: bool = True) -> dict[str, list[str]]:
    runs = [*pools.run_ids, NEVER_EXISTED]
    return {
        "workspaceId": [*WORKSPACES, *WORKSPACES, OUTSIDE],
        "id": runs,
        "parentRunId": runs,
        "runId": runs,
        "userId": pools.users,
        "after": pools.cursors,
        "before": pools.cursors,
        "subjectId": pools.subjects,
        "idempotencyKey": pools.keys,
        "cfWorkflowId": ["cf-1", "cf-2"],
        # Over the 64 KiB text limit (not over GET: a URL that long is refused by the client).
        "error": ["boom", "x" * 70_000] if huge else ["boom", "x" * 2_000],
        "reason": ["stop", ""],
    }


class _Substitute(graphql.Visitor):
    """Replaces placeholders by a value from the pool of the argument's (or input field's) name."""

    def __init__(self, pools: dict[str, list[str]]) -> None:
        super().__init__()
        self.pools = pools

    def _replace(self, node: Any) -> Any:
        value = node.value
        if not isinstance(value, graphql.StringValueNode) or not value.value.startswith(
            PLACEHOLDER
        ):
            return None
        n = int(value.value[len(PLACEHOLDER) :])
        pool = self.pools.get(node.name.value) or ["", "x", "run_"]
        return type(node)(name=node.name, value=nodes.String(pool[n % len(pool)]))

    def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
        return self._replace(node)

    def enter_object_field(self, node: graphql.ObjectFieldNode, *_: Any) -> Any:
        return self._replace(node)


def _printer(pools: Pools, *, huge: bool = True) -> Callable[[graphql.DocumentNode], str]:
    by_name = _by_name(pools, huge=huge)

    def print_document(document: graphql.DocumentNode) -> str:
        return graphql.print_ast(graphql.visit(document, _Substitute(by_name)))

    return print_document


def _generated(
    sdl: str, pools: Pools, kind: str, mode: Mode, *, huge: bool = True
) -> st.SearchStrategy[str]:
    make = queries if kind == "query" else mutations
    return make(  # type: ignore[no-any-return]
        sdl,
        custom_scalars=_scalars(pools),
        print_ast=_printer(pools, huge=huge),
        allow_x00=True,
        mode=mode,
    )


def _run_examples(test: Callable[[], None], target: Target, at_least: int) -> None:
    before = target.sent
    test()
    sent = target.sent - before
    assert sent >= at_least, f"only {sent} generated operations ran; expected {at_least}"


# --- valid generated operations -------------------------------------------------------------------


def test_generated_queries(target: tuple[Target, Pools, str]) -> None:
    service, pools, sdl = target
    succeeded = 0

    @_examples(QUOTAS["queries"])
    @given(_generated(sdl, pools, "query", Mode.POSITIVE))
    def valid_query(query: str) -> None:
        nonlocal succeeded
        response = service.operation(lambda: service.post(query))
        assert response.status_code == 200
        body = response.json()
        succeeded += "errors" not in body
        # A valid document is never refused as GraphQL: only by limits, tenancy or input.
        for error in body.get("errors", []):
            assert error["extensions"]["code"] not in (
                "GRAPHQL_PARSE_FAILED",
                "GRAPHQL_VALIDATION_FAILED",
            ), (query, error)

    _run_examples(valid_query, service, QUOTAS["queries"])
    # The generator reaches real data, not only refusals.
    assert succeeded >= 100, (succeeded, service.codes)


def test_generated_mutations(target: tuple[Target, Pools, str]) -> None:
    service, pools, sdl = target
    succeeded = 0

    @_examples(QUOTAS["mutations"])
    @given(_generated(sdl, pools, "mutation", Mode.POSITIVE))
    def valid_mutation(mutation: str) -> None:
        nonlocal succeeded
        response = service.operation(lambda: service.post(mutation))
        assert response.status_code == 200
        body = response.json()
        succeeded += "errors" not in body
        for error in body.get("errors", []):
            assert error["extensions"]["code"] not in (
                "GRAPHQL_PARSE_FAILED",
                "GRAPHQL_VALIDATION_FAILED",
            ), (mutation, error)

    _run_examples(valid_mutation, service, QUOTAS["mutations"])
    # Several mutations per document, most on runs whose status refuses one of them: whole
    # documents succeed rarely, but they do.
    assert succeeded >= 10, (succeeded, service.codes)
    # Lifecycle refusals were reached too: generated ids named real runs.
    assert service.codes.get("INVALID_TRANSITION", 0) > 0, service.codes


def _state(service: Target) -> Any:
    """Every run of both workspaces, as of its last change."""
    query = (
        "query($ws: ID!) { workflowRuns(workspaceId: $ws, first: 500, orderBy: UPDATED_AT_DESC) "
        "{ totalCount nodes { id status updatedAt } } }"
    )
    return [service.post(query, {"ws": ws}).json() for ws in WORKSPACES]


def test_generated_operations_over_get(target: tuple[Target, Pools, str]) -> None:
    service, pools, sdl = target
    operations = st.one_of(
        _generated(sdl, pools, "query", Mode.POSITIVE, huge=False).map(lambda q: ("query", q)),
        _generated(sdl, pools, "mutation", Mode.POSITIVE, huge=False).map(
            lambda q: ("mutation", q)
        ),
    )
    before = _state(service)

    @_examples(QUOTAS["over GET"])
    @given(operations)
    def over_get(operation: tuple[str, str]) -> None:
        kind, document = operation
        response = service.operation(
            lambda: service.http.get(
                service.url, params={"query": document}, headers=service.headers
            )
        )
        if kind == "mutation":
            assert response.status_code == 405, response.text
            assert response.headers["allow"] == "POST"

    _run_examples(over_get, service, QUOTAS["over GET"])
    assert _state(service) == before  # no mutation over GET wrote anything


# --- invalid and hostile operations ---------------------------------------------------------------


def test_generated_schema_violations(target: tuple[Target, Pools, str]) -> None:
    service, pools, sdl = target
    violations = st.one_of(
        _generated(sdl, pools, "query", Mode.NEGATIVE),
        _generated(sdl, pools, "mutation", Mode.NEGATIVE),
    )

    @_examples(QUOTAS["schema violations"])
    @given(violations)
    def invalid(document: str) -> None:
        response = service.operation(lambda: service.post(document))
        body = response.json()
        assert body.get("errors"), (document, body)
        assert body.get("data") is None, (document, body)

    _run_examples(invalid, service, QUOTAS["schema violations"])


_INSERTABLE = [
    "{", "}", "(", ")", "[", "]", ":", "$", "$x", "@", "@skip", "@include(if: true)", "...",
    "... on Query", "fragment", "query", "mutation", "subscription", "on", "=", "!", "|", "&",
    '"', '"""', "null", "true", "0", "-1", "1e999", "99999999999999999999", '"\\u0000"',
    '"\\ud800"', "__schema", "__typename", "#", "\u0000", "\ufeff", "é", "workflowRuns",
]  # fmt: skip


@st.composite
def _mangled(draw: st.DrawFn, documents: st.SearchStrategy[str]) -> str:
    """A generated document with a few tokens dropped, duplicated, swapped or inserted."""
    document = draw(documents)
    lexer = graphql.language.Lexer(graphql.Source(document))
    tokens: list[str] = []
    while (tok := lexer.advance()).kind is not graphql.language.TokenKind.EOF:
        tokens.append(document[tok.start : tok.end])
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            tokens.append(draw(st.sampled_from(_INSERTABLE)))
            continue
        i = draw(st.integers(0, len(tokens) - 1))
        edit = draw(st.sampled_from(["drop", "duplicate", "swap", "insert", "truncate"]))
        if edit == "drop":
            del tokens[i]
        elif edit == "duplicate":
            tokens[i:i] = [tokens[i]] * draw(st.integers(1, 50))
        elif edit == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif edit == "insert":
            tokens.insert(i, draw(st.sampled_from(_INSERTABLE) | _text(5)))
        else:
            tokens = tokens[:i]
    return " ".join(tokens)


def test_mangled_documents(target: tuple[Target, Pools, str]) -> None:
    service, pools, sdl = target
    documents = st.one_of(
        _generated(sdl, pools, "query", Mode.POSITIVE),
        _generated(sdl, pools, "mutation", Mode.POSITIVE),
    )

    @_examples(QUOTAS["mangled"])
    @given(_mangled(documents))
    def mangled(document: str) -> None:
        service.operation(lambda: service.post(document))

    _run_examples(mangled, service, QUOTAS["mangled"])


def _templates(sdl: str) -> list[tuple[str, str, dict[str, graphql.GraphQLInputType]]]:
    """One operation per root field, every argument a variable: (name, document, variables)."""
    schema = graphql.build_schema(sdl)
    selections = {
        "WorkflowRun": (
            "id status workspaceId input output error durationMs createdAt parent { id } "
            "children(first: 2) { totalCount nodes { id } } events { cursor status run { id } }"
        ),
        "WorkflowRunConnection": (
            "totalCount pageInfo { endCursor hasNextPage hasPreviousPage } "
            "edges { cursor node { id status } }"
        ),
        "WorkflowRunStatusCount": "status count",
    }
    templates = []
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        assert root is not None
        for name, root_field in root.fields.items():
            declared = ", ".join(
                f"${arg}: {arg_def.type}" for arg, arg_def in root_field.args.items()
            )
            passed = ", ".join(f"{arg}: ${arg}" for arg in root_field.args)
            returned = graphql.get_named_type(root_field.type).name
            # Scalar roots (workflowRunEventCursor) take no selection set.
            selection = f" {{ {selections[returned]} }}" if returned in selections else ""
            document = f"{kind} Op({declared}) {{ {name}({passed}){selection} }}"
            variables = {arg: arg_def.type for arg, arg_def in root_field.args.items()}
            templates.append((name, document, variables))
    return templates


_INPUT_KEYS = [
    "workspaceId", "subjectId", "parentRunId", "mode", "input", "triggeredBy", "cfWorkflowId",
    "idempotencyKey", "rootOnly", "userId", "createdAfter", "createdBefore", "status",
]  # fmt: skip


def _nested(depth: int, leaf: Any, kind: str) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


def _junk(pools: Pools) -> st.SearchStrategy[Any]:
    plausible = st.sampled_from(
        [
            *WORKSPACES,
            OUTSIDE,
            *pools.run_ids[:6],
            NEVER_EXISTED,
            *pools.cursors[:4],
            "PENDING",
            "TIMED_OUT",
            "NOT_A_STATUS",
            "USER",
            "ASYNC",
            "CREATED_AT_ASC",
            "2026-11-24T19:15:00+00:00",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
        ]
    )
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**80), 2**80),
        st.floats(allow_nan=False, allow_infinity=False),
        _text(),
        plausible,
        st.sampled_from(["\x00", "a\x00b", "run_\x00", "\u202e", "\ufeff", "' OR 1=1 --"]),
        # Huge strings: over the key limit, over the text limit, over the body limit.
        st.sampled_from([1_025, 70_000, 300_000, 1_100_000]).map(lambda n: "x" * n),
    )
    deep = st.tuples(st.integers(50, 1_200), st.sampled_from(["list", "object"])).map(
        lambda d: _nested(d[0], "x", d[1])
    )
    return (
        st.recursive(
            leaves,
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(st.sampled_from(_INPUT_KEYS) | _text(8), children, max_size=6)
            ),
            max_leaves=10,
        )
        | deep
    )


def _plausible_value(pools: Pools, arg: str, type_: graphql.GraphQLInputType) -> Any:
    named = graphql.get_named_type(type_)
    by_name = _by_name(pools)
    if arg in by_name:
        return st.sampled_from(by_name[arg])
    if isinstance(named, graphql.GraphQLEnumType):
        values = st.sampled_from(sorted(named.values))
        return (
            st.lists(values, max_size=3)
            if graphql.is_list_type(graphql.get_nullable_type(type_))
            else values
        )
    if named.name == "Int":
        return st.integers(-2, 600)
    if named.name == "CreateWorkflowRunInput":
        return st.fixed_dictionaries(
            {
                "workspaceId": st.sampled_from(by_name["workspaceId"]),
                "subjectId": st.sampled_from(pools.subjects) | _text(),
                "triggeredBy": st.sampled_from(["USER", "AGENT", "NOPE"]),
            },
            optional={
                "parentRunId": st.sampled_from(by_name["parentRunId"]),
                "input": _junk(pools),
                "idempotencyKey": st.sampled_from(pools.keys),
                "mode": st.sampled_from(["SYNC", "ASYNC", "sync"]),
            },
        )
    if named.name == "WorkflowRunFilter":
        return st.fixed_dictionaries(
            {},
            optional={
                "subjectId": st.sampled_from(pools.subjects) | _text(),
                "parentRunId": st.sampled_from(by_name["parentRunId"]),
                "rootOnly": st.booleans(),
                "triggeredBy": st.lists(st.sampled_from(["USER", "AGENT", "EVENT"])),
                "mode": st.sampled_from(["SYNC", "ASYNC"]),
                "userId": st.sampled_from(pools.users),
                "createdAfter": _datetimes(pools),
                "createdBefore": _datetimes(pools),
            },
        )
    return _text()


@st.composite
def _garbage_request(draw: st.DrawFn, pools: Pools, templates: list[Any]) -> bytes:
    """The raw JSON body of a template with variables that are plausible or garbage."""
    _, document, declared = draw(st.sampled_from(templates))
    variables: dict[str, Any] = {}
    for arg, type_ in declared.items():
        choice = draw(st.sampled_from(["plausible", "junk", "absent", "null"]))
        if choice == "plausible":
            variables[arg] = draw(_plausible_value(pools, arg, type_))
        elif choice == "junk":
            variables[arg] = draw(_junk(pools))
        elif choice == "null":
            variables[arg] = None
    if draw(st.booleans()):
        variables[draw(_text(10))] = draw(_junk(pools))
    body: dict[str, Any] = {"query": document, "variables": variables}
    shape = draw(st.sampled_from(["object", "object", "object", "not-an-object", "nan"]))
    if shape == "not-an-object":
        body["variables"] = draw(st.sampled_from([[1], "x", 3, True]))
    if draw(st.booleans()):
        body["operationName"] = draw(st.sampled_from(["Op", "Other", None]) | _text(5))
    if draw(st.booleans()):
        body["extensions"] = draw(st.sampled_from([{"tracing": True}, {"debug": True}, [], "x"]))
    if shape == "nan":
        body["variables"]["nan"] = float("nan")
    return json.dumps(body, allow_nan=True).encode()


def test_garbage_variables(target: tuple[Target, Pools, str]) -> None:
    service, pools, sdl = target
    templates = _templates(sdl)
    assert len(templates) == 14  # every root field of Query and Mutation
    headers = {**service.headers, "Content-Type": "application/json"}

    @_examples(QUOTAS["garbage variables"])
    @given(_garbage_request(pools, templates))
    def garbage(raw: bytes) -> None:
        response = service.operation(
            lambda: service.http.post(service.url, content=raw, headers=headers)
        )
        if len(raw) > 1024 * 1024:
            assert response.status_code == 413

    _run_examples(garbage, service, QUOTAS["garbage variables"])


_CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/graphql",
    "application/x-www-form-urlencoded",
    "text/plain",
    "",
]


@st.composite
def _raw_request(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    """A POST or GET with a body or query string that is anything at all."""
    kind = draw(st.sampled_from(["bytes", "json", "text-query", "get"]))
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text(),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(_text(8), c, max_size=4),
        max_leaves=15,
    )
    ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
    headers = {"Content-Type": draw(st.sampled_from(_CONTENT_TYPES))}
    headers["Accept"] = draw(
        st.sampled_from(["application/json", "application/graphql-response+json", "*/*", ""])
        | ascii_text
    )
    # The read-your-writes position and the request id are client-controlled headers too.
    headers["X-Min-LSN"] = draw(
        st.sampled_from(["", "0/0", "0/3000148", "FFFFFFFF/FFFFFFFF", "1/", "/1", "-1/-1", "zz"])
        | ascii_text
    )
    headers["X-Request-ID"] = draw(st.sampled_from(["", "req-1"]) | ascii_text)
    if kind == "bytes":
        return "POST", draw(st.binary(max_size=3_000)), headers
    if kind == "json":
        keys = st.sampled_from(["query", "variables", "operationName", "extensions"]) | _text(8)
        body = draw(st.dictionaries(keys, json_values, max_size=4) | json_values)
        return "POST", json.dumps(body).encode(), headers
    if kind == "text-query":
        body = {"query": draw(_text(300) | st.sampled_from(_INSERTABLE))}
        return "POST", json.dumps(body).encode(), headers
    return "GET", draw(_text(300)).encode(), headers


def test_random_bodies(target: tuple[Target, Pools, str]) -> None:
    service, _, _ = target

    @_examples(QUOTAS["random bodies"])
    @given(_raw_request())
    def random_body(request: tuple[str, bytes, dict[str, str]]) -> None:
        method, raw, headers = request
        # A blank header value cannot be sent at all (h11 refuses it client-side).
        merged = {**service.headers, **{k: v.strip() for k, v in headers.items() if v.strip()}}
        if method == "GET":
            service.operation(
                lambda: service.http.get(
                    service.url, params={"query": raw.decode()}, headers=merged
                )
            )
        else:
            service.operation(lambda: service.http.post(service.url, content=raw, headers=merged))

    _run_examples(random_body, service, QUOTAS["random bodies"])


@st.composite
def _deep(draw: st.DrawFn, pools: Pools) -> str:
    """Deeply nested documents of several kinds; each still under the body limit."""
    # Within the limits (depth 12) and far beyond them.
    depth = draw(st.integers(1, 14) | st.integers(15, 3_000))
    run_id = draw(st.sampled_from(pools.run_ids))
    kind = draw(
        st.sampled_from(
            ["parents", "children", "list-literal", "object-literal", "inline", "fragments"]
        )
    )
    if kind == "parents":
        return (
            f'{{ workflowRun(id: "{run_id}") {{ '
            + "parent { " * depth
            + "id"
            + " }" * depth
            + " } }"
        )
    if kind == "children":
        return (
            f'{{ workflowRun(id: "{run_id}") {{ '
            + "children { nodes { " * depth
            + "id"
            + " } }" * depth
            + " } }"
        )
    if kind == "list-literal":
        return (
            'mutation { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "wf", '
            "triggeredBy: USER, input: " + "[" * depth + "1" + "]" * depth + "}) { id input } }"
        )
    if kind == "object-literal":
        return (
            'mutation { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "wf", '
            "triggeredBy: USER, input: " + "{a: " * depth + "1" + "}" * depth + "}) { id } }"
        )
    if kind == "inline":
        return "{ " + "... on Query { " * depth + "__typename" + " }" * depth + " }"
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(min(depth, 400))
    )
    return f"{{ ...F0 }} {fragments} fragment F{min(depth, 400)} on Query {{ __typename }}"


def test_deeply_nested_documents(target: tuple[Target, Pools, str]) -> None:
    service, pools, _ = target

    @_examples(QUOTAS["deep"])
    @given(_deep(pools))
    def deep(document: str) -> None:
        service.operation(lambda: service.post(document))

    _run_examples(deep, service, QUOTAS["deep"])


def test_the_quotas_add_up_to_at_least_two_thousand_operations() -> None:
    # Each test above runs its quota of examples and asserts that it sent as many operations.
    assert sum(QUOTAS.values()) >= 2_000
