"""Python's cyclic garbage collector made lazier while an initial sync runs (issue 15).

Why: an initial sync creates millions of container objects that live for a page or two (orjson's list per row of
each page of 10,000, the tuples bound to SQLite, the dicts of tickets and read markers). With the default
thresholds (700, 10, 10) the collector runs a young collection every 700 net allocations of containers, and the
pages waiting in the prefetch queue survive into the older generations until a full collection walks the whole
heap, the app's and everything else the process holds. Measured on the admin's first sync of 1M messages through
the engine (in the bench's process, which also holds the generated desk; load 7 to 10): 3,086 young, 281 middle
and 20 full collections, 9.5 s of wall time, part of it inside orjson's parse (3.2 s of CPU with them, 1.4 to 1.8
without). With (10,000, 10, 100): 562, 51 and 2 collections, 2.2 s; the process's CPU 37.8 s -> 32.1 s.

Thresholds, not ``gc.disable()``: garbage in reference cycles is still collected, every 10,000 allocations
instead of 700, so what it holds does not pile up over the sync (at 100,000 the process grew by twice as much).
Several engines in one process (the tests, the soak) may overlap their initial syncs: the first one in saves the
thresholds in force, the last one out puts them back.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (10_000, 10, 100)


class _Holders:
    """How many initial syncs run, and the thresholds in force before the first one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.saved: tuple[int, int, int] | None = None


_HOLDERS = _Holders()


@contextmanager
def relaxed() -> Iterator[None]:
    """The collector's thresholds are ``THRESHOLDS`` for the block (and until the last overlapping block ends)."""
    h = _HOLDERS
    with h.lock:
        if h.count == 0:
            h.saved = gc.get_threshold()
            gc.set_threshold(*THRESHOLDS)
        h.count += 1
    try:
        yield
    finally:
        with h.lock:
            h.count -= 1
            if h.count == 0 and h.saved is not None:
                gc.set_threshold(*h.saved)
                h.saved = None
