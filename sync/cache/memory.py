"""The process's budget for SQLite's memory: one bound on every cache connection's page cache together.

Each cache connection caps its own page cache (``cache_size``: 16 MB on the writer, 64 MB during the initial
sync and 128 MB while it holds its bulk transaction, 32 MB on the staging file, SQLite's default 2 MB on the
reader), but those caps are per connection: a process's bound was the number of its open caches times their
caps (the soak's ~47 engines in one process, issue 15: 47 x 64 MB), and each page cache fills with its data and
stays full. (The other part of SQLite's heap that grew in the soak, prepared statements, is bounded by
sync/cache/id_lists.py.) SQLite has a process-wide bound for exactly
this, the soft heap limit (``PRAGMA soft_heap_limit``, ``sqlite3_soft_heap_limit64``): once its heap nears the
limit, a page cache that needs a page recycles its own least recently used one instead of allocating (checked:
five connections reading a 60 MB table stay at 16 MB under a 16 MB limit, at 313 MB without). It is "soft"
because SQLite goes over it rather than fail an allocation, so a query never errors for memory.

Why the bound is what it is:

- **Steady state, ``STEADY_MIB`` = 32 MiB.** The app runs one engine per process: the reader's 2 MB (what the
  inbox, thread and search queries use), about 0.33 MB of schemas and statements per open cache (both
  connections) and the writer's steady 16 MB (sync/cache/files.py ``CACHE_KIB``: incremental pulls are pages of
  at most 1,000 rows) stay well under it, so one app's caches never reach the limit and its reads never run
  under it (a page cache at the limit recycles its own pages instead of growing: a reader started then would be
  stuck at the little it had). A process with many caches (the soak's engines) shares the same 32 MiB: about
  15 MB of it is their fixed part, the rest their page caches, so its SQLite heap stops growing once it reaches
  the budget instead of growing with every message.
- **The initial sync, a grant of ``INITIAL_SYNC_MIB`` per cache in it** (``grant``/``release``, from the
  staging's start to ``finish_initial_sync``): the bulk transaction's 128 MB writer cache and the staging file's
  32 MB, whose sizes were chosen by measuring the initial sync (sync/cache/files.py, sync/cache/staging.py). The
  budget is raised by that much while it runs, so a first sync has the memory it was tuned with, and falls back to
  the steady budget when it ends, when the writer's cache shrinks to its steady 16 MB at once (a sync that fails
  midway keeps its grant until it finishes or its cache closes).

The limit is process-wide state in SQLite; this module is its only writer in the app, through a private
in-memory connection under a lock (the pragma works on any connection; the caches' own connections belong to
their threads).
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import weakref

STEADY_MIB = 32
INITIAL_SYNC_MIB = 160  # files.BULK_CACHE_KIB (128 MB) + staging._CACHE_KIB (32 MB)

_lock = threading.Lock()
_granted: set[int] = set()  # id() of the stores in their initial sync


@functools.cache
def _connection() -> sqlite3.Connection:
    return sqlite3.connect(":memory:", check_same_thread=False)  # used under _lock only


def _set(limit_bytes: int) -> None:
    _connection().execute(f"pragma soft_heap_limit = {int(limit_bytes)}")


def budget_bytes() -> int:
    """The budget this module sets: the steady part plus a grant per cache in its initial sync."""
    return (STEADY_MIB + INITIAL_SYNC_MIB * len(_granted)) * 2**20


def apply() -> None:
    """Set SQLite's soft heap limit to the budget (every cache open calls this)."""
    with _lock:
        _set(budget_bytes())


def grant(owner: object) -> None:
    """``owner`` (a cache's store) begins its initial sync: the budget grows by its grant, once (and goes back when
    ``owner`` is released, or garbage-collected without being closed)."""
    with _lock:
        if id(owner) in _granted:
            return
        _granted.add(id(owner))
        _set(budget_bytes())
    weakref.finalize(owner, _release, id(owner))


def release(owner: object) -> None:
    """``owner``'s initial sync is over (or its cache closed): its grant goes back."""
    _release(id(owner))


def _release(key: int) -> None:
    with _lock:
        if key in _granted:
            _granted.discard(key)
            _set(budget_bytes())


def current_limit() -> int:
    """SQLite's soft heap limit in this process now, in bytes (0: none)."""
    with _lock:
        return int(_connection().execute("pragma soft_heap_limit").fetchone()[0])
