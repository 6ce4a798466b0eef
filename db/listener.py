"""The process's one LISTEN connection: hints that a workspace's stream grew, in and out.

A notification only says "workspace W has events up to N"; the events themselves are read
from the table, which is the truth. Notifications can be lost (the connection drops, the
process that committed dies before sending), so readers also poll; a hint just makes them fast.

The connection is our own `asyncpg.connect`, not a pooled one: the pool UNLISTENs a
connection when it is released, and PgBouncer in transaction mode cannot carry LISTEN at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping

import asyncpg
import orjson

from db.pool import connect

log = logging.getLogger(__name__)

CHANNEL = "workflow_run_events"
LISTENER_APPLICATION_NAME = "workflow-runs-listener"
# PostgreSQL's limit is 8000 bytes per payload; keep a margin.
_MAX_PAYLOAD = 7000


def encode_hints(hints: Mapping[str, int]) -> list[str]:
    """Payloads naming each workspace's newest seq, each under the NOTIFY size limit."""
    payloads: list[str] = []
    chunk: dict[str, int] = {}
    size = 2
    for workspace_id, seq in hints.items():
        entry = len(orjson.dumps({workspace_id: seq}))
        if chunk and size + entry > _MAX_PAYLOAD:
            payloads.append(orjson.dumps(chunk).decode())
            chunk, size = {}, 2
        chunk[workspace_id] = seq
        size += entry
    if chunk:
        payloads.append(orjson.dumps(chunk).decode())
    return payloads


def decode_hints(payload: str) -> dict[str, int]:
    """The hints of one payload; anything malformed is ignored (readers poll anyway)."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        w: s
        for w, s in data.items()
        if isinstance(w, str) and isinstance(s, int) and not isinstance(s, bool)
    }


class EventListener:
    """Keeps a LISTEN connection open, reconnecting with backoff; sends hints on it too."""

    def __init__(
        self,
        dsn: str,
        *,
        on_hints: Callable[[dict[str, int]], None],
        on_connect: Callable[[], None],
        health_check_interval: float = 10.0,
        max_backoff: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._on_hints = on_hints
        self._on_connect = on_connect
        self._health_check_interval = health_check_interval
        self._max_backoff = max_backoff
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        # One statement at a time on the connection: hints and health checks share it.
        self._busy = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        # Counters, for /metrics and tests.
        self.reconnects = 0
        self.notifications = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close()

    async def send(self, hints: Mapping[str, int]) -> bool:
        """NOTIFY the hints; False when the connection is down (the readers' poll covers it)."""
        conn = self._conn
        if conn is None:
            return False
        try:
            if conn.is_closed():
                raise ConnectionError("listener connection closed")
            async with self._busy:
                for payload in encode_hints(hints):
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
        except Exception as exc:
            # asyncpg aborts a connection that fails mid-statement without calling termination
            # listeners: say it is lost here, or nothing would reconnect until the health check.
            log.warning("could not send an event hint: %r", exc)
            self._mark_lost()
            return False
        return True

    def _mark_lost(self) -> None:
        self.connected.clear()
        self._lost.set()

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._connect()
                attempt = 0
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means reconnect
                log.warning("event listener connection failed: %s", exc)
            finally:
                self.connected.clear()
                await self._close()
            attempt += 1
            self.reconnects += 1
            # Exponential backoff with jitter, so that many processes do not reconnect in step.
            delay = min(self._max_backoff, 0.05 * 2**attempt) * (0.5 + random.random() / 2)
            await asyncio.sleep(delay)

    async def _connect(self) -> None:
        self._lost.clear()
        conn = await connect(self._dsn, application_name=LISTENER_APPLICATION_NAME)
        conn.add_termination_listener(lambda _conn: self._mark_lost())
        await conn.add_listener(CHANNEL, self._notified)
        self._conn = conn
        self.connected.set()
        log.info("event listener connected")
        # Anything committed while we were away is in the table: readers catch up now.
        self._on_connect()

    async def _watch(self) -> None:
        # Wait for the connection to drop; a periodic round trip also notices a dead peer
        # that never closed the TCP connection.
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._health_check_interval):
                    await self._lost.wait()
            if self._lost.is_set():
                raise ConnectionError("listener connection lost")
            assert self._conn is not None
            async with self._busy:
                await self._conn.fetchval("SELECT 1", timeout=self._health_check_interval)

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self.notifications += 1
        hints = decode_hints(payload)
        if hints:
            self._on_hints(hints)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await conn.close()
            if not conn.is_closed():
                conn.terminate()
