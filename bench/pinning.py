"""CPU pinning: the service (and its database) on one core, the load generator on another."""

from __future__ import annotations

import os
import shutil

SERVER_CPU = 0
LOAD_CPU = 1


def pin_load_generator() -> str:
    """Pin this process to LOAD_CPU when the machine has it; returns where it runs."""
    available = os.sched_getaffinity(0)
    if LOAD_CPU in available and len(available) > 1:
        os.sched_setaffinity(0, {LOAD_CPU})
        return str(LOAD_CPU)
    return "unpinned (" + ",".join(str(c) for c in sorted(available)) + ")"


def server_prefix() -> list[str]:
    """The command prefix that pins a child process to SERVER_CPU (empty on one core)."""
    if (os.cpu_count() or 1) > 1 and shutil.which("taskset"):
        return ["taskset", "-c", str(SERVER_CPU)]
    return []
