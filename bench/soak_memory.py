"""The soak's memory figures (bench/soak.py): client growth with the cached data told apart, and the stack's RSS.

**Clients.** Most of the soak's clients are sync engines in the bench process, each with its own SQLite cache
whose page cache fills as the cache file grows, up to the process's SQLite budget (``sync/cache/memory.py``: all
of them together; before it, each writer's own ``CACHE_KIB``), and whose prepared statements are one per query
(``sync/cache/id_lists.py``; before, one per length of an id list). So at the warm-up point and at the end the
bench notes, besides the RSS (``client_rss_growth_pct``, the raw figure, still printed):

- SQLite's own heap, ``sqlite3_memory_used()`` (every connection's page cache, schemas and statements in this
  process; read through the ``_sqlite3`` module's library with ctypes, the one number Python's ``sqlite3`` does
  not expose) and the messages the in-process caches hold;
- ``client_rss_growth_less_sqlite_pct``: the RSS growth once SQLite's heap is taken out of both ends, i.e. the
  growth of everything else (the Python heap, sockets, buffers, malloc's free space). This is the figure the
  goal's "< 10 % after warm-up" is read against; ``client_sqlite_kib_per_row`` shows the rest is the data (its
  growth per cached message);
- glibc's heap (``mallinfo2``): bytes in use (SQLite's heap is part of it) and bytes free inside malloc's arenas,
  so what is left of the growth can be read as live objects or as fragmentation;
- ``client_sqlite_page_cache_mb`` (the page caches' part of SQLite's heap) and ``client_sqlite_limit_mb`` (SQLite's
  soft heap limit, the budget: 32 MiB, more while a cache is in its initial sync) at both ends.

How the leak hunt that led to this design was done, and what it found, is in bench/README.md's soak section
(tracemalloc snapshots at the warm-up point and at the end: the engines' Python heap stays flat while their
caches grow several times over).

**The stack** (the ``localbase`` process: REST, auth, realtime; PostgreSQL runs in processes of its own and its
shared buffers are not counted) is restarted during the run, so its RSS is compared only over the last segment
without a restart: sampled every few seconds, from a quarter into that segment (its own warm-up) to the end.
"""

from __future__ import annotations

import _sqlite3
import asyncio
import ctypes
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from sync.cache import memory


def _sqlite_lib() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL(_sqlite3.__file__)  # its dependency, libsqlite3, resolves through this handle
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        return lib
    except (OSError, AttributeError):
        return None


_LIB = _sqlite_lib()


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):  # not glibc (or older than 2.33)
        return None


_LIBC = _libc()


def malloc_heap() -> tuple[int, int]:
    """glibc's heap in this process: bytes in use and bytes free inside its arenas (fragmentation); 0s elsewhere."""
    if _LIBC is None:
        return 0, 0
    info = _LIBC.mallinfo2()
    return int(info.uordblks + info.hblkhd), int(info.fordblks)


def sqlite_page_cache() -> int:
    """Bytes of SQLite's heap that are page cache (every connection's), ``SQLITE_STATUS_PAGECACHE_OVERFLOW``: page
    cache memory taken from the heap (no ``SQLITE_CONFIG_PAGECACHE`` buffer is set); 0 when it cannot be read."""
    if _LIB is None:
        return 0
    current, highest = ctypes.c_int64(0), ctypes.c_int64(0)
    if _LIB.sqlite3_status64(2, ctypes.byref(current), ctypes.byref(highest), 0) != 0:
        return 0
    return int(current.value)


def sqlite_heap() -> int:
    """Bytes SQLite holds on its heap in this process (all connections); 0 when it cannot be read."""
    return int(_LIB.sqlite3_memory_used()) if _LIB is not None else 0


def cached_messages(paths: Iterable[Path]) -> int:
    total = 0
    for path in paths:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            total += int(conn.execute("select count(*) from messages").fetchone()[0])
        finally:
            conn.close()
    return total


@dataclass
class Point:
    rss: int
    sqlite: int
    messages: int
    malloc_used: int = 0
    malloc_free: int = 0
    page_cache: int = 0
    limit: int = 0  # SQLite's soft heap limit (sync/cache/memory.py's budget)


def point(paths: Iterable[Path]) -> Point:
    used, free = malloc_heap()
    rss, heap, pages = psutil.Process().memory_info().rss, sqlite_heap(), sqlite_page_cache()
    return Point(rss, heap, cached_messages(paths), used, free, pages, memory.current_limit())


def client_figures(warm: Point, end: Point) -> dict[str, float]:
    """The client-side memory figures of a run (see the module docstring)."""
    rows = end.messages - warm.messages
    rest_warm, rest_end = warm.rss - warm.sqlite, end.rss - end.sqlite
    return {
        "client_rss_growth_pct": round(100 * (end.rss / warm.rss - 1), 1),
        "client_rss_mb": [round(warm.rss / 2**20, 1), round(end.rss / 2**20, 1)],
        "client_sqlite_mb": [round(warm.sqlite / 2**20, 1), round(end.sqlite / 2**20, 1)],
        "client_cached_messages": [warm.messages, end.messages],
        "client_sqlite_kib_per_row": round((end.sqlite - warm.sqlite) / 1024 / rows, 2) if rows > 0 else 0.0,
        "client_rss_growth_less_sqlite_pct": round(100 * (rest_end / rest_warm - 1), 1) if rest_warm > 0 else 0.0,
        # glibc's heap (SQLite's included: it allocates with malloc): in use, and free inside the arenas
        "client_malloc_used_mb": [round(warm.malloc_used / 2**20, 1), round(end.malloc_used / 2**20, 1)],
        "client_malloc_free_mb": [round(warm.malloc_free / 2**20, 1), round(end.malloc_free / 2**20, 1)],
        # SQLite's heap split: the page caches, and its soft heap limit (the caches' budget) at both ends
        "client_sqlite_page_cache_mb": [round(warm.page_cache / 2**20, 1), round(end.page_cache / 2**20, 1)],
        "client_sqlite_limit_mb": [round(warm.limit / 2**20, 1), round(end.limit / 2**20, 1)],
    }


@dataclass
class StackWatch:
    """RSS samples of the stack's process, each with its pid (a restart is a new pid)."""

    pid: Callable[[], int | None]
    every: float = 3.0
    samples: list[tuple[int, float, int]] = field(default_factory=list)  # (pid, monotonic, rss)

    async def run(self) -> None:
        while True:
            pid = self.pid()
            if pid is not None:
                try:
                    self.samples.append((pid, time.monotonic(), psutil.Process(pid).memory_info().rss))
                except psutil.Error:
                    pass  # restarting
            await asyncio.sleep(self.every)

    def figures(self) -> dict[str, object]:
        """Growth over the last pid's samples, from a quarter into its life; empty with too few samples."""
        if not self.samples:
            return {}
        last = self.samples[-1][0]
        mine = [(t, rss) for pid, t, rss in self.samples if pid == last]
        start, end = mine[0][0], mine[-1][0]
        after = [(t, rss) for t, rss in mine if t >= start + (end - start) / 4]
        if len(after) < 2:
            return {}
        (t0, warm), (t1, final) = after[0], after[-1]
        return {
            "stack_rss_growth_pct": round(100 * (final / warm - 1), 1),
            "stack_rss_mb": [round(warm / 2**20, 1), round(final / 2**20, 1)],
            "stack_rss_span_s": round(t1 - t0),
        }
