"""The service's pool (db/pool.py): plain releases run in place, every other kind as asyncpg's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from typing import Any

import asyncpg
import pytest

from db.pool import Pool, create_pool
from tests.support import wait_for


@pytest.fixture
async def one(database_url: str) -> AsyncIterator[Pool]:
    """A pool of one connection, as the service configures its own."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    yield pool
    await pool.close()


async def _backend(pool: Pool) -> int:
    async with pool.acquire() as conn:
        pid: int = await conn.fetchval("SELECT pg_backend_pid()")
        return pid


async def test_a_plain_release_starts_no_task_and_keeps_the_connection(one: Pool) -> None:
    loop = asyncio.get_running_loop()
    before = await _backend(one)
    started: list[object] = []
    default = loop.get_task_factory()

    def counting(
        loop: asyncio.AbstractEventLoop, coro: Generator[Any, None, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        started.append(coro)
        if default is not None:
            return default(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        async with one.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        loop.set_task_factory(default)
    # asyncpg's own release shields itself in a new Task each time.
    assert started == []
    assert one.get_idle_size() == 1
    assert await _backend(one) == before


async def test_a_query_cancelled_midway_returns_its_connection_in_working_order(
    one: Pool, database_url: str
) -> None:
    with pytest.raises(TimeoutError):
        async with one.acquire() as conn, asyncio.timeout(0.2):
            await conn.execute("SELECT pg_sleep(30)")
    # The one connection serves the next query; the server is no longer sleeping for us.
    async with asyncio.timeout(10), one.acquire() as conn:
        assert await conn.fetchval("SELECT 2") == 2
    watcher = await asyncpg.connect(database_url)
    try:

        async def not_sleeping() -> bool:
            sleeping = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
                " AND state = 'active'"
            )
            return bool(sleeping == 0)

        await wait_for(not_sleeping, what="the cancelled query ends on the server")
    finally:
        await watcher.close()
    assert one.get_size() == 1


async def test_a_transaction_left_open_is_rolled_back_on_release(one: Pool) -> None:
    async with one.acquire() as conn:
        await conn.execute("CREATE TABLE left_open (n int)")
    async with one.acquire() as conn:
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO left_open VALUES (1)")
    async with one.acquire() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT count(*) FROM left_open") == 0


async def test_a_cancelled_caller_still_returns_its_connection(one: Pool) -> None:
    holding = asyncio.Event()

    async def hold() -> None:
        async with one.acquire() as conn:
            await conn.fetchval("SELECT 1")
            holding.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hold())
    async with asyncio.timeout(10):
        await holding.wait()
    assert one.get_idle_size() == 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert one.get_idle_size() == 1
    async with asyncio.timeout(10), one.acquire() as conn:
        assert await conn.fetchval("SELECT 3") == 3


async def test_expired_connections_are_replaced_when_released(one: Pool) -> None:
    before = await _backend(one)
    async with one.acquire() as conn:
        await one.expire_connections()
        await conn.fetchval("SELECT 1")
    assert await _backend(one) != before


async def test_closing_waits_for_a_connection_in_use(one: Pool) -> None:
    async with one.acquire() as conn:
        closing = asyncio.create_task(one.close())
        done, _ = await asyncio.wait({closing}, timeout=0.2)
        assert not done
        assert await conn.fetchval("SELECT 4") == 4
    async with asyncio.timeout(10):
        await closing
    with pytest.raises(asyncpg.InterfaceError):
        await one.fetchval("SELECT 5")
