"""The asyncpg pool: JSON codecs and the session settings every connection shares."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

from db.tenancy import no_reset, take_app_role

log = logging.getLogger(__name__)

APPLICATION_NAME = "workflow-runs"


class JSONText(str):
    """A JSON value as PostgreSQL wrote it, undecoded.

    Stored JSON (a run's input and output) is passed to clients byte for byte as the database
    holds it: never re-encoded, so a number keeps its digits (2.50, 10**30) and every path
    that serves it, generic or compiled to SQL, sends the same bytes. `orjson.loads` reads it
    where a value is needed.
    """

    __slots__ = ()


def encode_json(value: Any) -> str:
    """JSON text for a json/jsonb parameter."""
    if isinstance(value, JSONText):
        return str(value)
    return orjson.dumps(value).decode()


async def init_connection(conn: asyncpg.Connection) -> None:
    """JSON in: any Python value, encoded by orjson. jsonb out: JSONText."""
    await conn.set_type_codec(
        "jsonb", encoder=encode_json, decoder=JSONText, schema="pg_catalog", format="text"
    )
    await conn.set_type_codec(
        "json", encoder=encode_json, decoder=orjson.loads, schema="pg_catalog", format="text"
    )


class Pool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg is untyped here
    """asyncpg's pool, releasing without a new Task when the release cannot be interrupted.

    asyncpg shields every release in a Task of its own, so that a cancelled caller still
    returns its connection; that Task and the loop turn it waits for were a tenth of a lookup
    by id's CPU (docs/benchmarks.md). A release that has nothing to wait for (no transaction
    to roll back, no cancelled query in flight, no close due, and our reset hook, which does
    nothing) never yields to the loop, so no cancellation can reach it: it runs in place.
    Every other release goes through asyncpg's, shield and all.
    """

    async def release(
        self,
        connection: Any,
        *,
        timeout: float | None = None,  # noqa: ASYNC109  # asyncpg's signature
    ) -> None:
        """Return `connection` to the pool."""
        if timeout is None and self._releases_at_once(connection):
            connection._con._on_release()
            # Runs to its end without suspending: the checks above are its only waits.
            await connection._holder.release(None)
            return
        await super().release(connection, timeout=timeout)

    def _releases_at_once(self, connection: Any) -> bool:
        try:
            holder = connection._holder
            con = connection._con
            return (
                holder._pool is self
                and con is not None
                and self._initialized
                and not self._closed
                and self._reset is no_reset
                and holder._generation == self._generation
                and not con.is_closed()
                and not con.is_in_transaction()
                and con._top_xact is None
                and not con._protocol._is_cancelling()
                and con._protocol.queries_count < holder._max_queries
            )
        except AttributeError:
            # Another asyncpg than the one this was written against: its own release is safe.
            return False


def server_settings(
    *,
    application_name: str = APPLICATION_NAME,
    statement_timeout_ms: int | None = None,
    pgbouncer: bool = False,
    generic_plans: bool = False,
) -> dict[str, str]:
    """Session settings: a name to find our backends by; UTC timestamps in JSON snapshots.

    Behind PgBouncer only the name is sent: it refuses startup parameters it does not track,
    and the statement timeout is set by each transaction instead (db/tenancy.py).
    """
    if pgbouncer:
        return {"application_name": application_name}
    settings = {"application_name": application_name, "timezone": "UTC"}
    if statement_timeout_ms is not None:
        settings["statement_timeout"] = str(statement_timeout_ms)
    if generic_plans:
        # Our statements are index walks keyed by parameters: their generic plans measure as
        # fast as custom ones (docs/benchmarks.md, listquery), and planning anew on every
        # execution (what `auto` ends up doing with a LIMIT parameter) cost more than running.
        settings["plan_cache_mode"] = "force_generic_plan"
    return settings


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    statement_timeout_ms: int | None = 30_000,
    statement_cache_size: int = 100,
    application_name: str = APPLICATION_NAME,
    on_query: Callable[[Any], None] | None = None,
    connect_timeout: float = 5.0,
    pgbouncer: bool = False,
    app_role: bool = False,
) -> Pool:
    """Open a pool on `dsn`; connections decode JSON and run in UTC.

    `on_query` is called after every statement with asyncpg's LoggedQuery (for metrics).
    `pgbouncer`: `dsn` is PgBouncer in transaction mode (1.18 and older keep no prepared
    statements across transactions, so none are cached).
    `app_role`: every connection takes the row-level-security role for good (see
    db/tenancy.py, SESSION mode).
    """

    async def init(conn: asyncpg.Connection) -> None:
        await init_connection(conn)
        if app_role:
            await take_app_role(conn)
        if on_query is not None:
            conn.add_query_logger(on_query)

    # asyncpg.create_pool with our Pool class (it takes no class): asyncpg's defaults spelled out.
    pool = await Pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        init=init,
        # Our settings live in transactions (db/tenancy.py): releasing needs no reset query.
        reset=no_reset,
        # Fail fast while the server is down rather than hang a request for a minute.
        timeout=connect_timeout,
        statement_cache_size=0 if pgbouncer else statement_cache_size,
        server_settings=server_settings(
            application_name=application_name,
            statement_timeout_ms=statement_timeout_ms,
            pgbouncer=pgbouncer,
            generic_plans=app_role,
        ),
    )
    assert isinstance(pool, Pool)
    return pool


async def connect(
    dsn: str, *, application_name: str = APPLICATION_NAME, pgbouncer: bool = False
) -> asyncpg.Connection:
    """A single connection outside the pool, with the pool's codecs and settings."""
    conn = await asyncpg.connect(
        dsn,
        statement_cache_size=0 if pgbouncer else 100,
        server_settings=server_settings(application_name=application_name, pgbouncer=pgbouncer),
    )
    await init_connection(conn)
    return conn


async def close_pool(pool: asyncpg.Pool, within_s: float = 5.0) -> None:
    """Close gracefully, but never hang: a peer that never closes its side gets terminated."""
    try:
        async with asyncio.timeout(within_s):
            await pool.close()
    except TimeoutError:
        log.warning("pool did not close within %.0f s; terminating its connections", within_s)
        pool.terminate()
