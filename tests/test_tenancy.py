"""Row-level security: the service's role sees only the workspaces of its unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest

from db.lifecycle import NewRun, create_run
from db.pool import create_pool
from db.records import RunTrigger
from db.tenancy import APP_ROLE, Tenancy, scoped
from server.app import create_app
from server.config import Settings
from tests.support import GraphQLClient, running, token

MODES = [Tenancy.SESSION, Tenancy.TRANSACTION]


@pytest.fixture
async def two_tenants(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:  # the owner, as migrations and tests are
        for workspace in ("ws-a", "ws-a", "ws-b", "ws-c"):
            await create_run(conn, NewRun(workspace, "wf", RunTrigger.USER), user_id="u")


@pytest.fixture
async def app_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool as the service opens it on a direct connection: every connection is the role."""
    pool = await create_pool(database_url, min_size=1, max_size=1, app_role=True)
    yield pool
    await pool.close()


def _pool_for(mode: Tenancy, pool: asyncpg.Pool, app_pool: asyncpg.Pool) -> asyncpg.Pool:
    # TRANSACTION mode takes the role inside each transaction, from an owner's connection.
    return app_pool if mode is Tenancy.SESSION else pool


@pytest.mark.usefixtures("two_tenants")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("table", ["workflow_runs", "workflow_run_events", "workflow_run_streams"])
async def test_an_unfiltered_select_through_the_service_role_returns_no_foreign_rows(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, mode: Tenancy, table: str
) -> None:
    source = _pool_for(mode, pool, app_pool)
    async with scoped(source, ["ws-a"], mode=mode) as conn:
        seen = {r["workspace_id"] for r in await conn.fetch(f"SELECT workspace_id FROM {table}")}
    assert seen == {"ws-a"}
    async with scoped(source, ["ws-a", "ws-c"], mode=mode) as conn:
        seen = {r["workspace_id"] for r in await conn.fetch(f"SELECT workspace_id FROM {table}")}
    assert seen == {"ws-a", "ws-c"}
    async with scoped(source, [], mode=mode) as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0


@pytest.mark.usefixtures("two_tenants")
@pytest.mark.parametrize("mode", MODES)
async def test_the_service_role_cannot_write_into_another_workspace(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, mode: Tenancy
) -> None:
    source = _pool_for(mode, pool, app_pool)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with scoped(source, ["ws-a"], mode=mode) as conn:
            await create_run(conn, NewRun("ws-b", "wf", RunTrigger.USER), user_id="u")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with scoped(source, ["ws-a"], mode=mode) as conn:
            await conn.execute("UPDATE workflow_runs SET workspace_id = 'ws-b'")
    async with pool.acquire() as conn:
        foreign = await conn.fetchval(
            "SELECT count(*) FROM workflow_runs WHERE workspace_id = 'ws-b'"
        )
    assert foreign == 1
    # Foreign rows are not even visible to an update: nothing changes.
    async with scoped(source, ["ws-a"], mode=mode) as conn:
        result = await conn.execute(
            "UPDATE workflow_runs SET error = 'x' WHERE workspace_id = 'ws-b'"
        )
    assert result == "UPDATE 0"


@pytest.mark.parametrize("mode", MODES)
async def test_the_service_role_cannot_delete_nor_bypass_row_security(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, mode: Tenancy
) -> None:
    source = _pool_for(mode, pool, app_pool)
    async with scoped(source, ["ws-a"], mode=mode) as conn:
        role = await conn.fetchrow(
            "SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles "
            "WHERE rolname = current_user"
        )
    assert dict(role) == {"name": APP_ROLE, "rolsuper": False, "rolbypassrls": False}
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with scoped(source, ["ws-a"], mode=mode) as conn:
            await conn.execute("DELETE FROM workflow_run_events")


@pytest.mark.usefixtures("two_tenants")
async def test_a_reused_connection_is_rescoped_when_its_workspaces_change(
    app_pool: asyncpg.Pool,
) -> None:
    pids = set()
    for workspaces, expected in ((["ws-a"], 2), (["ws-b"], 1), (["ws-a"], 2), ([], 0)):
        async with scoped(app_pool, workspaces) as conn:
            pids.add(conn.get_server_pid())
            assert await conn.fetchval("SELECT count(*) FROM workflow_runs") == expected
    assert len(pids) == 1  # one pooled connection, scoped four times


_LIST = "query List($ws: ID!) { workflowRuns(workspaceId: $ws) { nodes { workspaceId } } }"


@pytest.mark.usefixtures("two_tenants")
async def test_a_viewer_paging_through_its_workspaces_is_scoped_once_and_sees_only_its_grant(
    settings: Settings,
) -> None:
    # One pooled connection, so that every request below shares it.
    app = create_app(replace(settings, pool_min_size=1, pool_max_size=1))
    runtime = app.state.runtime
    async with running(app) as server:
        both = GraphQLClient(server, token(["ws-a", "ws-b"]))
        only_b = GraphQLClient(server, token(["ws-b"], user="user-2"))
        try:

            async def scope_of_the_connection() -> str:
                async with runtime.pool.acquire() as conn:
                    setting: str = await conn.fetchval(
                        "SELECT current_setting('workflow_runs.workspaces')"
                    )
                return setting

            async def listed(client: GraphQLClient, workspace: str) -> list[str]:
                data = await client.data(_LIST, {"ws": workspace})
                return [node["workspaceId"] for node in data["workflowRuns"]["nodes"]]

            assert await listed(both, "ws-a") == ["ws-a", "ws-a"]
            before = runtime.queries
            for workspace, expected in (("ws-b", ["ws-b"]), ("ws-a", ["ws-a", "ws-a"])) * 2:
                assert await listed(both, workspace) == expected
            if not settings.pgbouncer:
                # Scoped to the token's two workspaces at the first request: one statement each.
                assert runtime.queries - before == 4
                assert await scope_of_the_connection() == '{"ws-a","ws-b"}'
            # Another viewer's request rescopes the connection to that viewer's grant alone.
            assert await listed(only_b, "ws-b") == ["ws-b"]
            if not settings.pgbouncer:
                assert await scope_of_the_connection() == '{"ws-b"}'
            denied = await only_b.execute(_LIST, {"ws": "ws-a"})
            assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            assert await listed(both, "ws-a") == ["ws-a", "ws-a"]
        finally:
            await both.aclose()
            await only_b.aclose()


@pytest.mark.usefixtures("two_tenants")
async def test_a_query_that_forgot_its_scope_sees_nothing(app_pool: asyncpg.Pool) -> None:
    async with app_pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == APP_ROLE
        assert await conn.fetchval("SELECT count(*) FROM workflow_runs") == 0


async def test_transaction_scoped_settings_end_with_their_transaction(pool: asyncpg.Pool) -> None:
    async with scoped(pool, ["ws-a"], mode=Tenancy.TRANSACTION) as conn:
        pid = conn.get_server_pid()
    async with pool.acquire() as conn:
        assert conn.get_server_pid() == pid  # the same pooled connection, reused
        assert await conn.fetchval("SELECT current_user") != APP_ROLE
        setting = await conn.fetchval("SELECT current_setting('workflow_runs.workspaces', true)")
        assert setting in (None, "")


ODD_NAMES = ['ws "quoted"', "back\\slash", "comma,brace{}", "space and NULL", "NULL", "", "é 中"]


@pytest.mark.parametrize("mode", MODES)
async def test_any_workspace_name_scopes_exactly_that_workspace(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, mode: Tenancy
) -> None:
    async with pool.acquire() as conn:
        for name in [*ODD_NAMES, "ws-a"]:
            await create_run(conn, NewRun(name, "wf", RunTrigger.USER), user_id="u")
    source = _pool_for(mode, pool, app_pool)
    for name in ODD_NAMES:
        async with scoped(source, [name], mode=mode) as conn:
            seen = [
                r["workspace_id"]
                for r in await conn.fetch("SELECT workspace_id FROM workflow_runs")
            ]
        assert seen == [name]
    async with scoped(source, ODD_NAMES, mode=mode) as conn:
        seen = [
            r["workspace_id"] for r in await conn.fetch("SELECT workspace_id FROM workflow_runs")
        ]
    assert sorted(seen) == sorted(ODD_NAMES)


@pytest.mark.usefixtures("two_tenants")
async def test_a_process_of_an_earlier_version_scoping_with_json_still_sees_its_workspaces(
    pool: asyncpg.Pool,
) -> None:
    # Before migration 0004 the setting held a JSON array; during a rolling deploy, processes
    # of the earlier version still write one.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('role', $1, true), set_config('workflow_runs.workspaces', $2, true)",
            APP_ROLE,
            '["ws-a", "ws-c"]',
        )
        seen = {
            r["workspace_id"] for r in await conn.fetch("SELECT workspace_id FROM workflow_runs")
        }
    assert seen == {"ws-a", "ws-c"}
