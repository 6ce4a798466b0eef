"""Opaque cursors: positions in run lists, and positions in a workspace's event stream."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime, timedelta

import orjson

from db.records import Run, RunOrder
from db.runs import Keyset
from schema.errors import BadUserInput

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_VERSION = 1


def _scope_tag(scope: str, order: RunOrder) -> str:
    # Ties a cursor to its list (workspace or parent) and order, so that a cursor from
    # another list is refused instead of silently positioning this one.
    return hashlib.blake2s(f"{scope}|{order.name}".encode(), digest_size=4).hexdigest()


def _micros(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_cursor(scope: str, order: RunOrder, run: Run) -> str:
    """The opaque cursor of `run` in the list `scope` sorted by `order`."""
    value = getattr(run, order.column)
    payload = orjson.dumps([_VERSION, _scope_tag(scope, order), _micros(value), run.id])
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def decode_cursor(cursor: str, scope: str, order: RunOrder) -> Keyset:
    """The position a cursor names, or BAD_USER_INPUT if it is malformed or from another list."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, tag, micros, run_id = orjson.loads(raw)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadUserInput("Malformed cursor.") from None
    valid = (
        version == _VERSION
        and isinstance(micros, int)
        and isinstance(run_id, str)
        and -(2**62) < micros < 2**62
    )
    if not valid:
        raise BadUserInput("Malformed cursor.")
    if tag != _scope_tag(scope, order):
        raise BadUserInput("This cursor belongs to another list or order.")
    try:
        value = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise BadUserInput("Malformed cursor.") from None
    return Keyset(value, run_id)


# Event cursors are fixed-width hex: a tag of the workspace, then the sequence number. Within
# a workspace they sort as text in stream order, and a cursor of another workspace is refused.
_EVENT_CURSOR_LENGTH = 24


def _workspace_tag(workspace_id: str) -> str:
    return hashlib.blake2s(workspace_id.encode(), digest_size=4).hexdigest()


def encode_event_cursor(workspace_id: str, seq: int) -> str:
    """The cursor of event `seq` in the workspace's stream."""
    return f"{_workspace_tag(workspace_id)}{seq:016x}"


def decode_event_cursor(cursor: str, workspace_id: str) -> int:
    """The stream position a cursor names, or BAD_USER_INPUT."""
    if len(cursor) != _EVENT_CURSOR_LENGTH or not all(c in "0123456789abcdef" for c in cursor):
        raise BadUserInput("Malformed event cursor.")
    if cursor[:8] != _workspace_tag(workspace_id):
        raise BadUserInput("This event cursor belongs to another workspace.")
    return int(cursor[8:], 16)
