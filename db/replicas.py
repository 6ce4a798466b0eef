"""Reads on streaming replicas: which pool a read may use, and watching the replicas' health.

A replica serves reads while it answers and its replay lag stays under the limit; otherwise
the primary does. A read that must see a given write names its commit position (an LSN) and
is served only by a replica that has replayed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from db.pool import close_pool, create_pool

log = logging.getLogger(__name__)

# Lag counts only while WAL is waiting to be replayed: an idle replica is not behind.
_HEALTH = """
SELECT pg_is_in_recovery() AS in_recovery,
       pg_last_wal_replay_lsn() AS replayed,
       CASE WHEN pg_last_wal_receive_lsn() IS NULL
              OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn()
            THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000
       END AS lag_ms
"""


def format_lsn(lsn: int) -> str:
    """PostgreSQL's text form of a WAL position, e.g. 0/3000148."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int | None:
    """A WAL position from its text form; None if malformed."""
    high, slash, low = text.strip().partition("/")
    try:
        return (int(high, 16) << 32) | int(low, 16) if slash else None
    except ValueError:
        return None


async def commit_position(conn: asyncpg.Connection) -> int:
    """A WAL position at or after every commit this connection has made."""
    position: int = await conn.fetchval("SELECT pg_current_wal_insert_lsn()")
    return position


@dataclass
class Replica:
    dsn: str
    pool: asyncpg.Pool | None = None
    healthy: bool = False
    replayed: int = 0
    lag_ms: float = 0.0
    # Reads it has served, for /metrics and tests.
    reads: int = 0


class ReadRouter:
    """Chooses the pool for each read and keeps the replicas' health current."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        replica_dsns: Sequence[str],
        *,
        max_lag_ms: float,
        check_interval: float = 0.5,
        pool_options: dict[str, Any] | None = None,
    ) -> None:
        self.primary = primary
        self.replicas = [Replica(dsn) for dsn in replica_dsns]
        self.max_lag_ms = max_lag_ms
        self.check_interval = check_interval
        self._pool_options = pool_options or {}
        self._next = 0
        self._task: asyncio.Task[None] | None = None
        self.primary_reads = 0

    async def start(self) -> None:

        for replica in self.replicas:
            # A replica that is down at start is retried by the health checks.
            with contextlib.suppress(Exception):
                replica.pool = await create_pool(replica.dsn, **self._pool_options)
        await self.check()
        self._task = asyncio.create_task(self._watch(), name="replica-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for replica in self.replicas:
            if replica.pool is not None:
                await close_pool(replica.pool)

    def pool_for_read(self, min_lsn: int | None = None) -> tuple[asyncpg.Pool, Replica | None]:
        """A healthy replica's pool (round robin), or the primary's."""
        candidates = [
            r
            for r in self.replicas
            if r.healthy and r.pool is not None and (min_lsn is None or r.replayed >= min_lsn)
        ]
        if not candidates:
            self.primary_reads += 1
            return self.primary, None
        self._next = (self._next + 1) % len(candidates)
        chosen = candidates[self._next]
        chosen.reads += 1
        assert chosen.pool is not None
        return chosen.pool, chosen

    def mark_down(self, replica: Replica) -> None:
        """A read could not use this replica: skip it until a health check passes again."""
        replica.healthy = False

    async def check(self) -> None:
        """Look at every replica once."""
        await asyncio.gather(*(self._check(r) for r in self.replicas))

    async def _check(self, replica: Replica) -> None:

        started = time.monotonic()
        try:
            if replica.pool is None:
                replica.pool = await create_pool(replica.dsn, **self._pool_options)
            async with replica.pool.acquire(timeout=2) as conn:
                row = await conn.fetchrow(_HEALTH, timeout=2)
        except Exception as exc:  # down, restarting, unreachable: all mean "not now"
            if replica.healthy:
                log.warning("replica %s is unavailable: %r", _host(replica.dsn), exc)
            replica.healthy = False
            return
        replica.replayed = row["replayed"] or 0
        replica.lag_ms = float(row["lag_ms"] or 0)
        healthy = bool(row["in_recovery"]) and replica.lag_ms <= self.max_lag_ms
        if healthy != replica.healthy:
            log.info(
                "replica %s is %s (lag %.0f ms, checked in %.0f ms)",
                _host(replica.dsn),
                "serving reads" if healthy else "skipped",
                replica.lag_ms,
                (time.monotonic() - started) * 1000,
            )
        replica.healthy = healthy

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            with contextlib.suppress(Exception):
                await self.check()


def _host(dsn: str) -> str:
    return dsn.rsplit("@", 1)[-1]
