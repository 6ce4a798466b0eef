"""Versioned SQL migrations, applied in order under an advisory lock."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

# Any constant shared by every process that migrates this database; "wfruns" in ASCII.
_LOCK_KEY = 0x7766_7275_6E73

_FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_HISTORY = """
CREATE TABLE IF NOT EXISTS workflow_runs_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found = []
    for entry in resources.files("db").joinpath("migrations").iterdir():
        match = _FILENAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def latest_version() -> int:
    """The version a fully migrated database is at."""
    return migrations()[-1].version


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply pending migrations in one transaction; returns the versions applied.

    The transaction-scoped advisory lock lets several processes start at once: the first
    migrates, the others wait for it and then find nothing left to do.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(_CREATE_HISTORY)
        applied = {
            r["version"] for r in await conn.fetch("SELECT version FROM workflow_runs_migrations")
        }
        done = []
        for migration in migrations():
            if migration.version in applied:
                continue
            log.info("applying migration %04d_%s", migration.version, migration.name)
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO workflow_runs_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            done.append(migration.version)
        return done


async def current_version(conn: asyncpg.Connection) -> int | None:
    """The newest applied version, or None when the database was never migrated."""
    exists = await conn.fetchval("SELECT to_regclass('workflow_runs_migrations') IS NOT NULL")
    if not exists:
        return None
    version: int | None = await conn.fetchval("SELECT max(version) FROM workflow_runs_migrations")
    return version
