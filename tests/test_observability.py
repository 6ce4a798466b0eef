"""Operations: /metrics, structured logs with request ids, readiness."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from db.migrate import migrate
from db.pool import connect
from server.app import create_app
from server.config import Settings
from server.embedded import EmbeddedPostgres
from server.logs import REQUEST_ID, JsonFormatter
from tests.support import (
    GraphQLClient,
    LiveEvents,
    create_run,
    on_database,
    running,
    subscribers_registered,
    token,
    wait_for,
)


async def _metrics(server: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{server}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_parse_and_move_as_requests_are_made(
    app: Starlette, server: str, client: GraphQLClient
) -> None:
    before = await _metrics(server)
    await client.data('query Counts { workflowRunStatusCounts(workspaceId: "ws-a") { count } }')
    await client.data('query Counts { workflowRunStatusCounts(workspaceId: "ws-a") { count } }')
    await client.execute('query Denied { workflowRunStatusCounts(workspaceId: "ws-z") { count } }')
    await create_run(client)
    async with LiveEvents(server, token()):
        await subscribers_registered(app, 1)
        during = await _metrics(server)
    after = await _metrics(server)

    ops = "workflow_runs_graphql_operations_total"
    assert (
        _value(after, ops, type="query", operation="Counts", outcome="ok")
        - _value(before, ops, type="query", operation="Counts", outcome="ok")
        == 2
    )
    assert _value(after, ops, type="query", operation="Denied", outcome="FORBIDDEN") == 1
    assert _value(after, ops, type="mutation", operation="Create", outcome="ok") == 1
    latency = "workflow_runs_graphql_operation_duration_seconds_count"
    assert _value(after, latency, type="query") >= 3
    assert _value(after, "workflow_runs_db_queries_total") > _value(
        before, "workflow_runs_db_queries_total"
    )
    assert _value(during, "workflow_runs_subscriptions") == 1
    # Counted once it has started, while it runs.
    assert _value(during, ops, type="subscription", operation="Watch", outcome="ok") == 1
    assert _value(during, "workflow_runs_websockets") == 1
    assert _value(after, "workflow_runs_listener_connected") == 1
    assert _value(after, "workflow_runs_db_pool_size") >= 1
    assert _value(after, "workflow_runs_events_dispatched_total") >= 0


async def test_client_chosen_operation_names_cannot_grow_the_metrics_without_bound(
    server: str, client: GraphQLClient
) -> None:
    for i in range(230):
        await client.execute(f"query Name{i} {{ __typename }}")
    await client.execute("query `bad { __typename }")
    samples = await _metrics(server)
    names = {
        dict(labels).get("operation")
        for (name, labels) in samples
        if name == "workflow_runs_graphql_operations_total"
    }
    assert len(names) <= 203  # 200 names, and "other", "anonymous", "invalid"
    assert "other" in names


async def test_a_masked_error_and_its_log_line_share_a_request_id(
    server: str, client: GraphQLClient, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await create_run(client)
    conn = await asyncpg.connect(database_url)
    await conn.execute("ALTER TABLE workflow_runs RENAME COLUMN error TO broken")  # a bug, say
    await conn.close()
    with caplog.at_level(logging.ERROR):
        body = await client.execute('{ workflowRuns(workspaceId: "ws-a") { nodes { id error } } }')
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["message"] == "Internal server error."
    text = json.dumps(body)
    assert "does not exist" not in text
    assert "UndefinedColumn" not in text
    assert "Traceback" not in text
    request_id = error["extensions"]["requestId"]
    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "error"
    assert request_id in line["message"]
    assert "UndefinedColumnError" in line["exception"]


def test_log_lines_are_json_with_the_current_request_id() -> None:
    token_ = REQUEST_ID.set("req-42")
    try:
        record = logging.LogRecord(
            "workflow", logging.WARNING, __file__, 1, "hello %s", ("you",), None
        )
        line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token_)
    assert line["message"] == "hello you"
    assert line["request_id"] == "req-42"
    assert line["level"] == "warning"


async def test_readyz_fails_while_the_database_is_down_and_recovers(
    settings: Settings, tmp_path: Path
) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", settings={"fsync": "off"})
    dsn = await asyncio.to_thread(pg.start)
    try:
        conn = await connect(dsn)
        await migrate(conn)
        await conn.close()
        app = create_app(on_database(settings, dsn))
        async with running(app) as server, httpx.AsyncClient() as http:

            async def ready() -> int:
                return (await http.get(f"{server}/readyz")).status_code

            await wait_for(lambda: _is(ready, 200), what="ready")
            await asyncio.to_thread(pg.stop)
            await wait_for(lambda: _is(ready, 503), what="not ready while down")
            body = (await http.get(f"{server}/readyz")).json()
            assert body["status"] == "unavailable" and body["problems"]
            assert (await http.get(f"{server}/healthz")).status_code == 200
            await asyncio.to_thread(pg.start)
            await wait_for(lambda: _is(ready, 200), within=20, what="ready again")
    finally:
        await asyncio.to_thread(pg.stop)


async def _is(probe, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await probe() == expected)
