"""The per-user SQLite cache file: opening (0600, WAL, migrations), corruption recovery, and the
one writer thread.

Concurrency: every write goes through ONE thread that owns the only writing connection (the way
datasette funnels writes), so writers never fight over SQLite's lock and the asyncio loop never
waits on disk for a pull page: ``await store.awrite(fn)``. The UI's own writes (``send_message``…)
are tiny transactions the API promises to finish before returning, so they use ``store.write(fn)``,
which waits for the writer thread; pull pages are kept small (≤ 1000 rows) to bound that wait.
Reads use a separate connection on the caller's thread: WAL lets them run beside the writer.

The initial sync's pages go through ``abulk``: one transaction held open across pages and committed every
so many rows (each page carries its cursor, so every page boundary is a consistent state to commit). Random
uuid keys make a commit write about every index page the transaction touched, so one commit per page of
1,000 rows on a big cache wrote the indexes again and again (issue 15). Any other call to the writer thread
commits the held transaction first, so local writes and reads never wait for or mix with it.

Corruption: ``open_store`` runs ``PRAGMA quick_check``; a file that fails it (or is not SQLite) is
moved aside, still-readable unsent outbox entries and their local rows are salvaged into a fresh
file, and the caller is told why (the engine then emits ``CacheRebuilt``). ``rebuild_store`` does the same for a
cache whose user's role changed (its rows are another role's), deleting the old file instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import json
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sync.cache import bulk_indexes, memory
from sync.cache.schema import MIGRATIONS, VERSION
from sync.decisions import canonical_ts

log = logging.getLogger(__name__)
T = TypeVar("T")

FILE_MODE = 0o600
# the writer's page cache (negative: KiB). During the initial sync 64 MB (random uuid keys touch pages all over the
# indexes; with the default 2 MB, applying pages took about 1.6 times as long), and 128 MB while a bulk transaction
# is held, so more of the indexes' dirty pages stay in memory until the commit instead of being spilled to the WAL
# and written again (the process grew by ~270 MB during a 1M-message initial sync with it and 3 pages of 10,000 rows
# waiting; ~500 MB with 256 MB and 8 pages, for little speed). After it, 16 MB: the steady state's pulls are pages of
# at most 1,000 rows, and the writer, the reader (2 MB) and their schemas and statements then stay inside the
# process's SQLite budget (sync/cache/memory.py, 32 MiB) with room, so one app's caches never reach its limit
CACHE_KIB = -16384
INITIAL_CACHE_KIB = -65536
BULK_CACHE_KIB = -131072
DIR_MODE = 0o700


class CacheCorrupt(Exception):
    """The cache file failed its integrity check or is not a SQLite database."""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("pragma busy_timeout = 30000")
    conn.execute("pragma foreign_keys = off")
    return conn


def _secure_file(path: Path) -> None:
    """Create the file 0600 before SQLite does, so it is never readable by others, even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path.parent, DIR_MODE)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, FILE_MODE)
    os.close(fd)
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if candidate.exists() and stat.S_IMODE(candidate.stat().st_mode) != FILE_MODE:
            os.chmod(candidate, FILE_MODE)


def _check(conn: sqlite3.Connection) -> None:
    try:
        rows = conn.execute("pragma quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise CacheCorrupt(str(exc)) from exc
    result = [r[0] for r in rows]
    if result != ["ok"]:
        raise CacheCorrupt("; ".join(str(r) for r in result[:5]))


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("pragma user_version").fetchone()[0]
    if version > VERSION:
        raise CacheCorrupt(f"the cache was written by a newer SupportChat (schema {version} > {VERSION})")
    if bulk_indexes.noted(conn):  # a first sync killed with the tickets' indexes set aside: built before any step
        conn.execute("begin immediate")
        try:
            bulk_indexes.restore(conn)
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
    step_functions(conn)
    for step in range(version, VERSION):
        # executescript would COMMIT first; run the statements one by one inside our transaction
        conn.execute("begin immediate")
        try:
            for statement in _statements(MIGRATIONS[step]):
                conn.execute(statement)
            conn.execute(f"pragma user_version = {step + 1}")
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise


def step_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions the schema steps call (v18: ``canonical_ts``), on a connection about to run them."""
    conn.create_function("canonical_ts", 1, _canonical_or_kept, deterministic=True)


def _canonical_or_kept(value: Any) -> Any:
    """``canonical_ts`` for a migration step's SQL: a value it cannot read (or an empty one) is kept as it was."""
    try:
        return canonical_ts(value) or value
    except ValueError:
        return value


def _statements(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement in migration: {buffer[:80]!r}")


# tables a rebuilt cache keeps whole: the user's own text and device settings, not server rows
_KEPT_WHOLE = ("outbox", "drafts", "edit_drafts", "avatar_deletes")
_KEPT_META = ("sync_scope_days",)  # the partial sync's setting (writes._SCOPE_KEY): a device's choice


@dataclass
class Salvage:
    """What a rebuilt cache keeps (read out of a corrupt one, or out of one whose user's role changed): the unsent
    outbox and the local rows it needs (messages, tickets, attachments), the drafts and unsaved edits, the queued
    avatar deletes and the device's settings; ``owners``: the owner (customer_id) of every ticket they name."""

    rows: dict[str, list[dict[str, Any]]]
    owners: dict[str, str]

    def for_customer(self, me: str) -> int:
        """Keep only what a customer ``me`` may send and see: entries, rows and drafts of their own tickets, no
        internal note (the role became customer: the rest would be refused, and would put other customers' rows
        or staff notes back in the file). Returns how many outbox entries it dropped."""
        own = {ticket for ticket, owner in self.owners.items() if owner == me}
        notes = {str(m["id"]) for m in self.rows["messages"] if m["ticket_id"] not in own or m["is_internal"]}
        files = {str(a["id"]) for a in self.rows["attachments"] if a["message_id"] in notes}
        before = len(self.rows["outbox"])
        self.rows["outbox"] = [
            e
            for e in self.rows["outbox"]
            if e["ticket_id"] in own and str(e["entity_id"]) not in notes and str(e["entity_id"]) not in files
        ]
        self.rows["messages"] = [m for m in self.rows["messages"] if str(m["id"]) not in notes]
        self.rows["attachments"] = [a for a in self.rows["attachments"] if str(a["id"]) not in files]
        for table in ("tickets", "drafts", "edit_drafts"):
            key = "id" if table == "tickets" else "ticket_id"
            self.rows[table] = [r for r in self.rows[table] if r[key] in own]
        return before - len(self.rows["outbox"])


def _salvage(path: Path) -> Salvage:
    found = Salvage({t: [] for t in (*_KEPT_WHOLE, "meta", "messages", "tickets", "attachments")}, {})
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
    except sqlite3.Error:
        return found
    try:
        for table in _KEPT_WHOLE:
            try:
                found.rows[table].extend(dict(r) for r in conn.execute(f"select * from {table}"))
            except sqlite3.Error as exc:
                log.warning("cache salvage: %s unreadable: %s", table, exc)
        with contextlib.suppress(sqlite3.Error):
            marks = ", ".join("?" * len(_KEPT_META))
            found.rows["meta"].extend(
                dict(r) for r in conn.execute(f"select * from meta where key in ({marks})", _KEPT_META)
            )
        ids = {str(r["entity_id"]) for r in found.rows["outbox"]}
        for table in ("messages", "tickets", "attachments"):
            for entity in ids:
                try:
                    row = conn.execute(f"select * from {table} where id = ?", (entity,)).fetchone()
                except sqlite3.Error:
                    continue
                if row is not None:
                    found.rows[table].append(dict(row))
        named = {str(r["ticket_id"]) for table in ("outbox", "drafts", "edit_drafts") for r in found.rows[table]}
        for ticket in named:
            with contextlib.suppress(sqlite3.Error):
                row = conn.execute("select customer_id from tickets where id = ?", (ticket,)).fetchone()
                if row is not None:
                    found.owners[ticket] = str(row[0])
    finally:
        conn.close()
    return found


def _restore(conn: sqlite3.Connection, salvage: Salvage) -> int:
    conn.execute("begin immediate")
    try:
        for table, rows in salvage.rows.items():
            for row in rows:
                cols = list(row)
                conn.execute(
                    f"insert or ignore into {table} ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
                    [row[c] for c in cols],
                )
        conn.execute("insert into messages_fts (messages_fts) values ('rebuild')")
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return len(salvage.rows["outbox"])


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            src.replace(target.with_name(target.name + suffix))
    return target


# the initial sync's staging file and its journal (sync/cache/staging.py): they go with the cache they stage for
_STAGING_SUFFIXES = (".staging", ".staging-journal")


def delete_store(path: Path) -> None:
    """Delete the cache file with its WAL files, and any damaged copy of it that was moved aside."""
    doomed = [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm", *_STAGING_SUFFIXES)]
    doomed += path.parent.glob(glob.escape(path.name) + ".corrupt-*")
    for file in doomed:
        with contextlib.suppress(FileNotFoundError):
            file.unlink()


@dataclass
class Opened:
    store: Store
    rebuilt_reason: str | None = None
    kept_unsent: int = 0


def open_store(path: Path) -> Opened:
    """Open (creating or migrating) the cache at ``path``; rebuild it when it is corrupt."""
    _secure_file(path)
    try:
        conn = _connect(path)
        try:
            _check(conn)
            conn.execute("pragma journal_mode = wal")
            _migrate(conn)
        finally:
            conn.close()
    except (CacheCorrupt, sqlite3.DatabaseError) as exc:
        reason = f"the local cache was damaged ({exc}); it was moved aside and rebuilt from the server"
        log.warning("cache %s: %s", path, reason)
        kept, _ = _rebuild(path, keep_copy=True)  # before the store opens the path
        return Opened(Store(path), reason, kept)
    _secure_file(path)
    return Opened(Store(path))


def rebuild_store(path: Path, reason: str, customer: str | None = None) -> tuple[int, int]:
    """A new, empty cache file at ``path`` (closed before), keeping only what ``Salvage`` keeps; with ``customer``
    (the user's new role is customer, their id) only what that customer may send and see (``Salvage.for_customer``).
    Returns (outbox entries kept, dropped). The old file is deleted, not moved aside: its rows are what the user
    may no longer see (their role changed). The caller pulls from the start."""
    log.info("cache %s: %s", path, reason)
    return _rebuild(path, keep_copy=False, customer=customer)


def _rebuild(path: Path, *, keep_copy: bool, customer: str | None = None) -> tuple[int, int]:
    salvage = _salvage(path)
    dropped = salvage.for_customer(customer) if customer is not None else 0
    if keep_copy:
        log.warning("corrupt cache moved to %s", _move_aside(path))
    else:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                path.with_name(path.name + suffix).unlink()
    for suffix in _STAGING_SUFFIXES:  # staged for the old file's cursor: the rebuilt cache pulls from the start
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()
    _secure_file(path)
    conn = _connect(path)
    try:
        conn.execute("pragma journal_mode = wal")
        _migrate(conn)
        kept = _restore(conn, salvage)
    finally:
        conn.close()
    _secure_file(path)
    return kept, dropped


class Store:
    """The cache: a reader connection for the caller's thread and one writer thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader = _connect(path)
        self.reader.execute("pragma query_only = on")
        memory.apply()  # the process's bound on every cache's page cache together (sync/cache/memory.py)
        self._local = threading.local()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-writer")
        self._closed = False
        self._held = False  # a bulk transaction is open on the writer (``abulk``), to commit before anything else
        self._normal_kib = CACHE_KIB  # the writer's page cache outside a bulk transaction (INITIAL_ during one)

    def grant_initial_sync_memory(self) -> None:
        """Raise the process's SQLite budget by an initial sync's page caches until ``release`` or ``close``
        (sync/cache/memory.py); a closed store gets none (a pull still running when its cache was closed)."""
        if not self._closed:
            memory.grant(self)
            self._normal_kib = INITIAL_CACHE_KIB  # from the next ``aend_bulk`` on, until the release

    def release_initial_sync_memory(self) -> None:
        """The initial sync is over: its grant goes back and the writer's page cache shrinks to the steady size
        (SQLite frees the pages above it at once), so the process is back inside its budget."""
        memory.release(self)
        if self._normal_kib != CACHE_KIB and not self._closed:
            self._normal_kib = CACHE_KIB
            self._pool.submit(self._normal_cache)

    @property
    def holding_bulk(self) -> bool:
        """Whether the writer holds a bulk transaction (its changes are not yet visible to the reader)."""
        return self._held

    def _writer(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            # NORMAL in WAL: a commit survives a process crash (SIGKILL); only an OS crash may lose
            # the last transactions, never corrupt the file
            conn.execute("pragma synchronous = normal")
            conn.execute(f"pragma cache_size = {self._normal_kib}")
            # deleted content is overwritten with zeros, not left in free space (a deleted message's text must
            # leave the file; see sync/cache/history.py)
            conn.execute("pragma secure_delete = on")
            self._local.conn = conn
        return conn

    def _settle(self) -> sqlite3.Connection:
        """The writer connection, with a held bulk transaction (``abulk``) committed first."""
        conn = self._writer()
        if self._held:
            self._held = False
            conn.execute("commit")
        return conn

    def _run(self, fn: Callable[[sqlite3.Connection], T], stop: threading.Event | None = None) -> T:
        """``fn(conn)`` in one transaction; with ``stop``, setting it aborts the transaction's statements."""
        if stop is not None and stop.is_set():  # cancelled while it waited for the writer: nothing to undo
            raise sqlite3.OperationalError("interrupted")
        conn = self._settle()
        conn.execute("begin immediate")
        try:
            if stop is None:
                result = fn(conn)
            else:
                # SQLite calls this every 1,000 virtual-machine steps of every statement (FTS5's rebuild and the
                # statements it runs inside included); True aborts the statement with "interrupted"
                conn.set_progress_handler(stop.is_set, 1000)
                try:
                    result = fn(conn)
                finally:
                    conn.set_progress_handler(None, 0)
        except BaseException:
            if conn.in_transaction:  # an interrupted write may have rolled the transaction back already
                conn.execute("rollback")
            raise
        conn.execute("commit")
        return result

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction on the writer thread and wait for it."""
        if self._closed:
            raise RuntimeError("the cache is closed")
        return self._pool.submit(self._run, fn).result()

    async def awrite(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction on the writer thread without blocking the loop."""
        if self._closed:
            raise RuntimeError("the cache is closed")
        return await asyncio.wrap_future(self._pool.submit(self._run, fn))

    async def awrite_interruptible(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``awrite`` for a long job that may as well not happen (its transaction is redone by the next pull, as
        after a crash): cancelling the caller stops the job at its next SQLite step and rolls it back, and the
        caller's ``CancelledError`` is raised once the writer is free again. Without it, a cancelled caller (the
        engine stopping: quit, sign-out) left the job running, and closing the cache waited for its end: seconds
        for the initial sync's move and index build at a million messages (issue 15)."""
        if self._closed:
            raise RuntimeError("the cache is closed")
        stop = threading.Event()
        job = asyncio.wrap_future(self._pool.submit(self._run, fn, stop))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            stop.set()
            await asyncio.wait([job])  # rolled back by now, or it had committed: either way the writer is free
            if not job.cancelled():
                job.exception()  # the interruption ("interrupted") is this cancellation's doing, not an error
            raise

    def _bulk(self, fn: Callable[[sqlite3.Connection], T], commit: bool) -> T:
        conn = self._writer()
        if not self._held:
            conn.execute(f"pragma cache_size = {BULK_CACHE_KIB}")  # the indexes' working set, between commits
            conn.execute("begin immediate")
            self._held = True
        try:
            result = fn(conn)
        except BaseException:
            self._held = False
            conn.execute("rollback")  # back to the last commit: its pages and their cursors
            raise
        if commit:
            self._held = False
            conn.execute("commit")
        return result

    async def abulk(self, fn: Callable[[sqlite3.Connection], T], *, commit: bool) -> T:
        """Run ``fn(conn)`` in the held bulk transaction (begun if none is held), committing it if ``commit``.
        ``fn`` must leave the cache consistent (a page with its cursor): any other write commits it."""
        if self._closed:
            raise RuntimeError("the cache is closed")
        return await asyncio.wrap_future(self._pool.submit(self._bulk, fn, commit))

    def _normal_cache(self) -> None:
        self._settle().execute(f"pragma cache_size = {self._normal_kib}")

    async def aend_bulk(self) -> None:
        """Commit a held bulk transaction and give its extra page cache back."""
        await asyncio.wrap_future(self._pool.submit(self._normal_cache))

    def maintain(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``amaintain`` from a thread that may block (opening the cache)."""
        if self._closed:
            raise RuntimeError("the cache is closed")
        return self._pool.submit(lambda: fn(self._settle())).result()

    async def amaintain(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the writer thread outside any transaction (a WAL checkpoint cannot run inside one)."""
        if self._closed:
            raise RuntimeError("the cache is closed")
        return await asyncio.wrap_future(self._pool.submit(lambda: fn(self._settle())))

    async def aread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A read on the writer thread (for large reads the loop should not wait for)."""
        return await asyncio.wrap_future(self._pool.submit(lambda: fn(self._settle())))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        memory.release(self)
        # the read-only connection closes first: the last connection to close checkpoints the WAL
        # into the main file, and a query_only one cannot
        self.reader.close()

        def _close_writer() -> None:
            conn = _connect(self.path) if getattr(self._local, "conn", None) is None else self._settle()
            with contextlib.suppress(sqlite3.Error):
                conn.execute("pragma optimize")
                conn.execute("pragma wal_checkpoint(truncate)")
            conn.close()
            self._local.conn = None

        with contextlib.suppress(RuntimeError):
            self._pool.submit(_close_writer).result()
        self._pool.shutdown(wait=True)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
