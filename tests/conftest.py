"""Database and server fixtures.

One PostgreSQL serves the whole session: the embedded one from the wheel by default, or the
server named by TEST_DATABASE_URL. A migrated template database is made once; each test gets
its own database cloned from it (CREATE DATABASE ... TEMPLATE) and dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from starlette.applications import Starlette

from db.migrate import migrate
from db.pool import connect, create_pool
from server.app import create_app
from server.config import Settings
from server.embedded import EmbeddedPostgres
from tests.pgbouncer import PGBOUNCER, PgBouncer, start_pgbouncer
from tests.support import SECRET, GraphQLClient, running, token, with_database


@pytest.fixture(scope="session")
def admin_dsn() -> Iterator[str]:
    """A DSN with the right to create databases, on the session's PostgreSQL."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    # A fresh data directory per run: a server left over from a killed run is never reused.
    data_dir = Path(tempfile.mkdtemp(prefix="wr-test-pg-"))
    server = EmbeddedPostgres(
        data_dir,
        settings={
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
        },
    )
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_db(admin_dsn: str) -> AsyncIterator[str]:
    """A migrated database that each test's database is cloned from."""
    name = f"wr_template_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await connect(with_database(admin_dsn, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(admin_dsn: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test alone."""
    name = f"wr_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        yield with_database(admin_dsn, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's database, configured as the service configures its own."""
    pool = await create_pool(database_url, min_size=1, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def pgbouncer(admin_dsn: str) -> Iterator[PgBouncer | None]:
    """With TEST_PGBOUNCER=1, PgBouncer in transaction mode in front of the session's server."""
    if not os.environ.get("TEST_PGBOUNCER"):
        yield None
        return
    if PGBOUNCER is None:
        pytest.skip("TEST_PGBOUNCER=1 needs Debian's pgbouncer (.ci/run installs it)")
    bouncer = start_pgbouncer(admin_dsn)
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, pgbouncer: PgBouncer | None) -> Settings:
    base = replace(
        Settings.from_env({}),
        database_url=database_url,
        jwt_secret=SECRET,
        data_dir=tmp_path,
        pool_min_size=1,
    )
    if pgbouncer is None:
        return base
    # The service's queries through PgBouncer; LISTEN needs a direct connection.
    name = urlsplit(database_url).path.lstrip("/")
    return replace(base, database_url=pgbouncer.dsn(name), listen_url=database_url, pgbouncer=True)


@pytest.fixture
def app(settings: Settings) -> Starlette:
    """The service's ASGI app for this test; `app.state.runtime` holds its pool and counters."""
    return create_app(settings)


@pytest.fixture
async def server(app: Starlette) -> AsyncIterator[str]:
    """The service on a real uvicorn, on this test's database; yields its base URL."""
    async with running(app) as base_url:
        yield base_url


@pytest.fixture
async def client(server: str) -> AsyncIterator[GraphQLClient]:
    """A GraphQL client whose token reads and writes workspaces ws-a and ws-b."""
    client = GraphQLClient(server, token(["ws-a", "ws-b"]))
    yield client
    await client.aclose()
