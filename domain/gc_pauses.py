"""Fewer cyclic-GC passes while a bulk path allocates.

A batch of 1000 facts allocates a few hundred thousand short-lived objects (decoded dicts,
models, events, rows) next to a large long-lived heap (cached aggregates, a replay's
facts). With the default threshold (a young collection every 700 allocations) the batch's
objects survive several young collections, are promoted and traversed again and again: a
fifth of a profiled ingest's CPU and a quarter of a replay's. While a bulk path runs, young
collections wait for 100,000 allocations, by which time most of a batch is garbage that
reference counting already freed. Nothing is leaked: cycles are still collected, later.

Threads share the collector, so the first to enter sets the thresholds and the last to
leave restores them.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLDS = (100_000, 50, 100)

_lock = threading.Lock()
_inside = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def fewer_gc_pauses() -> Iterator[None]:
    global _inside, _saved
    with _lock:
        if _inside == 0:
            _saved = gc.get_threshold()
            if 0 < _saved[0] < BULK_THRESHOLDS[0]:  # 0: collection disabled; leave it so
                gc.set_threshold(*BULK_THRESHOLDS)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0 and gc.get_threshold() == BULK_THRESHOLDS:
                gc.set_threshold(*_saved)
