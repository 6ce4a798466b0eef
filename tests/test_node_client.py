"""A third-party client: the `graphql-ws` npm library, driven by Node, against the server."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from tests.support import GraphQLClient, create_run, token, ws_url

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None or not (NODE_DIR / "node_modules" / "graphql-ws").exists(),
    reason="needs Node >= 20 and `npm ci --prefix tests/node` (.ci/run does both)",
)


async def _node(*args: str) -> asyncio.subprocess.Process:
    assert NODE is not None
    return await asyncio.create_subprocess_exec(
        NODE,
        str(NODE_DIR / "subscribe.mjs"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_the_graphql_ws_library_receives_events_and_resumes(
    server: str, client: GraphQLClient
) -> None:
    first = await create_run(client)
    events = (
        await client.data(
            "query($id: ID!) { workflowRun(id: $id) { events { cursor } } }", {"id": first["id"]}
        )
    )["workflowRun"]["events"]
    # Resume after the first run's creation: the next two changes arrive, replayed or live.
    process = await _node(ws_url(server), token(), "ws-a", "2", events[0]["cursor"])
    second = await create_run(client)
    await client.data(
        "mutation($id: ID!) { startWorkflowRun(id: $id) { id } }", {"id": second["id"]}
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    received = [json.loads(line) for line in stdout.decode().splitlines()]
    assert [(e["runId"], e["previousStatus"], e["status"]) for e in received] == [
        (second["id"], None, "PENDING"),
        (second["id"], "PENDING", "RUNNING"),
    ]
    assert all(e["run"]["status"] == e["status"] for e in received)


async def test_the_graphql_ws_library_sees_an_unauthorised_close(server: str) -> None:
    process = await _node(ws_url(server), "not-a-token", "ws-a", "1")
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode != 0
    assert "4401" in stderr.decode()
