"""What the app's lifespan opens and the endpoints share: the pool, the event stream, the keys,
and the one place that builds a request's GraphQL context."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from db.fanout import EventFanout
from db.replicas import ReadRouter
from schema import RunsSchema
from schema.context import Context, EventSink, NoEventSink, Viewer
from schema.live import LiveExecutor
from server.auth import TokenVerifier
from server.config import Settings


@dataclass
class Runtime:
    settings: Settings
    verifier: TokenVerifier
    schema: RunsSchema
    pool: asyncpg.Pool | None = None
    events: EventSink = field(default_factory=NoEventSink)
    fanout: EventFanout | None = None
    live: LiveExecutor | None = None
    router: ReadRouter | None = None
    # Statements sent to PostgreSQL by the pool since start; open WebSockets.
    queries: int = 0
    sockets: int = 0
    # Fire-and-forget tasks (socket closes), kept referenced until done.
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def count_query(self, record: Any) -> None:
        self.queries += 1

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` in the background, keeping a reference until it ends."""
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def context(
        self,
        request: Any,
        *,
        viewer: Viewer | None,
        socket: bool = False,
        disconnect: Callable[[int, str], None] | None = None,
        min_lsn: int | None = None,
    ) -> Context:
        """The GraphQL context of one HTTP request or one WebSocket connection.

        Sockets get uncached loaders: a subscription lives for hours, and each event must see
        the runs as they are then.
        """
        assert self.pool is not None, "the app's lifespan has not started"
        return Context(
            pool=self.pool,
            limits=self.settings.limits,
            cache_loads=not socket,
            events=self.events,
            stream=self.fanout,
            live=self.live,
            viewer=viewer,
            request_id=request.scope.get("state", {}).get("request_id") if request else None,
            request=request,
            disconnect=disconnect,
            router=self.router,
            tenancy=self.settings.tenancy,
            compiled_selections=self.settings.compiled_selections,
            min_lsn=min_lsn,
        )

    def shared_context(self) -> Context:
        """The context of a shared subscription execution: no viewer, a fresh batch of loaders."""
        return self.context(None, viewer=None)
