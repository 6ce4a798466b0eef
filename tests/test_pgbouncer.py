"""The service behind PgBouncer in transaction mode (Debian's 1.18: no prepared statements)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import asyncpg
import pytest
from starlette.applications import Starlette

from server.app import create_app
from server.config import Settings
from tests.pgbouncer import PGBOUNCER, PgBouncer, start_pgbouncer
from tests.support import (
    GraphQLClient,
    LiveEvents,
    create_run,
    running,
    subscribers_registered,
    token,
)

pytestmark = pytest.mark.skipif(
    PGBOUNCER is None, reason="needs Debian's pgbouncer (.ci/run installs it)"
)


@pytest.fixture
def narrow_bouncer(admin_dsn: str) -> Iterator[PgBouncer]:
    # Two server connections for the whole pool: transaction pooling or nothing works.
    bouncer = start_pgbouncer(admin_dsn, pool_size=2)
    try:
        yield bouncer
    finally:
        bouncer.stop()


async def test_queries_mutations_and_subscriptions_work_through_transaction_pooling(
    settings: Settings, database_url: str, narrow_bouncer: PgBouncer
) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    app: Starlette = create_app(
        replace(
            settings,
            database_url=narrow_bouncer.dsn(name),
            listen_url=database_url,
            pgbouncer=True,
            pool_max_size=10,
        )
    )
    async with running(app) as server:
        clients = [GraphQLClient(server, token()) for _ in range(10)]
        async with LiveEvents(server, token()) as live:
            await subscribers_registered(app, 1)
            # Ten clients at once share PgBouncer's two server connections.
            runs = await asyncio.gather(*(create_run(c) for c in clients))
            counts = await asyncio.gather(
                *(c.data('{ workflowRuns(workspaceId: "ws-a") { totalCount } }') for c in clients)
            )
            events = await live.wait_for_count(10)
        for c in clients:
            await c.aclose()
        assert {e["runId"] for e in events} == {r["id"] for r in runs}
        assert all(c["workflowRuns"]["totalCount"] == 10 for c in counts)
        # The service's statement timeout still applies: PgBouncer refuses it at startup, so
        # each transaction sets it.
        admin = await asyncpg.connect(database_url)
        backends = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'workflow-runs' AND datname = current_database()"
        )
        await admin.close()
    assert backends <= 2
