"""The storage layer's errors, and the one place that turns driver errors into them."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import asyncpg

from db.records import RunStatus


class RunsError(Exception):
    """Base of the errors a caller can act on; anything else is a bug or an outage."""


class NotFound(RunsError):
    """No such run, or not one the caller may see."""


class InvalidTransition(RunsError):
    """The run's current status does not allow the requested transition."""

    def __init__(self, current: RunStatus, target: RunStatus) -> None:
        super().__init__(f"Cannot move a run from {current.name} to {target.name}.")
        self.current = current
        self.target = target


class Conflict(RunsError):
    """The request contradicts stored state (an idempotency key reused with another payload)."""


class BadInput(RunsError):
    """The input cannot be stored as given."""


class CursorExpired(RunsError):
    """The events after this cursor were pruned by retention."""


class TooSlow(RunsError):
    """A statement ran past the database's statement_timeout."""


class Unavailable(RunsError):
    """The database cannot be reached right now; the request may be retried."""


# What the driver raises while the server is down, restarting, or was just restarted.
UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    # A pooled connection whose backend died, before the driver has read the close.
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)

P = ParamSpec("P")
T = TypeVar("T")


def translated(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Run `fn`, turning the driver errors that mean bad input into `BadInput`."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except asyncpg.ForeignKeyViolationError as exc:
            raise BadInput("parentRunId does not name a run of this workspace.") from exc
        except (
            asyncpg.CharacterNotInRepertoireError,
            asyncpg.UntranslatableCharacterError,
        ) as exc:
            raise BadInput("Text and JSON may not contain NUL characters.") from exc
        except asyncpg.DataError as exc:
            # The server words these about the value alone ("date out of range: ..."); the
            # driver's own encoding errors name parameters and Python reprs, so say less.
            message = str(exc.args[0]) if exc.args else str(exc)
            if message.startswith("invalid input for query argument"):
                raise BadInput("Invalid value: it cannot be stored.") from exc
            raise BadInput(f"Invalid value: {message}.") from exc
        except asyncpg.CheckViolationError as exc:
            raise BadInput("Invalid value.") from exc
        except asyncpg.QueryCanceledError as exc:
            raise TooSlow("The query took longer than the database allows.") from exc
        except UNAVAILABLE as exc:
            raise Unavailable("The database is unavailable; retry shortly.") from exc

    return wrapper
