"""Subscriptions across processes and through faults: nothing committed is lost or doubled.

The writers use one app instance and the subscribers another, each with its own pool, fan-out
and LISTEN connection, as two server processes would. The subscribers' poll (the safety net)
is set to a minute, so that within the tests' deadlines events can only arrive through NOTIFY
hints or the catch-up a reconnect triggers.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
from starlette.applications import Starlette

from db.fanout import FanoutLimits
from db.listener import LISTENER_APPLICATION_NAME
from db.migrate import migrate
from db.pool import connect
from server.app import create_app
from server.config import Settings
from server.embedded import EmbeddedPostgres
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

NO_POLL = FanoutLimits(poll_interval=60.0)
START = "mutation($id: ID!) { startWorkflowRun(id: $id) { status } }"
COMPLETE = "mutation($id: ID!) { completeWorkflowRun(id: $id) { status } }"


async def _stored_events(dsn: str, workspace: str = "ws-a") -> list[tuple[int, str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT seq, run_id, status FROM workflow_run_events "
            "WHERE workspace_id = $1 ORDER BY seq",
            workspace,
        )
    finally:
        await conn.close()
    return [(r["seq"], r["run_id"], r["status"].upper()) for r in rows]


def _seq(cursor: str) -> int:
    return int(cursor[8:], 16)


def _received(live: LiveEvents) -> list[tuple[int, str, str]]:
    return [(_seq(e["cursor"]), e["runId"], e["status"]) for e in live.events]


async def _write(client: GraphQLClient, runs: int, *, tolerate_errors: bool = False) -> None:
    """Create runs and take each through start and complete, as a worker would."""
    for _ in range(runs):
        try:
            run = await create_run(client)
            await client.data(START, {"id": run["id"]})
            await client.data(COMPLETE, {"id": run["id"]})
        except (AssertionError, OSError):
            if not tolerate_errors:
                raise


async def test_a_subscriber_on_one_server_sees_changes_made_through_another(
    settings: Settings,
) -> None:
    writer_app = create_app(settings)
    reader_app = create_app(replace(settings, fanout=NO_POLL))
    async with running(writer_app) as writer, running(reader_app) as reader:
        client = GraphQLClient(writer, token())
        async with LiveEvents(reader, token()) as live:
            await subscribers_registered(reader_app, 1)
            await _write(client, 3)
            await live.wait_for_count(9)
        await client.aclose()
    assert _received(live) == await _stored_events(settings.database_url or "")


async def test_subscribers_miss_nothing_when_the_listener_backend_is_terminated(
    settings: Settings, database_url: str
) -> None:
    writer_app = create_app(settings)
    reader_app = create_app(replace(settings, fanout=NO_POLL))
    async with running(writer_app) as writer, running(reader_app) as reader:
        client = GraphQLClient(writer, token())
        listener = reader_app.state.runtime.fanout.listener
        async with (
            LiveEvents(reader, token()) as everything,
            LiveEvents(reader, token(), status=["COMPLETED"]) as completions,
        ):
            await subscribers_registered(reader_app, 2)
            await _write(client, 5)
            admin = await asyncpg.connect(database_url)
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1 AND datname = current_database()",
                LISTENER_APPLICATION_NAME,
            )
            await admin.close()
            assert killed == 2  # the writer's listener and the reader's
            await _write(client, 5)  # committed while the reader may still be reconnecting
            await wait_for(lambda: listener.reconnects >= 1, what="the listener to reconnect")
            await _write(client, 5)
            stored = await _stored_events(database_url)
            await everything.wait_for_count(len(stored))
            await completions.wait_for_count(15)
        await client.aclose()
    assert _received(everything) == stored
    assert _received(completions) == [e for e in stored if e[2] == "COMPLETED"]


async def test_subscribers_get_every_committed_event_once_across_a_database_restart(
    settings: Settings, tmp_path: Path
) -> None:
    pg = EmbeddedPostgres(tmp_path / "restarting", settings={"fsync": "off"})
    dsn = await asyncio.to_thread(pg.start)
    try:
        conn = await connect(dsn)
        await migrate(conn)
        await conn.close()
        own = on_database(settings, dsn)
        writer_app = create_app(own)
        reader_app = create_app(replace(own, fanout=NO_POLL))
        async with running(writer_app) as writer, running(reader_app) as reader:
            client = GraphQLClient(writer, token())
            async with (
                LiveEvents(reader, token()) as first,
                LiveEvents(reader, token(), status=["RUNNING"]) as second,
            ):
                await subscribers_registered(reader_app, 2)
                writers = [
                    asyncio.create_task(_write(client, 15, tolerate_errors=True)) for _ in range(3)
                ]
                await wait_for(lambda: len(first.events) >= 20, what="traffic before the restart")
                await asyncio.to_thread(pg.stop)
                # While it is down, requests fail at once with a clear, retryable error.
                down = await client.execute('{ workflowRuns(workspaceId: "ws-a") { totalCount } }')
                assert down["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
                assert down["errors"][0]["extensions"]["retryable"] is True
                assert "unavailable" in down["errors"][0]["message"]
                await asyncio.to_thread(pg.start)
                await asyncio.gather(*writers)
                # Queries recover by themselves.
                await wait_for(_answers(client), within=20, what="queries to work again")
                await _write(client, 2)
                stored = await _stored_events(dsn)
                await first.wait_for_count(len(stored), within=30)
                expected_running = [e for e in stored if e[2] == "RUNNING"]
                await second.wait_for_count(len(expected_running), within=30)
            await client.aclose()
        assert _received(first) == stored
        assert _received(second) == expected_running
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(pg.stop)


def _answers(client: GraphQLClient) -> Any:
    async def check() -> bool:
        body = await client.execute('{ workflowRuns(workspaceId: "ws-a") { totalCount } }')
        return "errors" not in body

    return check


async def test_a_resume_from_a_pruned_cursor_fails_with_cursor_expired(
    app: Starlette, server: str, client: GraphQLClient, database_url: str
) -> None:
    from db.events import prune_events

    run = await create_run(client)
    await client.data(START, {"id": run["id"]})
    events = (
        await client.data(
            "query($id: ID!) { workflowRun(id: $id) { events { cursor } } }", {"id": run["id"]}
        )
    )["workflowRun"]["events"]
    old_cursor = events[0]["cursor"]
    conn = await connect(database_url)
    try:
        from datetime import timedelta

        assert await prune_events(conn, timedelta(0)) == 2
    finally:
        await conn.close()

    async with LiveEvents(server, token(), after=old_cursor) as expired:
        await wait_for(lambda: expired.error is not None, what="the refusal")
    assert "CURSOR_EXPIRED" in repr(expired.error) or "retention" in repr(expired.error)

    # A cursor at the pruned edge still resumes: nothing after it is missing.
    async with LiveEvents(server, token(), after=events[1]["cursor"]) as resumed:
        await subscribers_registered(app, 1)
        await client.data(COMPLETE, {"id": run["id"]})
        [event] = await resumed.wait_for_count(1)
    assert event["status"] == "COMPLETED"


async def test_the_background_pruner_removes_events_past_the_retention_window(
    settings: Settings, database_url: str
) -> None:
    from datetime import timedelta

    app = create_app(replace(settings, event_retention=timedelta(0), prune_interval_s=0.05))
    async with running(app) as server:
        client = GraphQLClient(server, token())
        run = await create_run(client)
        conn = await asyncpg.connect(database_url)
        try:

            async def pruned() -> bool:
                left = await conn.fetchval("SELECT count(*) FROM workflow_run_events")
                return bool(left == 0)

            await wait_for(pruned, what="the pruner to run")
            bounds = await conn.fetchrow(
                "SELECT pruned_through, last_seq FROM workflow_run_streams"
            )
        finally:
            await conn.close()
        # The run itself stays; only its history beyond the window is gone.
        data = await client.data(
            "query($id: ID!) { workflowRun(id: $id) { status events { status } } }",
            {"id": run["id"]},
        )
        await client.aclose()
    assert tuple(bounds) == (1, 1)
    assert data["workflowRun"] == {"status": "PENDING", "events": []}
