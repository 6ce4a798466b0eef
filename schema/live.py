"""Shared execution of live subscriptions: one execution per event and query shape.

Strawberry (through graphql-core) executes a subscription's selection set once per event per
subscriber. With thousands of dashboards watching one workspace with the same query, that is
thousands of identical executions per status change. Here, subscribers whose operation has the
same document and the same values for the variables the selection uses share one execution
per event; each subscriber then only frames and sends the encoded payload.

The transport opts in per operation: before Strawberry starts the operation it sets
`LIVE_OPERATION` (the operation's id, its raw variables and how to send a payload). The
resolver finds it, hands its subscriber to `LiveExecutor.deliver`, and returns a stream that
never yields, so parsing, validation, limits and authorization stay Strawberry's and ours as
for any operation. Without the mark (another transport), the generic path runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    execute,
    visit,
)
from graphql.language import Visitor
from strawberry.types import Info

from db.fanout import Subscriber
from db.records import RunEvent

log = logging.getLogger(__name__)


class PayloadSender(Protocol):
    """Sends one event's payload, JSON text, framed for one operation."""

    async def __call__(self, payload: str) -> None: ...

    def now(self, payload: str) -> bool:
        """Send at once if nothing stands in the way; False: nothing was sent.

        Nothing stands in the way when the socket is open and not pushing back; otherwise the
        caller awaits the sender itself.
        """
        ...


@dataclass(frozen=True)
class LiveOperation:
    """What the transport tells the resolver about the operation it is starting."""

    id: str
    variables: dict[str, Any] | None
    # Sends one event's encoded payload ({"data": ...}) framed for this operation.
    send: PayloadSender
    # The transport catches `Handoff` and runs the delivery itself (see Held).
    handoff: bool = False


class Handoff(BaseException):
    """Raised from a shared subscription's stream to leave Strawberry's stream for good; the
    transport then awaits `deliver` in the operation's own task.

    An idle subscription would otherwise keep Strawberry's and graphql-core's whole stream alive
    (the operation's generators, its extension contexts, the subscription's execution context)
    for as long as it runs: about a quarter of an idle socket's memory. A BaseException, so that
    no `except Exception` on the way turns it into an error result.
    """

    def __init__(self, deliver: Callable[[], Awaitable[None]], abandon: Callable[[], None]) -> None:
        super().__init__()
        self._deliver = deliver
        self._abandon = abandon
        self._taken = False

    def take(self) -> Callable[[], Awaitable[None]]:
        """The delivery, now the taker's to await."""
        self._taken = True
        return self._deliver

    def __del__(self) -> None:
        # Swallowed on its way up (no hook does that today): nobody will deliver, so nobody
        # would close the subscriber either.
        if not self._taken:
            self._abandon()


LIVE_OPERATION: contextvars.ContextVar[LiveOperation | None] = contextvars.ContextVar(
    "live_operation", default=None
)


@dataclass(frozen=True)
class Shape:
    """An operation as far as its payloads are concerned."""

    document: DocumentNode
    operation_name: str | None
    variables: dict[str, Any]
    key: tuple[Any, ...]


class _VariablesUsed(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        self.names.add(node.name.value)


def _payload_variables(operation: OperationDefinitionNode, document: DocumentNode) -> set[str]:
    """Variables used inside the root field's selection (its own arguments only filter)."""
    used = _VariablesUsed()
    root = operation.selection_set.selections[0]
    if isinstance(root, FieldNode) and root.selection_set is not None:
        visit(root.selection_set, used)
    # Fragments may be spread anywhere below; their variables count too.
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            visit(definition, used)
    return used.names


def _is_single_root_field(selection_set: SelectionSetNode) -> bool:
    selections = selection_set.selections
    return (
        len(selections) == 1
        and isinstance(selections[0], FieldNode)
        and not isinstance(selections[0], (FragmentSpreadNode, InlineFragmentNode))
        and not selections[0].directives
    )


@dataclass
class LiveExecutor:
    """Executes subscription payloads once per (shape, event) and hands them out."""

    schema: Any
    # Builds the context a shared execution runs with (no viewer: the event is in the
    # workspace every sharing subscriber was authorized for, and nested fields stay in it).
    make_context: Callable[[], Any]
    cache_size: int = 4096
    # Payloads being executed, and payloads done (most subscribers find theirs here).
    _pending: dict[tuple[Any, ...], asyncio.Task[str]] = field(default_factory=dict)
    _ready: OrderedDict[tuple[Any, ...], str] = field(default_factory=OrderedDict)
    # Per operation (by id, checked by identity): the document to execute, the variables its
    # selection uses, and a serial number that stands for the operation in payload keys (an
    # id can be reused once its operation is gone; a serial number is never).
    _variables_used: dict[int, tuple[DocumentNode, set[str], int]] = field(default_factory=dict)
    _serial: int = 0
    executions: int = 0
    # Payloads the fan-out sent in place, without waking their subscriber.
    sent_in_place: int = 0

    def shape(self, info: Info[Any, Any], raw_variables: dict[str, Any] | None) -> Shape | None:
        """The shape of the resolving operation, or None when it cannot be shared."""
        operation = info.operation
        if not _is_single_root_field(operation.selection_set):
            return None
        document = DocumentNode(definitions=(operation, *info._raw_info.fragments.values()))
        cached = self._variables_used.get(id(operation))
        if cached is None or cached[0].definitions[0] is not operation:
            self._serial += 1
            cached = (document, _payload_variables(operation, document), self._serial)
            self._variables_used[id(operation)] = cached
            if len(self._variables_used) > self.cache_size:
                self._variables_used.pop(next(iter(self._variables_used)))
        document, names, serial = cached
        variables = raw_variables or {}
        # Only the variables the selection uses tell payloads apart; the root field's own
        # arguments (workspace, filters, cursor) only decide which events arrive.
        relevant = {k: v for k, v in variables.items() if k in names}
        operation_name = operation.name.value if operation.name else None
        # Decoded: orjson's bytes keep its ~4 KiB output buffer, and each subscriber holds a key.
        encoded = orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS).decode()
        key = (serial, operation_name, encoded)
        return Shape(document, operation_name, variables, key)

    async def deliver(self, subscriber: Subscriber, shape: Shape, send: PayloadSender) -> None:
        """Send each of the subscriber's events, executed once per shape."""
        # While this loop waits for the next event, the fan-out sends it in place when it can:
        # no task to wake per subscriber per event (db/fanout.py, Subscriber.offer).
        subscriber.direct = lambda event: self._send_now(shape, event, send)
        async for event in subscriber:
            payload = self.payload(shape, event)
            if not isinstance(payload, str):
                # Only while the execution is in flight; shielded, so that a subscriber
                # leaving does not cancel it for the others.
                payload = await asyncio.shield(payload)
            try:
                await send(payload)
            except Exception:  # the socket is gone; the transport cleans the operation up
                return

    def _send_now(self, shape: Shape, event: RunEvent, send: PayloadSender) -> bool:
        try:
            payload = self.payload(shape, event)
            # An execution still in flight is awaited by the subscriber's own loop.
            if isinstance(payload, str) and send.now(payload):
                self.sent_in_place += 1
                return True
            return False
        except Exception:
            # The subscriber's loop meets the same failure, and reports it as usual.
            return False

    def payload(self, shape: Shape, event: RunEvent) -> str | asyncio.Task[str]:
        """The encoded payload of `event` for `shape`, or the task finishing its execution."""
        key = (*shape.key, event.workspace_id, event.seq)
        ready = self._ready.get(key)
        if ready is not None:
            return ready
        task = self._pending.get(key)
        if task is not None:
            return task
        self.executions += 1
        result = execute(
            self.schema._schema,
            shape.document,
            root_value=event,
            context_value=self.make_context(),
            variable_values=shape.variables,
            operation_name=shape.operation_name,
            executor_class=self.schema.execution_context_class,
        )
        if isinstance(result, ExecutionResult):
            # Fields of the event and its run resolve at once: done here, so the other
            # subscribers woken by this event find it ready rather than wait on a task.
            return self._store(key, self._encode(result))
        task = asyncio.ensure_future(self._finish(result))
        self._pending[key] = task
        task.add_done_callback(lambda done: self._settle(key, done))
        return task

    def _store(self, key: tuple[Any, ...], payload: str) -> str:
        self._ready[key] = payload
        if len(self._ready) > self.cache_size:
            self._ready.popitem(last=False)
        return payload

    def _settle(self, key: tuple[Any, ...], task: asyncio.Task[str]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            self._store(key, task.result())

    async def _finish(self, pending: Awaitable[ExecutionResult]) -> str:
        return self._encode(await pending)

    def _encode(self, result: ExecutionResult) -> str:
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            errors: list[GraphQLError] = list(result.errors)
            self.schema.process_errors(errors)
            payload["errors"] = [e.formatted for e in errors]
        # Text, decoded once per event and shape rather than per subscriber (and orjson's own
        # bytes would keep a ~4 KiB buffer in the cache).
        return orjson.dumps(payload).decode()


class Held:
    """The stream Strawberry iterates for a shared subscription. It yields nothing: its first
    step delivers the subscriber's events, and ends, closing the subscriber, when the operation
    is stopped (completed by the client, or its socket closed) or the delivery ends. Where the
    transport takes a `Handoff`, that step raises one and the transport delivers instead;
    otherwise it delivers inside Strawberry's operation task."""

    def __init__(
        self,
        executor: LiveExecutor,
        subscriber: Subscriber,
        shape: Shape,
        send: PayloadSender,
        handoff: bool = False,
    ) -> None:
        self._executor = executor
        self._subscriber = subscriber
        self._shape = shape
        self._send = send
        self._handoff = handoff
        self._handed_off = False

    def __aiter__(self) -> Held:
        return self

    async def __anext__(self) -> Any:
        if self._handoff and not self._handed_off:
            self._handed_off = True
            raise Handoff(self.deliver, self._subscriber.close)
        await self.deliver()
        raise StopAsyncIteration

    async def deliver(self) -> None:
        """Send the subscriber's events until the operation stops; then close the subscriber."""
        try:
            await self._executor.deliver(self._subscriber, self._shape, self._send)
        finally:
            self._subscriber.close()

    async def aclose(self) -> None:
        # Closed by Strawberry's stream as the handoff passes through: the delivery goes on.
        if not self._handed_off:
            self._subscriber.close()
