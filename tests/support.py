"""Helpers the tests share: a GraphQL client over real HTTP, tokens, servers, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import uvicorn
from starlette.types import ASGIApp

from server.auth import mint_token
from server.httpprotocol import HTTP_PROTOCOL
from server.wsprotocol import WS_PROTOCOL

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
READ_WRITE = ("runs:read", "runs:write")


def token(
    workspaces: Iterable[str] = ("ws-a",),
    *,
    user: str = "user-1",
    scopes: Iterable[str] = READ_WRITE,
    ttl_s: int = 3600,
    secret: str = SECRET,
) -> str:
    """A valid HS256 token for the test secret."""
    return mint_token(secret, user=user, workspaces=workspaces, scopes=scopes, ttl_s=ttl_s)


def with_database(dsn: str, database: str) -> str:
    """The same server DSN, pointing at another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def wait_for(
    condition: Callable[[], Awaitable[bool] | bool], *, within: float = 10.0, what: str = ""
) -> None:
    """Poll `condition` until it holds; fail after `within` seconds. Never a bare sleep."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or condition}")
        await asyncio.sleep(0.01)


class _QuietServer(uvicorn.Server):
    """uvicorn inside the test's event loop: pytest keeps its own signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


@contextlib.asynccontextmanager
async def running(app: ASGIApp, *, http: str = HTTP_PROTOCOL) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free port, as the CLI serves it (or with another `http`
    implementation, e.g. "h11"); yields its base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=http,
        log_level="warning",
        lifespan="on",
        ws=WS_PROTOCOL,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started or task.done(), what="uvicorn to start")
    if task.done():
        task.result()
        raise AssertionError("uvicorn stopped during startup")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class GraphQLClient:
    """POSTs GraphQL to a running server, as a frontend would."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.url = f"{base_url}/graphql"
        self.token = token
        self.http = httpx.AsyncClient(timeout=30)

    def headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, token: Any = ...
    ) -> httpx.Response:
        """The raw HTTP response."""
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        used = self.token if token is ... else token
        return await self.http.post(self.url, json=body, headers=self.headers(used))

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, *, token: Any = ...
    ) -> dict[str, Any]:
        """The JSON body of a request answered 200."""
        response = await self.post(query, variables, token=token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, token: Any = ...
    ) -> dict[str, Any]:
        """`data` of a response that must have no errors."""
        body = await self.execute(query, variables, token=token)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def error(
        self, query: str, variables: dict[str, Any] | None = None, *, token: Any = ...
    ) -> dict[str, Any]:
        """The single error of a response that must fail."""
        body = await self.execute(query, variables, token=token)
        assert body.get("errors"), body
        assert len(body["errors"]) == 1, body["errors"]
        error: dict[str, Any] = body["errors"][0]
        return error

    async def aclose(self) -> None:
        await self.http.aclose()


CREATE = """
mutation Create($input: CreateWorkflowRunInput!) {
  createWorkflowRun(input: $input) {
    id workspaceId subjectId parentRunId status mode input output error triggeredBy
    cfWorkflowId durationMs userId startedAt completedAt createdAt updatedAt
  }
}
"""


async def create_run(
    client: GraphQLClient, workspace: str = "ws-a", **fields: Any
) -> dict[str, Any]:
    """Create a run through the API; returns all its fields."""
    run_input = {"workspaceId": workspace, "subjectId": "wf_test", "triggeredBy": "USER", **fields}
    data = await client.data(CREATE, {"input": run_input})
    run: dict[str, Any] = data["createWorkflowRun"]
    return run


EVENT_FIELDS = (
    "cursor runId workspaceId previousStatus status occurredAt run { id status updatedAt }"
)
SUBSCRIBE = f"""
subscription Watch($ws: ID!, $runId: ID, $status: [WorkflowRunStatus!], $after: String) {{
  workflowRunStatusChanged(workspaceId: $ws, runId: $runId, status: $status, after: $after) {{
    {EVENT_FIELDS}
  }}
}}
"""


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/graphql"


class LiveEvents:
    """A subscription over a real WebSocket (the gql client), collecting events as they come."""

    def __init__(
        self,
        base_url: str,
        token: str,
        workspace: str = "ws-a",
        *,
        after: str | None = None,
        run_id: str | None = None,
        status: list[str] | None = None,
        legacy: bool = False,
        query: str = SUBSCRIBE,
    ) -> None:
        from gql import Client
        from gql.transport.websockets import WebsocketsTransport

        protocol = (
            WebsocketsTransport.APOLLO_SUBPROTOCOL
            if legacy
            else WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL
        )
        self._transport = WebsocketsTransport(
            url=ws_url(base_url),
            init_payload={"Authorization": f"Bearer {token}"},
            subprotocols=[protocol],
        )
        self._client = Client(transport=self._transport)
        self._query = query
        self._variables = {"ws": workspace, "after": after, "runId": run_id, "status": status}
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LiveEvents:
        from gql import GraphQLRequest

        session = await self._client.connect_async()
        request = GraphQLRequest(self._query, variable_values=self._variables)

        async def consume() -> None:
            try:
                async for result in session.subscribe(request):
                    self.events.append(result["workflowRunStatusChanged"])
            except Exception as exc:  # kept for the test to inspect
                self.error = exc

        self._task = asyncio.create_task(consume())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.close_async()

    async def wait_for_count(self, count: int, *, within: float = 15.0) -> list[dict[str, Any]]:
        """Wait until `count` events arrived (fails on a subscription error or timeout)."""

        def arrived() -> bool:
            if self.error is not None:
                raise AssertionError(f"subscription failed: {self.error!r}")
            return len(self.events) >= count

        await wait_for(arrived, within=within, what=f"{count} events (have {len(self.events)})")
        return self.events


async def subscribers_registered(app: Any, count: int) -> None:
    """Wait until the app's fan-out holds `count` subscribers (the server has subscribed)."""
    fanout = app.state.runtime.fanout
    await wait_for(lambda: fanout.subscriber_count >= count, what=f"{count} subscribers")


def on_database(settings: Any, dsn: str, **changes: Any) -> Any:
    """The settings for a server of the test's own (directly, never through PgBouncer)."""
    from dataclasses import replace

    return replace(settings, database_url=dsn, listen_url=None, pgbouncer=False, **changes)


@contextlib.asynccontextmanager
async def runs_locked(database_url: str) -> AsyncIterator[None]:
    """Another session holds the runs table: reads queue behind it, deterministically slow."""
    conn = await asyncpg.connect(database_url)
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute("LOCK TABLE workflow_runs IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        await transaction.rollback()
        await conn.close()
