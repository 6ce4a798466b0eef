"""Connections scoped to the workspaces a unit of work may touch (row-level security).

The service's queries run as the role `workflow_runs_app`, which migration 0002's policies
confine to the workspaces named in the setting `workflow_runs.workspaces`. How that is arranged
depends on how connections reach PostgreSQL:

- `SESSION` (direct connections, the default): the pool's connections take the role when they
  open and never leave it, so even a query that forgot its scope sees nothing but what its
  connection was last scoped to. A connection's workspaces are set only when they change:
  in steady state, scoping costs no round trip.
- `TRANSACTION` (behind PgBouncer in transaction mode, where session state does not stay with
  the client): each unit of work is a transaction that sets role, workspaces and statement
  timeout locally, in one statement.
- `OFF`: plain connections; the queries still filter by workspace themselves.

Work that must see every workspace (retention, migrations) does not use the app pool.
"""

from __future__ import annotations

import enum
import weakref
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

APP_ROLE = "workflow_runs_app"


class Tenancy(enum.Enum):
    OFF = "off"
    SESSION = "session"
    TRANSACTION = "transaction"

    @classmethod
    def choose(cls, *, row_level_security: bool, pgbouncer: bool) -> Tenancy:
        if not row_level_security:
            return cls.OFF
        return cls.TRANSACTION if pgbouncer else cls.SESSION


_SET_WORKSPACES = "SELECT set_config('workflow_runs.workspaces', $1, false)"
_ENTER_TRANSACTION = """
SELECT set_config('role', 'workflow_runs_app', true),
       set_config('workflow_runs.workspaces', $1, true),
       set_config('statement_timeout', $2, true)
"""

# What each open connection is scoped to, in SESSION mode (keyed by the driver's connection:
# a reconnected slot is a new object, and starts unscoped).
_scoped_to: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def workspaces_setting(workspaces: Iterable[str]) -> str:
    """The value of `workflow_runs.workspaces`: a PostgreSQL array literal (migration 0004).

    Every element is quoted, with `"` and `\\` escaped: any name reads back as itself.
    """
    quoted = (
        '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        for name in sorted(set(workspaces))
    )
    return "{" + ",".join(quoted) + "}"


async def take_app_role(conn: asyncpg.Connection) -> None:
    """Pool `init` hook in SESSION mode: the connection becomes the app role for good."""
    await conn.execute(f"SET ROLE {APP_ROLE}")


@asynccontextmanager
async def scoped(
    pool: asyncpg.Pool,
    workspaces: Iterable[str],
    *,
    mode: Tenancy = Tenancy.SESSION,
    isolation: str | None = None,
    statement_timeout_ms: int = 30_000,
) -> AsyncIterator[asyncpg.Connection]:
    """A connection that sees only `workspaces`, for one unit of work.

    `isolation` asks for a transaction of that level (e.g. "repeatable_read"); otherwise
    statements run in autocommit, except in TRANSACTION mode.
    """
    wanted = workspaces_setting(workspaces)
    async with pool.acquire() as conn:
        if mode is Tenancy.TRANSACTION:
            async with conn.transaction(isolation=isolation):
                await conn.execute(_ENTER_TRANSACTION, wanted, str(statement_timeout_ms))
                yield conn
            return
        if mode is Tenancy.SESSION:
            driver_connection = getattr(conn, "_con", conn)  # under the pool's proxy
            if _scoped_to.get(driver_connection) != wanted:
                # Forget first: if setting fails midway, the next use sets it again.
                _scoped_to.pop(driver_connection, None)
                await conn.execute(_SET_WORKSPACES, wanted)
                _scoped_to[driver_connection] = wanted
        if isolation is None:
            yield conn
            return
        async with conn.transaction(isolation=isolation):
            yield conn


async def no_reset(conn: asyncpg.Connection) -> None:
    """Pool release hook: nothing to reset (scopes are re-checked at each use)."""
