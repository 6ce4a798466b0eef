"""Errors the API shows, their `extensions.code`, and the extension that applies them.

Resolvers raise typed errors (ours or `db.errors`); this module maps each class to its code
in one place. Anything else is a bug or an outage: clients see INTERNAL_SERVER_ERROR with a
request id, and the log gets the full error under the same id. `RunsSchema.process_errors`
applies `shape_error` to every error of every result.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

from db import errors as db_errors

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error of the API layer; `code` becomes `extensions.code`."""

    code = "INTERNAL_SERVER_ERROR"


class Unauthenticated(ApiError):
    code = "UNAUTHENTICATED"


class Forbidden(ApiError):
    code = "FORBIDDEN"


class QueryTooComplex(ApiError):
    code = "QUERY_TOO_COMPLEX"


class BadUserInput(ApiError):
    code = "BAD_USER_INPUT"


_DB_CODES: dict[type[Exception], str] = {
    db_errors.NotFound: "NOT_FOUND",
    db_errors.InvalidTransition: "INVALID_TRANSITION",
    db_errors.Conflict: "CONFLICT",
    db_errors.BadInput: "BAD_USER_INPUT",
    db_errors.CursorExpired: "CURSOR_EXPIRED",
    db_errors.TooSlow: "QUERY_TOO_COMPLEX",
}

# Messages of graphql-core's and Strawberry's own limits, which carry no code of their own.
_TOO_COMPLEX_MARKERS = (
    "exceeds maximum operation depth",
    "aliases found. Allowed",
    "Document contains more than",
    "Document is nested too deeply",
    "Maximum introspection depth exceeded",
)


def error_extensions(exc: BaseException) -> dict[str, Any] | None:
    """The `extensions` for one of our typed errors, or None for anything else."""
    if isinstance(exc, (db_errors.Unavailable, *db_errors.UNAVAILABLE)):
        # An outage, not a bug: the client may retry; the message says so.
        return {"code": "INTERNAL_SERVER_ERROR", "retryable": True}
    if isinstance(exc, ApiError):
        return {"code": exc.code}
    if isinstance(exc, db_errors.InvalidTransition):
        return {
            "code": "INVALID_TRANSITION",
            "currentStatus": exc.current.name,
            "targetStatus": exc.target.name,
        }
    for cls, code in _DB_CODES.items():
        if isinstance(exc, cls):
            return {"code": code}
    return None


def _is_too_complex(error: GraphQLError) -> bool:
    return any(marker in error.message for marker in _TOO_COMPLEX_MARKERS)


def shape_error(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """Give an error its code, masking anything that is not ours."""
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    extensions = error_extensions(original) if original is not None else None
    if extensions is not None:
        if extensions.get("retryable"):
            log.warning("database unavailable (request %s): %r", request_id, original)
            return GraphQLError(
                "The database is unavailable; retry shortly.",
                nodes=error.nodes,
                path=error.path,
                extensions={**extensions, "requestId": request_id},
            )
        return _with_extensions(error, extensions)
    if isinstance(error, GraphQLSyntaxError):
        code = "QUERY_TOO_COMPLEX" if _is_too_complex(error) else "GRAPHQL_PARSE_FAILED"
        return _with_extensions(error, {"code": code})
    if original is None:
        # Validation (before execution) or variable coercion (no path): GraphQL's own.
        if _is_too_complex(error):
            code = "QUERY_TOO_COMPLEX"
        elif error.path is None and error.message.startswith("Variable "):
            code = "BAD_USER_INPUT"
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        return _with_extensions(error, {"code": code})
    if error.path is None and isinstance(original, (GraphQLError, ValueError, TypeError)):
        # A scalar refused a variable's value while coercing it: the client's input.
        return _with_extensions(error, {"code": "BAD_USER_INPUT"})
    log.error(
        "unexpected error in %s (request %s)",
        ".".join(str(p) for p in error.path or []) or "operation",
        request_id,
        exc_info=(type(original), original, original.__traceback__),
    )
    return GraphQLError(
        "Internal server error.",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
    )


def _with_extensions(error: GraphQLError, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), **extensions},
    )
