"""What every resolver gets: the caller, the pool, the loaders, the limits and the event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg

from db.errors import UNAVAILABLE
from db.fanout import EventFanout
from db.replicas import ReadRouter
from db.tenancy import Tenancy, scoped
from schema.errors import Forbidden, Unauthenticated
from schema.loaders import Loaders

if TYPE_CHECKING:
    from schema.live import LiveExecutor

READ = "runs:read"
WRITE = "runs:write"
# A connection is scoped to its viewer's whole grant up to this many workspaces: each statement
# reads the setting, whose cost grows with its length (db/tenancy.py).
WHOLE_GRANT_MAX = 64


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated caller, as its token says."""

    user_id: str
    workspaces: frozenset[str]
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one request may ask for; each is configurable."""

    default_page_size: int = 50
    max_page_size: int = 500
    max_json_bytes: int = 256 * 1024
    max_text_bytes: int = 64 * 1024
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5_000
    max_fields: int = 500
    max_field_repeats: int = 5
    max_subscriptions_per_socket: int = 100
    execution_timeout_ms: int = 10_000
    statement_timeout_ms: int = 30_000


class EventSink(Protocol):
    """Told about each committed change, so that live subscribers hear of it at once."""

    def published(self, workspace_id: str, seq: int) -> None: ...


class NoEventSink:
    """An EventSink for processes with no subscribers (the CLI, some tests)."""

    def published(self, workspace_id: str, seq: int) -> None:
        return None


@dataclass
class Context:
    """Built once per HTTP request, or once per WebSocket connection."""

    pool: asyncpg.Pool
    limits: Limits
    # Cached loads suit a request; a socket's context lives for hours, so it loads afresh.
    cache_loads: bool = True
    events: EventSink = field(default_factory=NoEventSink)
    # The process's event fan-out, for subscriptions (None where there are none).
    stream: EventFanout | None = None
    # Shared execution of subscription payloads (None: each subscriber executes its own).
    live: LiveExecutor | None = None
    viewer: Viewer | None = None
    request_id: str | None = None
    # The Starlette request or websocket, and for sockets the connection_init payload.
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    # For sockets: close the connection with (code, reason), from any task.
    disconnect: Callable[[int, str], None] | None = None
    # Read replicas (None: everything on the primary), the position a read must see
    # (X-Min-LSN), whether this request has written, and its last commit's position.
    router: ReadRouter | None = None
    tenancy: Tenancy = Tenancy.SESSION
    # Answer plain run selections with JSON built by PostgreSQL (schema/compiled.py).
    compiled_selections: bool = True
    min_lsn: int | None = None
    wrote: bool = False
    commit_lsn: int | None = None
    # When the operation must end (event loop time), if a plan set it before giving the
    # request to the generic path (schema/plans.py); ExecutionDeadline takes it from here.
    deadline: float | None = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        # Loaders read through this context, so they follow its replica and tenancy rules.
        self.loaders = Loaders(self.connection, cache=self.cache_loads)

    @asynccontextmanager
    async def connection(
        self, workspaces: Iterable[str], *, write: bool = False, isolation: str | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        """A connection for one unit of work that sees only `workspaces`.

        Reads go to a healthy replica when there are replicas, unless this request has written
        (it then reads its own writes on the primary) or names a position no replica reached.
        """
        workspaces = self._scope(workspaces)
        mode = self.tenancy
        timeout = self.limits.statement_timeout_ms
        replica = None
        pool = self.pool
        if not write and not self.wrote and self.router is not None:
            pool, replica = self.router.pool_for_read(self.min_lsn)
        try:
            scope = scoped(
                pool, workspaces, mode=mode, isolation=isolation, statement_timeout_ms=timeout
            )
            conn = await scope.__aenter__()
        except UNAVAILABLE:
            if replica is None or self.router is None:
                raise
            # The replica went away since its last health check: the primary answers.
            self.router.mark_down(replica)
            scope = scoped(
                self.pool,
                workspaces,
                mode=mode,
                isolation=isolation,
                statement_timeout_ms=timeout,
            )
            conn = await scope.__aenter__()
        try:
            yield conn
        except BaseException as exc:
            if not await scope.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            await scope.__aexit__(None, None, None)

    def _scope(self, workspaces: Iterable[str]) -> Collection[str]:
        """What the connection for work on `workspaces` sees: in SESSION mode, the viewer's
        whole grant when it covers them (and is not huge); else `workspaces`.

        Row-level security then still confines every statement to what the token may read,
        and a pooled connection keeps its scope from one request of the same viewer to the
        next, whichever of its workspaces each names: in steady state, no statement is spent
        on scoping (db/tenancy.py). Scoped per workspace, a dashboard paging through several
        workspaces paid a `set_config` round trip on most requests. In TRANSACTION mode every
        unit of work sends its setting anyway: it names only the workspaces of the work.
        """
        wanted = list(workspaces)
        viewer = self.viewer
        if (
            self.tenancy is Tenancy.SESSION
            and viewer is not None
            and len(viewer.workspaces) <= WHOLE_GRANT_MAX
            and viewer.workspaces.issuperset(wanted)
        ):
            return viewer.workspaces
        return wanted

    def authorize(self, scope: str, workspace_id: str | None = None) -> Viewer:
        """The caller, if its token has `scope` (and `workspace_id`, when given)."""
        viewer = self.viewer
        if viewer is None:
            raise Unauthenticated("Missing or invalid token.")
        if scope not in viewer.scopes:
            raise Forbidden(f"The token lacks the {scope} scope.")
        if workspace_id is not None and workspace_id not in viewer.workspaces:
            raise Forbidden("The token does not grant access to this workspace.")
        return viewer
