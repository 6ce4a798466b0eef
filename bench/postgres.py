"""PostgreSQL for the benchmarks: an embedded server in a fresh temp dir (default durability),
or the server named by --dsn; a scratch database on it, migrated, dropped afterwards; seeding."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from db.migrate import migrate
from db.pool import connect
from server.embedded import EmbeddedPostgres

log = logging.getLogger(__name__)


def with_database(dsn: str, database: str) -> str:
    """The same server DSN, naming another database."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


@contextlib.contextmanager
def embedded(
    *, tcp_port: int | None = None, settings: dict[str, str] | None = None
) -> Iterator[str]:
    """An embedded PostgreSQL in a fresh temp dir, with its default (durable) settings; yields
    an admin DSN. Always stopped and removed afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="wr-bench-pg-"))
    server = EmbeddedPostgres(data_dir, tcp_port=tcp_port, settings=settings or {})
    try:
        log.info("starting embedded PostgreSQL in %s", data_dir)
        dsn = server.start()
        yield server.tcp_dsn() if tcp_port else dsn
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def admin_dsn(given: str | None, settings: dict[str, str] | None = None) -> Iterator[str]:
    """The server to use: `given` (--dsn) as is, or a new embedded one with `settings`."""
    if given:
        yield given
        return
    with embedded(settings=settings) as dsn:
        yield dsn


@contextlib.asynccontextmanager
async def scratch_database(admin: str, prefix: str) -> AsyncIterator[str]:
    """A new, migrated database on the server of `admin`; dropped (with force) afterwards."""
    name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        dsn = with_database(admin, name)
        target = await connect(dsn)
        try:
            await migrate(target)
        finally:
            await target.close()
        try:
            yield dsn
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# Status mix of the list-query seed, cumulative: completed 60%, failed 15%, running 10%,
# pending 8%, cancelled 4%, timed_out 2%, paused 0.7%, waiting 0.3%.
STATUS_MIX = (
    ("completed", 0.60),
    ("failed", 0.15),
    ("running", 0.10),
    ("pending", 0.08),
    ("cancelled", 0.04),
    ("timed_out", 0.02),
    ("paused", 0.007),
    ("waiting", 0.003),
)


def _status_case() -> str:
    branches, total = [], 0.0
    for status, share in STATUS_MIX[:-1]:
        total += share
        branches.append(f"WHEN r < {total:.4f} THEN '{status}'")
    return f"CASE {' '.join(branches)} ELSE '{STATUS_MIX[-1][0]}' END"


# One set-based statement. created_at falls on 5-second slots over 30 days (so some runs share
# it: the id breaks ties); rows are inserted in created_at order and ids follow it, as the
# service's time-sortable ids do. Terminal runs get completed_at (a CHECK requires it exactly
# then); pending runs, and some cancelled or paused ones, never started.
_SEED = f"""
WITH base AS (
    SELECT g, random() AS r, random() AS rd,
           timestamptz '2026-11-01 00:00:00+00'
               - floor(random() * 518400) * interval '5 seconds' AS created
      FROM generate_series(1, $2::int) AS g
), typed AS (
    SELECT row_number() OVER (ORDER BY created, g) AS n, g, created, rd, {_status_case()} AS status
      FROM base
), timed AS (
    SELECT n, g, created, status,
           CASE WHEN status = 'pending' OR (status IN ('cancelled', 'paused') AND rd < 0.3)
                THEN NULL ELSE created + (1 + floor(rd * 30)) * interval '1 second' END AS started,
           CASE WHEN status IN ('completed', 'failed', 'cancelled', 'timed_out')
                THEN created + (40 + floor(rd * 3600)) * interval '1 second' END AS completed,
           CASE WHEN status IN ('running', 'waiting', 'paused')
                THEN created + (35 + floor(rd * 600)) * interval '1 second' END AS touched
      FROM typed
)
INSERT INTO workflow_runs (
    workspace_id, id, subject_id, status, mode, input, output, error, triggered_by, user_id,
    started_at, completed_at, created_at, updated_at, parent_run_id)
SELECT $1::text, 'run_' || lpad(n::text, 10, '0'), 'wf_' || (g % 300),
       status, CASE WHEN g % 5 = 0 THEN 'sync' ELSE 'async' END,
       jsonb_build_object('n', g, 'source', 'bench'),
       CASE WHEN status = 'completed' THEN jsonb_build_object('ok', true) END,
       CASE WHEN status = 'failed' THEN 'step ' || (g % 7) || ' failed' END,
       (ARRAY['workflow', 'agent', 'swarm', 'user', 'event'])[1 + g % 5], 'user_' || (g % 40),
       started, completed, created, coalesce(completed, touched, started, created),
       -- With $3, trees of four: each run whose number is not a multiple of 4 has the
       -- nearest earlier multiple (inserted before it) as parent.
       CASE WHEN $3::bool AND n % 4 <> 0 AND n > 4
            THEN 'run_' || lpad((n / 4 * 4)::text, 10, '0') END
  FROM timed
 ORDER BY n
"""


async def seed_runs(
    conn: asyncpg.Connection,
    workspace_id: str,
    count: int,
    *,
    analyze: bool = True,
    parents: bool = False,
) -> None:
    """Insert `count` runs into one workspace with set-based SQL, then (by default) ANALYZE;
    with `parents`, in trees of four."""
    await conn.execute("SELECT setseed(0.42)")
    await conn.execute(_SEED, workspace_id, count, parents)
    if analyze:
        await conn.execute("VACUUM (ANALYZE) workflow_runs")
