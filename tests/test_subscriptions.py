"""workflowRunStatusChanged: live events in order, filters, resume, refusals, both protocols."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from tests.support import (
    GraphQLClient,
    LiveEvents,
    create_run,
    subscribers_registered,
    token,
)

START = "mutation($id: ID!) { startWorkflowRun(id: $id) { id status } }"
COMPLETE = "mutation($id: ID!) { completeWorkflowRun(id: $id, output: {ok: true}) { status } }"
FAIL = 'mutation($id: ID!) { failWorkflowRun(id: $id, error: "boom") { status } }'


async def _drive(client: GraphQLClient, run_id: str, *mutations: str) -> None:
    for mutation in mutations:
        await client.data(mutation, {"id": run_id})


async def test_events_arrive_in_commit_order_with_their_statuses(
    app: Starlette, server: str, client: GraphQLClient
) -> None:
    async with LiveEvents(server, token(["ws-a"])) as live:
        await subscribers_registered(app, 1)
        run = await create_run(client)
        await _drive(client, run["id"], START, COMPLETE)
        events = await live.wait_for_count(3)

    assert [(e["previousStatus"], e["status"]) for e in events] == [
        (None, "PENDING"),
        ("PENDING", "RUNNING"),
        ("RUNNING", "COMPLETED"),
    ]
    assert all(e["run"]["status"] == e["status"] for e in events)
    assert all(e["runId"] == run["id"] and e["workspaceId"] == "ws-a" for e in events)
    cursors = [e["cursor"] for e in events]
    assert cursors == sorted(cursors) and len(set(cursors)) == 3


async def test_run_and_status_filters_narrow_the_stream(
    app: Starlette, server: str, client: GraphQLClient
) -> None:
    watched = await create_run(client)
    other = await create_run(client)
    async with (
        LiveEvents(server, token(["ws-a"]), run_id=watched["id"]) as by_run,
        LiveEvents(server, token(["ws-a"]), status=["COMPLETED", "FAILED"]) as by_status,
    ):
        await subscribers_registered(app, 2)
        await _drive(client, other["id"], START, FAIL)
        await _drive(client, watched["id"], START, COMPLETE)
        run_events = await by_run.wait_for_count(2)
        status_events = await by_status.wait_for_count(2)

    assert [(e["runId"], e["status"]) for e in run_events] == [
        (watched["id"], "RUNNING"),
        (watched["id"], "COMPLETED"),
    ]
    assert [(e["runId"], e["status"]) for e in status_events] == [
        (other["id"], "FAILED"),
        (watched["id"], "COMPLETED"),
    ]


async def test_resume_after_a_cursor_replays_exactly_the_later_events(
    app: Starlette, server: str, client: GraphQLClient
) -> None:
    run = await create_run(client)
    async with LiveEvents(server, token(["ws-a"]), after=None) as live:
        await subscribers_registered(app, 1)
        await _drive(client, run["id"], START)
        first = await live.wait_for_count(1)
    kth = first[0]["cursor"]

    later = await create_run(client)
    await _drive(client, run["id"], COMPLETE)
    await _drive(client, later["id"], START, FAIL)

    async with LiveEvents(server, token(["ws-a"]), after=kth) as resumed:
        events = await resumed.wait_for_count(4)
        await subscribers_registered(app, 1)
        await _drive(client, later["id"])  # nothing; the stream stays as it is
        more = await create_run(client)
        events = await resumed.wait_for_count(5)

    assert [(e["runId"], e["status"]) for e in events] == [
        (later["id"], "PENDING"),
        (run["id"], "COMPLETED"),
        (later["id"], "RUNNING"),
        (later["id"], "FAILED"),
        (more["id"], "PENDING"),
    ]


async def test_a_foreign_workspace_is_refused_on_that_subscription_alone(
    app: Starlette, server: str, client: GraphQLClient
) -> None:
    async with LiveEvents(server, token(["ws-a"]), workspace="ws-b") as foreign:
        await _wait_error(foreign)
    assert "FORBIDDEN" in repr(foreign.error) or "grant" in repr(foreign.error)


async def _wait_error(live: LiveEvents) -> Any:
    from tests.support import wait_for

    await wait_for(lambda: live.error is not None, what="the subscription to fail")
    return live.error


async def test_the_legacy_graphql_ws_protocol_delivers_events(
    app: Starlette, server: str, client: GraphQLClient
) -> None:
    async with LiveEvents(server, token(["ws-a"]), legacy=True) as live:
        await subscribers_registered(app, 1)
        run = await create_run(client)
        await _drive(client, run["id"], START)
        events = await live.wait_for_count(2)
    assert [e["status"] for e in events] == ["PENDING", "RUNNING"]


async def test_the_event_cursor_query_lets_a_client_subscribe_without_a_gap(
    server: str, client: GraphQLClient
) -> None:
    query = "query($ws: ID!) { workflowRunEventCursor(workspaceId: $ws) }"
    empty = (await client.data(query, {"ws": "ws-a"}))["workflowRunEventCursor"]
    before = await create_run(client)
    # Read the view and the cursor, then subscribe after it: later changes all arrive.
    cursor = (await client.data(query, {"ws": "ws-a"}))["workflowRunEventCursor"]
    after = await create_run(client)
    async with LiveEvents(server, token(["ws-a"]), after=cursor) as live:
        events = await live.wait_for_count(1)
    assert [e["runId"] for e in events] == [after["id"]]
    # From the empty stream's cursor, everything is replayed.
    async with LiveEvents(server, token(["ws-a"]), after=empty) as live:
        everything = await live.wait_for_count(2)
    assert [e["runId"] for e in everything] == [before["id"], after["id"]]
    denied = await client.error(query, {"ws": "ws-z"})
    assert denied["extensions"]["code"] == "FORBIDDEN"


async def test_a_host_with_subscriptions_off_refuses_them_and_still_writes(
    settings: Any, database_url: str
) -> None:
    from dataclasses import replace

    import asyncpg

    from db.listener import LISTENER_APPLICATION_NAME
    from server.app import create_app
    from tests.support import running

    app = create_app(replace(settings, subscriptions=False))
    async with running(app) as base_url:
        client = GraphQLClient(base_url, token(["ws-a"]))
        try:
            run = await create_run(client, "ws-a")
            await _drive(client, run["id"], START, COMPLETE)
            async with LiveEvents(base_url, token(["ws-a"])) as live:
                error = await _wait_error(live)
            assert "FORBIDDEN" in repr(error) and "off on this host" in repr(error)
            ready = await client.http.get(f"{base_url}/readyz")
            assert ready.status_code == 200, ready.text
        finally:
            await client.aclose()
        # No LISTEN connection was opened for this host.
        conn = await asyncpg.connect(database_url)
        try:
            listeners = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = $1",
                LISTENER_APPLICATION_NAME,
            )
        finally:
            await conn.close()
        assert listeners == 0
