"""Fan-out of workspace event streams to this process's subscribers.

One `EventFanout` per process. It learns that a stream grew from hints (its own commits, and
NOTIFYs from other processes through the `EventListener`) and from a periodic poll, reads each
batch of new events once (one statement for every workspace that grew), and offers each event
to every subscriber of that workspace.

Each `Subscriber` delivers its workspace's events gap-free and in order, whatever happens
around it. It knows the last seq it queued; an offered event that does not follow it (the
subscriber started from an older cursor, its queue was full, the listener was down) is not
queued but read back from the table, at the consumer's own pace. Because a workspace's seqs
have no gaps in commit order, "read everything after N" can neither skip nor repeat an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg

from db import events
from db.errors import UNAVAILABLE, BadInput, Unavailable
from db.listener import EventListener
from db.records import RunEvent, RunStatus
from db.tenancy import Tenancy, scoped

log = logging.getLogger(__name__)


def _backoff(failures: int) -> float:
    return float(min(2.0, 0.05 * 2**failures))


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events of the workspace a subscriber wants."""

    run_id: str | None = None
    statuses: frozenset[RunStatus] | None = None

    def matches(self, event: RunEvent) -> bool:
        if self.run_id is not None and event.run_id != self.run_id:
            return False
        return self.statuses is None or event.status in self.statuses


@dataclass(frozen=True, slots=True)
class FanoutLimits:
    # Events held in memory per subscriber; past that it reads from the table instead.
    queue_capacity: int = 256
    # How far (in events) a subscriber may trail its stream before it is disconnected.
    max_lag: int = 10_000
    # Events per read, for the fan-out and for a subscriber catching up.
    page_size: int = 500
    # Safety net: read every subscribed stream this often even without hints.
    poll_interval: float = 1.0


class Subscriber:
    """One subscription to a workspace's stream, from a position on."""

    def __init__(
        self,
        fanout: EventFanout,
        workspace_id: str,
        after: int,
        flt: EventFilter,
        on_overflow: Callable[[int], None],
    ) -> None:
        self.workspace_id = workspace_id
        self.filter = flt
        # The last seq the consumer has taken (delivered, or skipped by the filter).
        self.position = after
        self._fanout = fanout
        self._limits = fanout.limits
        self._on_overflow = on_overflow
        # Idle subscribers are most of them: the queue and the waiter exist only while needed
        # (an empty deque or asyncio.Event costs ~760 bytes).
        self._queue: deque[RunEvent] | None = None
        self._queued_through = after
        # True when events after _queued_through exist that are only in the table.
        self._behind = True
        self._waiter: asyncio.Future[None] | None = None
        self._overflowed = False
        self._closed = False
        # Set by a consumer that can send an event at once (True: sent). Used in place of
        # waking the consumer while it waits with nothing queued, so that one event reaches
        # thousands of subscribers without a task switch for each.
        self.direct: Callable[[RunEvent], bool] | None = None

    def offer(self, event: RunEvent) -> None:
        """Called by the fan-out for each new event of the workspace, in order."""
        if self._closed or self._overflowed or event.seq <= self._queued_through:
            return
        if event.seq - self.position > self._limits.max_lag:
            self._overflowed = True
            self._queue = None
            self._wake()
            self._fanout.remove(self)
            self._on_overflow(self.position)
            return
        if (
            self._behind
            or event.seq != self._queued_through + 1
            or self.queued >= self._limits.queue_capacity
        ):
            self._behind = True
        elif self._taken_at_once(event):
            self.position = self._queued_through = event.seq
            return
        else:
            self._enqueue(event)
        self._wake()

    def _taken_at_once(self, event: RunEvent) -> bool:
        # Only while the consumer waits with nothing queued before this event: it is then
        # sending nothing, so what is sent here stays in order. A filtered-out event is taken
        # without a send; the consumer stays asleep.
        waiter = self._waiter
        if self.direct is None or self._queue is not None or waiter is None or waiter.done():
            return False
        return not self.filter.matches(event) or self.direct(event)

    def _enqueue(self, event: RunEvent) -> None:
        if self._queue is None:
            self._queue = deque()
        self._queue.append(event)
        self._queued_through = event.seq

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> AsyncIterator[RunEvent]:
        return self

    async def __anext__(self) -> RunEvent:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._overflowed:
                # The transport is closing this subscriber's connection; nothing more to send.
                await asyncio.Event().wait()
            if self._queue:
                event = self._queue.popleft()
                if not self._queue:
                    self._queue = None
                self.position = event.seq
                if self.filter.matches(event):
                    return event
                continue
            if self._behind:
                await self._catch_up()
                continue
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def _catch_up(self) -> None:
        # Offers arriving during the read either extend the queue (if they follow it) or set
        # _behind again; events the read returns that are already queued are skipped.
        self._behind = False
        page = min(self._limits.page_size, self._limits.queue_capacity)
        rows = await self._read_patiently(page)
        for event in rows:
            if event.seq <= self._queued_through:
                continue
            if event.seq != self._queued_through + 1:
                self._behind = True
                break
            self._enqueue(event)
        if len(rows) == page:
            self._behind = True

    async def _read_patiently(self, page: int) -> list[RunEvent]:
        # Through a database restart the subscription waits, then resumes where it was.
        failures = 0
        while True:
            try:
                return await self._fanout.read_after(self.workspace_id, self._queued_through, page)
            except (Unavailable, *UNAVAILABLE) as exc:
                failures += 1
                log.info("subscriber waiting for the database (%s)", exc)
                await asyncio.sleep(_backoff(failures))

    @property
    def queued(self) -> int:
        """Events held in memory for this subscriber (never more than the queue capacity)."""
        return len(self._queue) if self._queue is not None else 0

    def close(self) -> None:
        """Stop: the fan-out forgets this subscriber."""
        if not self._closed:
            self._closed = True
            self.direct = None
            self._wake()
            self._fanout.remove(self)


class EventFanout:
    """Reads new events once per batch and offers them to this process's subscribers."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        listen_dsn: str,
        limits: FanoutLimits | None = None,
        *,
        tenancy: Tenancy = Tenancy.SESSION,
    ) -> None:
        self.pool = pool
        # Reads are scoped to exactly the workspaces they read, like any request's.
        self._tenancy = tenancy
        self.limits = limits or FanoutLimits()
        self.listener = EventListener(
            listen_dsn, on_hints=self._remote_hints, on_connect=self._catch_up_all
        )
        self._subscribers: dict[str, set[Subscriber]] = {}
        # Per subscribed workspace, the last seq offered to its subscribers.
        self._positions: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._read_wake = asyncio.Event()
        self._outgoing: dict[str, int] = {}
        self._send_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Observability: events offered, and the delay from commit to offer of the last batch.
        self.events_dispatched = 0
        self.last_lag_s = 0.0

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def subscribers(self) -> list[Subscriber]:
        """This process's subscribers, for inspection."""
        return [s for group in self._subscribers.values() for s in group]

    async def start(self) -> None:
        self.listener.start()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="fanout-read"),
            asyncio.create_task(self._send_loop(), name="fanout-hints"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.listener.stop()
        for subscribers in list(self._subscribers.values()):
            for subscriber in list(subscribers):
                subscriber.close()

    # --- the EventSink side: this process committed events ---------------------------------

    def published(self, workspace_id: str, seq: int) -> None:
        """A commit of ours appended events up to `seq`: tell local and remote readers."""
        self._outgoing[workspace_id] = max(seq, self._outgoing.get(workspace_id, 0))
        self._send_wake.set()
        self._mark(workspace_id, seq)

    # --- subscribing ------------------------------------------------------------------------

    async def subscribe(
        self,
        workspace_id: str,
        *,
        after: int | None,
        flt: EventFilter,
        on_overflow: Callable[[int], None],
    ) -> Subscriber:
        """A subscriber from `after` (a seq), or from the stream's head when None.

        Raises CursorExpired when events after `after` were pruned, BadInput when `after` is
        beyond the stream.
        """
        async with scoped(self.pool, [workspace_id], mode=self._tenancy) as conn:
            if after is None:
                bounds = await events.stream_bounds(conn, workspace_id)
            else:
                bounds = await events.check_resumable(conn, workspace_id, after)
                if after > bounds.last_seq:
                    raise BadInput("This cursor is ahead of the workspace's event stream.")
        start = bounds.last_seq if after is None else after
        subscriber = Subscriber(self, workspace_id, start, flt, on_overflow)
        if workspace_id not in self._subscribers:
            self._subscribers[workspace_id] = set()
            self._positions[workspace_id] = bounds.last_seq
        self._subscribers[workspace_id].add(subscriber)
        return subscriber

    def remove(self, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(subscriber.workspace_id)
        if subscribers is None:
            return
        subscribers.discard(subscriber)
        if not subscribers:
            del self._subscribers[subscriber.workspace_id]
            self._positions.pop(subscriber.workspace_id, None)
            self._dirty.discard(subscriber.workspace_id)

    async def read_after(self, workspace_id: str, after: int, limit: int) -> list[RunEvent]:
        """The stored events after `after`, for a subscriber catching up."""
        async with scoped(self.pool, [workspace_id], mode=self._tenancy) as conn:
            return await events.events_after(conn, workspace_id, after, limit)

    # --- learning that streams grew ---------------------------------------------------------

    def _mark(self, workspace_id: str, seq: int | None) -> None:
        position = self._positions.get(workspace_id)
        if position is not None and (seq is None or seq > position):
            self._dirty.add(workspace_id)
            self._read_wake.set()

    def _remote_hints(self, hints: dict[str, int]) -> None:
        for workspace_id, seq in hints.items():
            self._mark(workspace_id, seq)

    def _catch_up_all(self) -> None:
        for workspace_id in self._positions:
            self._mark(workspace_id, None)

    async def _read_loop(self) -> None:
        failures = 0
        while True:
            try:
                async with asyncio.timeout(self.limits.poll_interval):
                    await self._read_wake.wait()
            except TimeoutError:
                # The safety net: no hint for a while, look at every subscribed stream.
                self._dirty.update(self._positions)
            self._read_wake.clear()
            dirty, self._dirty = self._dirty, set()
            positions = {w: self._positions[w] for w in dirty if w in self._positions}
            if not positions:
                continue
            try:
                async with scoped(self.pool, positions, mode=self._tenancy) as conn:
                    found = await events.new_events(conn, positions, self.limits.page_size)
                failures = 0
            except Exception as exc:  # this loop must outlive any failure
                failures += 1
                log.warning("fan-out read failed (%r); retrying", exc)
                self._dirty.update(positions)
                await asyncio.sleep(_backoff(failures))
                continue
            self._dispatch(found)

    def _dispatch(self, found: dict[str, list[RunEvent]]) -> None:
        now = time.time()
        for workspace_id, batch in found.items():
            subscribers = self._subscribers.get(workspace_id)
            if subscribers is None:
                continue
            for event in batch:
                if event.seq != self._positions[workspace_id] + 1:
                    break  # cannot happen with gap-free seqs; re-read from the position
                for subscriber in list(subscribers):
                    subscriber.offer(event)
                self._positions[workspace_id] = event.seq
                self.events_dispatched += 1
            if batch:
                self.last_lag_s = max(0.0, now - batch[-1].occurred_at.timestamp())
            if len(batch) == self.limits.page_size:
                self._dirty.add(workspace_id)
                self._read_wake.set()

    async def _send_loop(self) -> None:
        # While one NOTIFY is in flight, later commits' hints accumulate and go out together.
        # Hints that could not go out (the listener is reconnecting) wait for it, merged with
        # newer ones: other processes then learn of those commits without waiting to poll.
        while True:
            await self._send_wake.wait()
            self._send_wake.clear()
            hints, self._outgoing = self._outgoing, {}
            if not hints:
                continue
            try:
                sent = await self.listener.send(hints)
            except Exception as exc:
                log.warning("could not send event hints: %r", exc)
                sent = False
            if not sent:
                for workspace_id, seq in hints.items():
                    self._outgoing[workspace_id] = max(seq, self._outgoing.get(workspace_id, 0))
                # Wait for the reconnect, pausing at least briefly so that a connection that
                # still looks up but cannot send is not retried in a tight loop.
                # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.)
                await asyncio.sleep(0.05)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self.listener.connected.wait()
                self._send_wake.set()
