"""A subscriber that stops reading is disconnected (4429) and never slows the others."""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import websockets

from db.fanout import FanoutLimits
from db.lifecycle import NewRun, create_run
from db.records import RunTrigger
from db.tenancy import scoped
from server.app import create_app
from server.config import Settings
from tests.support import LiveEvents, running, subscribers_registered, token, wait_for, ws_url

# Large events, so that the kernel's socket buffers (up to 4 MiB of autotuned send buffer on
# loopback) fill quickly and the server's sends to the stalled client really block.
BIG_INPUT = {"blob": "x" * 100_000}
HEAVY = """
subscription($ws: ID!, $after: String) {
  workflowRunStatusChanged(workspaceId: $ws, after: $after) { cursor status run { id input } }
}
"""


async def test_a_subscriber_that_stops_reading_is_closed_with_4429_and_can_resume(
    settings: Settings,
) -> None:
    limits = FanoutLimits(queue_capacity=8, max_lag=30, poll_interval=0.2)
    app = create_app(replace(settings, fanout=limits))
    async with running(app) as server:
        runtime = app.state.runtime
        # A client with a tiny receive window that reads nothing after subscribing.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(server.rsplit(":", 1)[1])))
        slow = await websockets.connect(
            ws_url(server), sock=sock, subprotocols=["graphql-transport-ws"], max_queue=1
        )
        await slow.send(
            json.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token()}"}}
            )
        )
        assert json.loads(await slow.recv())["type"] == "connection_ack"
        await slow.send(
            json.dumps(
                {
                    "id": "s",
                    "type": "subscribe",
                    "payload": {"query": HEAVY, "variables": {"ws": "ws-a"}},
                }
            )
        )
        async with LiveEvents(server, token(), query=HEAVY) as fast:
            await subscribers_registered(app, 2)
            total = 150
            for i in range(total):
                # One unit of work per create, scoped as the service's own are.
                async with scoped(runtime.pool, ["ws-a"], mode=runtime.settings.tenancy) as conn:
                    change = await create_run(
                        conn,
                        NewRun("ws-a", f"wf_{i}", RunTrigger.USER, input=BIG_INPUT),
                        user_id="u",
                    )
                runtime.events.published("ws-a", change.last_seq)
            # The reading subscriber gets everything, in order, while the other is stuck.
            events = await fast.wait_for_count(total, within=30)
            assert [e["status"] for e in events] == ["PENDING"] * total
            # The stuck one was dropped by the fan-out, holding no more than its queue.
            await wait_for(lambda: runtime.fanout.subscriber_count == 1, what="the drop")
            assert all(s.queued <= limits.queue_capacity for s in runtime.fanout.subscribers())

        # When it reads again, it finds what was sent, then the close frame naming its cursor.
        received = []
        close_code = close_reason = None
        try:
            while True:
                message = json.loads(await slow.recv())
                if message["type"] == "next":
                    received.append(message["payload"]["data"]["workflowRunStatusChanged"])
        except websockets.ConnectionClosed as closed:
            close_code, close_reason = closed.rcvd.code, closed.rcvd.reason
        assert close_code == 4429
        assert received, "some events were delivered before the stall"
        resume_from = close_reason.split("after=")[1]
        assert resume_from == received[-1]["cursor"]
        # Resuming from the named cursor yields exactly the rest.
        async with LiveEvents(server, token(), after=resume_from, query=HEAVY) as resumed:
            rest = await resumed.wait_for_count(total - len(received), within=30)
        ids = [e["run"]["id"] for e in received + rest]
        assert len(ids) == total and len(set(ids)) == total
        assert [e["cursor"] for e in received + rest] == sorted(e["cursor"] for e in events)
