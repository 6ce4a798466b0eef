"""A time limit on each operation's execution."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.errors import QueryTooComplex


def overran(seconds: float) -> QueryTooComplex:
    """The error of an operation cut off after `seconds`."""
    return QueryTooComplex(f"The operation took longer than {round(seconds * 1000)} ms.")


class ExecutionDeadline(SchemaExtension):
    """Cancels an operation whose execution outlasts `seconds` (QUERY_TOO_COMPLEX).

    It wraps the execution of queries and mutations; subscriptions are left alone. A planned
    query that the generic path runs after all (schema/plans.py) keeps the plan's deadline.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def on_execute(self) -> AsyncIterator[None]:
        if self.execution_context.operation_type is OperationType.SUBSCRIPTION:
            # A subscription's setup is bounded by the statement timeout; under a reconnect
            # storm it may queue for long, and failing it would only make clients retry.
            yield
            return
        context = self.execution_context.context
        when = getattr(context, "deadline", None)
        if when is not None:
            context.deadline = None  # one operation's: a socket's context outlives it
            deadline = asyncio.timeout_at(when)
        else:
            deadline = asyncio.timeout(self.seconds)
        try:
            async with deadline:
                yield
        except TimeoutError:
            if not deadline.expired():
                raise  # someone else's timeout (say, waiting for a connection)
            raise overran(self.seconds) from None
