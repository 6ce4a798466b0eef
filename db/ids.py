"""Time-sortable, prefixed run ids: `run_` + a UUIDv7 in Crockford base32 (26 characters)."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
RUN_ID_PREFIX = "run_"


def new_run_id() -> str:
    """A new run id; ids sort by creation time (millisecond resolution), then at random."""
    return RUN_ID_PREFIX + _base32(_uuid7())


def _uuid7() -> int:
    # RFC 9562 section 5.7: 48-bit Unix time in ms, version 7, 74 random bits, variant 0b10.
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 68  # 12 bits
    rand_b = rand & ((1 << 62) - 1)  # 62 bits
    return (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b


def _base32(value: int) -> str:
    # 128 bits in 26 digits; the alphabet is in ASCII order, so the text sorts like the number.
    return "".join(_CROCKFORD[(value >> shift) & 0x1F] for shift in range(125, -1, -5))
