"""GC probe for benchmark servers: times every cyclic-GC collection of the process.

The benchmark puts this folder on the server's PYTHONPATH. With BENCH_GC_STATS=<file>, the
stats (collections, total and longest pause per generation) are written there after every
full collection and at exit. With BENCH_GC_FREEZE_ON_USR1=1, SIGUSR1 makes the process call
gc.freeze() (an experiment: what the service would gain by freezing its long-lived heap).
Without these variables it does nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import signal
import time
from typing import Any

_PATH = os.environ.get("BENCH_GC_STATS")


def _install_stats(path: str) -> None:
    stats: dict[str, Any] = {
        str(g): {"collections": 0, "seconds": 0.0, "max_s": 0.0} for g in range(3)
    }
    # Each full collection: (wall-clock end, seconds).
    full: list[tuple[float, float]] = []
    started = [0.0]

    def dump() -> None:
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(
                {"pid": os.getpid(), "at": time.time(), "generations": stats, "full": full}, out
            )
        os.replace(tmp, path)

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        elapsed = time.perf_counter() - started[0]
        entry = stats[str(info["generation"])]
        entry["collections"] += 1
        entry["seconds"] += elapsed
        entry["max_s"] = max(entry["max_s"], elapsed)
        if info["generation"] == 2:
            full.append((time.time(), elapsed))
            with contextlib.suppress(OSError):
                dump()

    gc.callbacks.append(callback)
    atexit.register(dump)


if _PATH:
    _install_stats(_PATH)
if os.environ.get("BENCH_GC_FREEZE_ON_USR1") == "1":
    signal.signal(signal.SIGUSR1, lambda *_: gc.freeze())
