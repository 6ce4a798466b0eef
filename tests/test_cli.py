"""The `workflow-runs` command as a user runs it: serve, token, migrate, several processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import httpx
import jwt
import websockets

from server.embedded import EmbeddedPostgres
from tests.support import SECRET, GraphQLClient, LiveEvents, create_run, token, ws_url

CLI = [sys.executable, "-m", "server.cli"]
FIRST_QUERY = '{ workflowRuns(workspaceId: "demo", first: 10) { totalCount nodes { id status } } }'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Served:
    """A `workflow-runs serve` process."""

    def __init__(self, process: subprocess.Popen[str], port: int, log: Path) -> None:
        self.process = process
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = log

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@contextmanager
def serve(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[Served]:
    port = _free_port()
    log = tmp_path / f"serve-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    served = Served(process, port, log)
    try:
        _wait_ready(served)
        yield served
    finally:
        served.stop()


def _wait_ready(served: Served, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise AssertionError(f"serve exited early:\n{served.output()}")
        try:
            if httpx.get(f"{served.base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # polling a subprocess's readiness, with a deadline
    raise AssertionError(f"serve did not become ready:\n{served.output()}")


def _printed_token(output: str) -> str:
    lines = output.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("A token for user"))
    return lines[index + 2].strip()


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOW_RUNS_", "DATABASE"))}
    env["WORKFLOW_RUNS_DATA_DIR"] = str(tmp_path / "data")
    return env


async def test_serve_without_a_database_url_runs_on_embedded_postgres_and_stops_it(
    tmp_path: Path,
) -> None:
    env = _isolated_env(tmp_path)
    with serve(tmp_path, env) as served:
        demo_token = _printed_token(served.output())
        client = GraphQLClient(served.base_url, demo_token)
        # The README's first query, with the printed token.
        data = await client.data(FIRST_QUERY)
        assert data["workflowRuns"] == {"totalCount": 0, "nodes": []}
        run = await create_run(client, workspace="demo")
        data = await client.data(FIRST_QUERY)
        assert data["workflowRuns"]["nodes"] == [{"id": run["id"], "status": "PENDING"}]
        page = await client.http.get(f"{served.base_url}/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
        await client.aclose()
        pgdata = tmp_path / "data" / "pgdata"
        assert EmbeddedPostgres(tmp_path / "data").is_running()
    assert served.process.returncode is not None
    assert not EmbeddedPostgres(tmp_path / "data").is_running(), "serve left PostgreSQL running"
    assert (pgdata / "PG_VERSION").exists()
    # The data survives: a second start serves the same run, with the same secret.
    with serve(tmp_path, env) as again:
        client = GraphQLClient(again.base_url, demo_token)
        data = await client.data(FIRST_QUERY)
        assert data["workflowRuns"]["totalCount"] == 1
        await client.aclose()


def test_token_mints_a_token_with_the_given_claims(tmp_path: Path) -> None:
    env = _isolated_env(tmp_path)
    out = subprocess.run(
        [
            *CLI,
            "token",
            "--user",
            "alice",
            "--workspace",
            "w1",
            "--workspace",
            "w2",
            "--scope",
            "runs:read",
            "--ttl",
            "600",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    secret = (tmp_path / "data" / "jwt-secret").read_text().strip()
    claims = jwt.decode(out, secret, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert claims["workspaces"] == ["w1", "w2"]
    assert claims["scope"] == "runs:read"
    assert 590 <= claims["exp"] - claims["iat"] <= 600


async def test_migrate_applies_pending_migrations_once(admin_dsn: str, tmp_path: Path) -> None:
    name = f"wr_cli_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        from tests.support import with_database

        env = {**_isolated_env(tmp_path), "DATABASE_URL": with_database(admin_dsn, name)}
        first = await _run_cli(["migrate"], env)
        second = await _run_cli(["migrate"], env)
        assert first.returncode == 0, first.stderr
        from db.migrate import migrations

        every = [m.version for m in migrations()]
        assert f"applied migrations: {every}" in first.stdout
        assert "up to date" in second.stdout
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [*CLI, *args], env=env, capture_output=True, text=True
    )


@asynccontextmanager
async def _two_servers(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Served, Served]]:
    env = {
        **_isolated_env(tmp_path),
        "DATABASE_URL": database_url,
        "WORKFLOW_RUNS_JWT_SECRET": SECRET,
    }
    with serve(tmp_path, env) as first, serve(tmp_path, env) as second:
        yield first, second


async def _closing_frame(ws: websockets.ClientConnection) -> websockets.frames.Close | None:
    try:
        while True:
            await ws.recv()
    except websockets.ConnectionClosed as closed:
        return closed.rcvd


async def _creation_cursor(client: GraphQLClient, run_id: str) -> str:
    query = "query($id: ID!) { workflowRun(id: $id) { events { cursor } } }"
    data = await client.data(query, {"id": run_id})
    cursor: str = data["workflowRun"]["events"][0]["cursor"]
    return cursor


async def test_a_subscriber_on_one_process_sees_changes_made_through_another(
    tmp_path: Path, database_url: str
) -> None:
    async with _two_servers(tmp_path, database_url) as (writer, reader):
        client = GraphQLClient(writer.base_url, token())
        # Subscribing after a known event makes the test independent of when the subscription
        # is registered: whatever follows that event is delivered, live or replayed.
        mark = await _creation_cursor(client, (await create_run(client))["id"])
        async with LiveEvents(reader.base_url, token(), after=mark) as live:
            run = await create_run(client)
            start = "mutation($id: ID!) { startWorkflowRun(id: $id) { id } }"
            await client.data(start, {"id": run["id"]})
            events = await live.wait_for_count(2)
        await client.aclose()
    assert [(e["runId"], e["status"]) for e in events] == [
        (run["id"], "PENDING"),
        (run["id"], "RUNNING"),
    ]


async def test_sigterm_closes_sockets_for_a_restart_and_clients_resume_elsewhere(
    tmp_path: Path, database_url: str
) -> None:
    async with _two_servers(tmp_path, database_url) as (doomed, survivor):
        client = GraphQLClient(survivor.base_url, token())
        first = await create_run(client)
        async with websockets.connect(
            ws_url(doomed.base_url),
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        ) as ws:
            await ws.send(
                json.dumps(
                    {"type": "connection_init", "payload": {"Authorization": f"Bearer {token()}"}}
                )
            )
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            doomed.process.send_signal(signal.SIGTERM)
            close = await _closing_frame(ws)
            assert close is not None
            assert close.code in (1001, 1012)
        assert doomed.process.wait(timeout=30) is not None
        # Changes made meanwhile are replayed from the last cursor, on the other process.
        second = await create_run(client)
        creation = await _creation_cursor(client, first["id"])
        async with LiveEvents(survivor.base_url, token(), after=creation) as resumed:
            [event] = await resumed.wait_for_count(1)
        assert event["runId"] == second["id"]
        await client.aclose()


async def test_serve_with_several_workers_serves_and_delivers_across_them(
    tmp_path: Path, database_url: str
) -> None:
    env = {
        **_isolated_env(tmp_path),
        "DATABASE_URL": database_url,
        "WORKFLOW_RUNS_JWT_SECRET": SECRET,
    }
    with serve(tmp_path, env, "--workers", "2") as served:
        client = GraphQLClient(served.base_url, token())
        mark = await _creation_cursor(client, (await create_run(client))["id"])
        async with LiveEvents(served.base_url, token(), after=mark) as live:
            runs = [await create_run(client) for _ in range(10)]
            events = await live.wait_for_count(10)
        await client.aclose()
    assert [e["runId"] for e in events] == [r["id"] for r in runs]
