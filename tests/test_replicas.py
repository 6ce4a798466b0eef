"""Reads on a real streaming replica: routing, lag and outages, read-your-writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from db.migrate import migrate
from db.pool import connect
from server.app import create_app
from server.config import Settings
from server.embedded import EmbeddedPostgres
from tests.support import GraphQLClient, create_run, on_database, running, token, wait_for

LIST = '{ workflowRuns(workspaceId: "ws-a") { totalCount nodes { id } } }'


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedPostgres, EmbeddedPostgres]]:
    primary = EmbeddedPostgres(tmp_path / "primary", settings={"fsync": "off"})
    replica = EmbeddedPostgres(tmp_path / "replica", settings={"fsync": "off"})
    try:
        await asyncio.to_thread(primary.start)
        conn = await connect(primary.dsn())
        await migrate(conn)
        await conn.close()
        await asyncio.to_thread(replica.clone_from, primary)
        await asyncio.to_thread(replica.start)
        yield primary, replica
    finally:
        await asyncio.to_thread(replica.stop)
        await asyncio.to_thread(primary.stop)


async def _service_backends(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'workflow-runs'"
        )
    finally:
        await conn.close()
    return count


async def _total(client: GraphQLClient, headers: dict[str, str] | None = None) -> int:
    response = await client.http.post(
        client.url,
        json={"query": LIST},
        headers={**client.headers(client.token), **(headers or {})},
    )
    body = response.json()
    assert "errors" not in body, body
    total: int = body["data"]["workflowRuns"]["totalCount"]
    return total


async def test_reads_use_the_replica_and_fall_back_to_the_primary(
    settings: Settings, cluster: tuple[EmbeddedPostgres, EmbeddedPostgres]
) -> None:
    primary, replica = cluster
    app = create_app(
        on_database(settings, primary.dsn(), read_urls=(replica.dsn(),), max_replica_lag_ms=1_000)
    )
    async with running(app) as server:
        client = GraphQLClient(server, token())
        router = app.state.runtime.router
        [standby] = router.replicas
        await wait_for(lambda: standby.healthy, what="the replica to serve reads")

        # Writes go to the primary; reads, once the replica has the run, to the replica.
        run = await create_run(client)
        await wait_for(_sees(client, 1), what="the replica to replay the create")
        served_before = standby.reads
        for _ in range(5):
            assert await _total(client) == 1
        assert standby.reads >= served_before + 5
        assert await _service_backends(replica.dsn()) >= 1

        # Replay paused past the lag limit: the replica is skipped, reads stay correct.
        admin = await asyncpg.connect(replica.dsn())
        await admin.execute("SELECT pg_wal_replay_pause()")
        second = await create_run(client)
        await wait_for(lambda: not standby.healthy, what="the lagging replica to be skipped")
        primary_reads = router.primary_reads
        assert await _total(client) == 2
        assert router.primary_reads > primary_reads
        await admin.execute("SELECT pg_wal_replay_resume()")
        await admin.close()
        await wait_for(lambda: standby.healthy, what="the replica to catch up")
        assert await _total(client) == 2

        # The replica down: reads go to the primary and stay correct.
        await asyncio.to_thread(replica.stop)
        await create_run(client)
        await wait_for(_sees(client, 3), what="reads to stay correct")
        assert not standby.healthy
        await client.aclose()
    assert run["id"] != second["id"]


async def test_a_mutation_names_its_commit_position_for_read_your_writes(
    settings: Settings, cluster: tuple[EmbeddedPostgres, EmbeddedPostgres]
) -> None:
    primary, replica = cluster
    app = create_app(on_database(settings, primary.dsn(), read_urls=(replica.dsn(),)))
    async with running(app) as server:
        client = GraphQLClient(server, token())
        [standby] = app.state.runtime.router.replicas
        await wait_for(lambda: standby.healthy, what="the replica to serve reads")
        admin = await asyncpg.connect(replica.dsn())
        await admin.execute("SELECT pg_wal_replay_pause()")  # the replica stays behind
        try:
            body = await client.execute(
                'mutation { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "wf", '
                "triggeredBy: USER}) { id } }"
            )
            lsn = body["extensions"]["lsn"]
            assert "/" in lsn
            # Naming the position, the read is served where the write is visible.
            assert await _total(client, {"X-Min-LSN": lsn}) == 1
            malformed = await client.http.post(
                client.url,
                json={"query": LIST},
                headers={**client.headers(client.token), "X-Min-LSN": "yesterday"},
            )
            assert malformed.status_code == 400
        finally:
            await admin.execute("SELECT pg_wal_replay_resume()")
            await admin.close()
        # Once replayed, the replica itself can serve it.
        await wait_for(lambda: standby.healthy, what="replay to resume")
        await wait_for(
            lambda: standby.replayed >= _parse(lsn), what="the replica to reach the position"
        )
        reads = standby.reads
        assert await _total(client, {"X-Min-LSN": lsn}) == 1
        assert standby.reads > reads
        await client.aclose()


def _parse(lsn: str) -> int:
    from db.replicas import parse_lsn

    value = parse_lsn(lsn)
    assert value is not None
    return value


def _sees(client: GraphQLClient, count: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await _total(client) == count

    return check
