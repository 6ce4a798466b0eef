"""Several server hosts on one database: a host dies mid-stream, its subscribers move on."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import websockets

from tests.support import SECRET, GraphQLClient, token, ws_url
from tests.test_cli import _isolated_env, serve

STREAM = """
subscription($after: String) {
  workflowRunStatusChanged(workspaceId: "ws-a", after: $after) { cursor runId status }
}
"""


class Follower:
    """A dashboard's subscription: it resumes with its last cursor on the next host when its
    host goes away, as clients are told to."""

    def __init__(self, hosts: list[str], start_after: str) -> None:
        self.hosts = hosts
        self.after = start_after
        self.events: list[dict[str, Any]] = []
        self.reconnects = 0
        self.finished = False

    async def follow(self, until: asyncio.Event) -> None:
        """Stream until `until` is set and the stream has gone quiet."""
        host = 0
        while not self.finished:
            try:
                await self._stream(self.hosts[host % len(self.hosts)], until)
            except (OSError, websockets.WebSocketException, TimeoutError):
                self.reconnects += 1
                host += 1

    async def _stream(self, base_url: str, until: asyncio.Event) -> None:
        async with websockets.connect(
            ws_url(base_url),
            subprotocols=["graphql-transport-ws"],
            open_timeout=5,  # type: ignore[list-item]
        ) as ws:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token()}"}}
            await ws.send(json.dumps(init))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": STREAM, "variables": {"after": self.after}},
                    }
                )
            )
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except TimeoutError:
                    if until.is_set():
                        self.finished = True
                        return
                    continue
                message = json.loads(raw)
                if message["type"] == "next":
                    event = message["payload"]["data"]["workflowRunStatusChanged"]
                    self.events.append(event)
                    self.after = event["cursor"]


async def _writer(client: GraphQLClient, stop: asyncio.Event) -> int:
    # Writes until its host dies; whether the write in flight then committed is for the
    # database to say, which is why the test compares with the event table.
    committed = 0
    while not stop.is_set():
        try:
            body = await client.post(
                'mutation { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "wf", '
                "triggeredBy: WORKFLOW}) { id } }"
            )
        except httpx.HTTPError:
            break
        if body.status_code != 200 or "errors" in body.json():
            break
        committed += 1
    await client.aclose()
    return committed


async def test_a_killed_host_loses_no_event_for_any_subscriber(
    tmp_path: Path, database_url: str
) -> None:
    env = {
        **_isolated_env(tmp_path),
        "DATABASE_URL": database_url,
        "WORKFLOW_RUNS_JWT_SECRET": SECRET,
    }
    with serve(tmp_path, env) as host_a, serve(tmp_path, env) as host_b:
        writer_client = GraphQLClient(host_a.base_url, token())
        seed = (
            await writer_client.data(
                'mutation { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "wf", '
                "triggeredBy: USER}) { id events { cursor } } }"
            )
        )["createWorkflowRun"]
        mark = seed["events"][0]["cursor"]
        followers = [
            Follower([host_a.base_url, host_b.base_url], mark),
            Follower([host_a.base_url, host_b.base_url], mark),
            Follower([host_b.base_url, host_a.base_url], mark),
            Follower([host_b.base_url, host_a.base_url], mark),
        ]
        done = asyncio.Event()
        following = [asyncio.create_task(f.follow(done)) for f in followers]
        stop_writing = asyncio.Event()
        writers = [
            asyncio.create_task(_writer(GraphQLClient(host_a.base_url, token()), stop_writing))
            for _ in range(4)
        ]
        # Mid-stream, host A dies without a goodbye.
        await _until(lambda: min(len(f.events) for f in followers) >= 20)
        os.kill(host_a.process.pid, signal.SIGKILL)
        host_a.process.wait(timeout=10)
        written = sum(await asyncio.gather(*writers))
        stop_writing.set()
        # Host B writes some more while the moved subscribers listen there.
        survivor = GraphQLClient(host_b.base_url, token())
        for _ in range(5):
            await survivor.data(
                'mutation { createWorkflowRun(input: {workspaceId: "ws-a", subjectId: "wf", '
                "triggeredBy: USER}) { id } }"
            )
        stored = await _events_after(database_url, mark)
        await _until(lambda: all(len(f.events) >= len(stored) for f in followers), within=30)
        done.set()
        await asyncio.gather(*following)
        for client in (writer_client, survivor):
            await client.aclose()
    assert written > 0
    for follower in followers:
        received = [(e["cursor"], e["runId"], e["status"]) for e in follower.events]
        assert received == stored
    assert sum(f.reconnects for f in followers[:2]) >= 2  # A's subscribers moved to B


async def _events_after(database_url: str, cursor: str) -> list[tuple[str, str, str]]:
    from schema.cursors import decode_event_cursor, encode_event_cursor

    after = decode_event_cursor(cursor, "ws-a")
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT seq, run_id, status FROM workflow_run_events "
            "WHERE workspace_id = 'ws-a' AND seq > $1 ORDER BY seq",
            after,
        )
    finally:
        await conn.close()
    return [(encode_event_cursor("ws-a", r["seq"]), r["run_id"], r["status"].upper()) for r in rows]


async def _until(condition: Any, within: float = 20) -> None:
    from tests.support import wait_for

    await wait_for(condition, within=within, what="the streams")
