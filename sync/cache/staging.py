"""The initial sync's staging file for messages (issue 15): pages go in by plain inserts, moved at the end.

Why: on a big desk the initial sync's cost was the upsert of every message into ``messages``, a B-tree insert
into the random uuid ``id`` index, the thread index (ticket, time) and the table per row (the writer thread was
81 % of the engine's CPU, most of it there). Here the pages of the messages phase are appended to an index-less
table, and once the phase is over ``move`` puts them into ``messages`` in one transaction: with the thread
index dropped and created again after the insert (one sort instead of a million random inserts) and the
upsert's never-older-over-newer rule (schema v16, ``change_xid``) deciding between a staged copy and one that
reached ``messages`` meanwhile (realtime, a thread opened and fetched at once, this device's push).

The staging table lives in a file of its own beside the cache (``<cache>.staging``, 0600, attached to the
writer's connection as ``staging``) and holds the messages cursor of what it holds: SQLite commits attached
files one by one (not atomically together) in WAL mode, so a staged page and its cursor must be in one file,
and a move committed in the cache file leaves nothing that matters in the staging file (the cache's own cursor
has caught up with it: ``attach`` then empties it). Staging in the cache file itself would leave its pages free
in the file after the move (+~280 MB at 1M messages, until a vacuum). After the move the file is deleted, so the
text of a message deleted meanwhile does not outlive the move in it.

What keeps the UI right while rows wait here (the reader connection never sees this file):

- tombstones are not staged: they go into ``messages`` at once, with their usual effects (text, revisions,
  files dropped); a staged older copy with text loses to them at the move (``change_xid``);
- of each page, every ticket's newest live message goes into ``messages`` at once too, so inbox previews
  fill in as the download goes (as before), at the cost of one indexed upsert per ticket and page;
- a thread opened meanwhile is fetched at once by ticket id (sync/partial.py) into ``messages``, so the thread,
  its next message's time (``next_message_ts``) and edits of its messages work as before;
- the staged rows are the server's own; queued edits and deletes are laid over the rows that go into
  ``messages`` at once, and over the moved rows after the move, for those still queued then (an edit or delete
  the server refused meanwhile is gone from the outbox, so it does not come back with the move).
- a damaged staging file is deleted and made anew (its rows are downloaded again), and a rebuilt cache drops the
  staging file of the file it replaces (sync/cache/files.py).

Search does not find what is staged (it does not find the initial sync's messages before its end anyway: the
search index is built by ``finish_initial_sync``).
"""

from __future__ import annotations

import contextlib
import logging
import operator
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync.cache import bulk_triggers, history, writes
from sync.cache.id_lists import IN_LIST, as_param
from sync.cache.set_aside import SetAside, reason, row_id, ticket_of
from sync.decisions import EARLIEST_TS, LATEST_TS, canonical_ts
from sync.models import MESSAGE_ROW

log = logging.getLogger(__name__)

SCHEMA = "staging"
SUFFIX = ".staging"
_FILE_MODE = 0o600
_CACHE_KIB = -32768
_STAGE = (
    "insert into staging.messages_staged (id, ticket_id, sender_id, content, is_internal, created_at, edited_at,"
    " deleted_at, change_xid, in_cache) values (?, ?, ?, ?, ?, ?, ?, ?, ?, {})"
)
_STORED = operator.itemgetter(*range(9))  # of a ``MESSAGE_ROW`` array: the stored values (``message_values``)
_ID, _TICKET, _CREATED, _DELETED = (MESSAGE_ROW.index(c) for c in ("id", "ticket_id", "created_at", "deleted_at"))


# a staged timestamp as the cache stores it (``canonical_ts``'s fixed width, within its first and last instant), told
# in SQL by its length and bounds: every value of another shape the staging took (a year past 9999 with five digits,
# a trimmed fraction, 'infinity', text that is no time) fails it, and only those go through Python (``_Checked``), so
# a move of a million rows makes no Python call per row (a GLOB of the whole shape cost 1.3 s per million rows)
def _canonical(column: str) -> str:
    return f"(length({column}) = 32 and {column} between '{EARLIEST_TS}' and '{LATEST_TS}')"


def _stored(column: str, nullable: bool) -> str:
    shaped = f"{column} is null or {_canonical(column)}" if nullable else _canonical(column)
    return f"case when {shaped} then {column} else staged_ts({column}) end"


_ROW_SHAPED = " and ".join(
    [_canonical("created_at"), *(f"({c} is null or {_canonical(c)})" for c in ("edited_at", "deleted_at"))]
)

# the move: every staged row through the same upsert as a pulled row (never older over newer, schema v16), its
# timestamps as the cache stores them; a row with one that is no timestamp is left out (``_Checked``)
_MOVE = (
    "insert into messages (id, ticket_id, sender_id, content, is_internal, created_at, edited_at, deleted_at,"
    f" local_state, error, change_xid) select id, ticket_id, sender_id, content, is_internal,"
    f" {_stored('created_at', False)}, {_stored('edited_at', True)}, {_stored('deleted_at', True)},"
    " 'sent', null, change_xid from staging.messages_staged"
    # a message's copies with text staged before its tombstone never pass through the cache file
    " where (deleted_at is not null or id not in (select id from staging.messages_staged where deleted_at is not null))"
    f" and ({_ROW_SHAPED} or staged_row_ok(id, ticket_id, created_at, edited_at, deleted_at))"
    " on conflict (id) do update set content = excluded.content, is_internal = excluded.is_internal,"
    " created_at = excluded.created_at, edited_at = excluded.edited_at, deleted_at = excluded.deleted_at,"
    " local_state = 'sent', error = null, change_xid = coalesce(excluded.change_xid, messages.change_xid)"
    " where (excluded.change_xid is null or messages.change_xid is null or excluded.change_xid >= messages.change_xid)"
    " and messages.ticket_id = excluded.ticket_id and messages.sender_id is excluded.sender_id"  # writes.fail_foreign
)
_FOREIGN = (
    "select m.id from staging.messages_staged s join messages m on m.id = s.id"
    " where m.ticket_id <> s.ticket_id or m.sender_id is not s.sender_id"
)
_THREAD_INDEX = "create index messages_thread on messages (ticket_id, created_at desc, id desc)"  # as schema v12


def path_of(cache_path: Path) -> Path:
    return cache_path.with_name(cache_path.name + SUFFIX)


def files_of(cache_path: Path) -> list[Path]:
    """The staging file and its journal, to delete with the cache."""
    staged = path_of(cache_path)
    return [staged, staged.with_name(staged.name + "-journal")]


def attached(conn: sqlite3.Connection) -> bool:
    return any(r[1] == SCHEMA for r in conn.execute("pragma database_list"))


def attach(conn: sqlite3.Connection, cache_path: Path) -> None:
    """Attach (creating it 0600 if need be) the staging file to the writer's connection, outside a transaction.
    Rows a move already committed into the cache file (the crash between the move and the delete) are dropped.
    A damaged file (not a database, or corrupt: its journal runs with ``synchronous = normal``) is deleted and
    made anew: its rows are ahead of the cache's own messages cursor, so the pull downloads them again."""
    if attached(conn):
        return
    try:
        _attach(conn, cache_path)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError):  # locked, I/O: not the file's content, nothing to delete
            raise
        log.warning("staging file %s was damaged (%s); deleted, its messages are downloaded again", cache_path, exc)
        detach_and_delete(conn, cache_path)
        _attach(conn, cache_path)


def _attach(conn: sqlite3.Connection, cache_path: Path) -> None:
    path = path_of(cache_path)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, _FILE_MODE))
    conn.execute("attach database ? as staging", (str(path),))
    # a rollback journal (the file is only appended to) and NORMAL: a commit survives a process crash; a page
    # cache that holds a batch between commits (with SQLite's 2 MB the pages spilled, each spill an fsync: twice
    # as slow)
    conn.execute("pragma staging.synchronous = normal")
    conn.execute(f"pragma staging.cache_size = {_CACHE_KIB}")
    conn.execute("begin immediate")
    try:
        conn.execute(
            "create table if not exists staging.messages_staged (id text not null, ticket_id text not null,"
            " sender_id text not null, content text not null, is_internal integer not null, created_at text not null,"
            " edited_at text, deleted_at text, change_xid integer,"
            " in_cache integer not null)"  # 1: written to ``messages`` at once as well (``at_once``)
        )
        conn.execute(
            "create table if not exists staging.cursors"
            " (name text primary key, xid integer not null, id integer not null)"
        )
        staged = _cursor(conn)
        if staged is not None and staged <= writes.get_cursor(conn, "messages"):
            _empty(conn)  # moved already (the cache's cursor caught up): what is left was a copy
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise


def _cursor(conn: sqlite3.Connection) -> tuple[int, int] | None:
    row = conn.execute("select xid, id from staging.cursors where name = 'messages'").fetchone()
    return (int(row[0]), int(row[1])) if row else None


def _empty(conn: sqlite3.Connection) -> None:
    conn.execute("delete from staging.messages_staged")
    conn.execute("delete from staging.cursors")


def cursor(conn: sqlite3.Connection, table: str) -> tuple[int, int] | None:
    """The messages cursor of what is staged (ahead of the cache's own), or None."""
    if table != "messages" or not attached(conn):
        return None
    return _cursor(conn)


def count(conn: sqlite3.Connection) -> int:
    """Rows staged and not in ``messages`` as well (the progress bar counts them as cached)."""
    if not attached(conn):
        return 0
    return int(conn.execute("select count(*) from staging.messages_staged where in_cache = 0").fetchone()[0])


def at_once(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of a page of server messages, what goes into ``messages`` at once as well: tombstones and each ticket's
    newest live row. All of the page is staged too, so the move finds it whatever a crash kept of the two
    files' commits (SQLite does not commit attached files atomically together)."""
    newest: dict[str, dict[str, Any]] = {}
    now: list[dict[str, Any]] = []
    for r in rows:
        if r.get("deleted_at"):
            now.append(r)
            continue
        # the server's text as sent (one format per server): at worst another row is the early preview
        ticket = str(r["ticket_id"])
        best = newest.get(ticket)
        if best is None or str(r["created_at"]) > str(best["created_at"]):
            newest[ticket] = r
    return now + list(newest.values())


def at_once_rows(rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """``at_once`` of a page of ``MESSAGE_ROW`` arrays (canonical timestamps), as dicts: only these few rows
    become dicts (a dict per row of a million-message sync was most of the event loop's and the staging's
    Python time, issue 15)."""
    newest: dict[str, Sequence[Any]] = {}
    now: list[Sequence[Any]] = []
    for r in rows:
        if r[_DELETED]:
            now.append(r)
            continue
        best = newest.get(r[_TICKET])
        if best is None or r[_CREATED] > best[_CREATED]:
            newest[r[_TICKET]] = r
    return as_dicts([*now, *newest.values()])


def as_dicts(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """``MESSAGE_ROW`` arrays as the server's message dicts (what the cache's other writes take)."""
    return [dict(zip(MESSAGE_ROW, r, strict=False)) for r in rows]


def count_file(cache_path: Path) -> int:
    """``count`` from another connection (the staging file is attached to the writer's only), 0 without a file."""
    path = path_of(cache_path)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("select count(*) from messages_staged where in_cache = 0").fetchone()[0])
    except sqlite3.DatabaseError:  # attached, its table not created yet; or a damaged file (``attach`` remakes it)
        return 0
    finally:
        conn.close()


def stage(
    conn: sqlite3.Connection,
    rows: Sequence[Sequence[Any]] | Sequence[Mapping[str, Any]],
    after: tuple[int, int],
    in_cache: Iterable[str],
) -> None:
    """Append rows and the cursor after them to the staging file (inside the caller's transaction); ``in_cache``:
    the ids of those written to ``messages`` as well. The rows are ``MESSAGE_ROW`` arrays with canonical
    timestamps (``sync_message_rows``: bound as they are, no Python per value) or server dicts (an older
    server, the partial sync: through ``message_values``)."""
    values = (
        [writes.message_values(r) for r in rows if isinstance(r, Mapping)]
        if rows and isinstance(rows[0], Mapping)
        else list(map(_STORED, rows))
    )
    # those in ``messages`` as well in a statement of their own (a page holds a message once, so the order of the
    # two does not matter); marking them by an update of the page after its insert read the page again (0.9 s
    # of CPU per 1M, issue 15)
    ids = set(in_cache)
    conn.executemany(_STAGE.format(0), [v for v in values if v[0] not in ids] if ids else values)
    if ids:
        conn.executemany(_STAGE.format(1), [v for v in values if v[0] in ids])
    conn.execute(
        "insert into staging.cursors (name, xid, id) values ('messages', ?, ?) on conflict (name) do update set"
        " xid = excluded.xid, id = excluded.id",
        after,
    )


class _Checked:
    """The move's check of a staged row whose timestamps are not in the cache's shape (SQL functions
    ``staged_ts``, ``staged_row_ok``): read by ``canonical_ts`` (clamped, in the cache's shape), or, when one is no
    timestamp, the row left out of the move and set aside.

    Why at the move: the staged rows were never checked as rows of ``messages``. The staging table takes what
    ``messages`` takes (the same columns, the same NOT NULLs), so no staged row fails the move's insert, whatever
    app version staged it; but their timestamps were bound as sent. ``sync_message_rows`` writes them with
    PostgreSQL's ``to_char``, which gives a year past 9999 five digits ('20000-01-01T…', sorting before every real
    time) and an older app version (or a server without the function, through the message dicts of that version)
    may have staged other text. The move reads every staged row anyway: the shape is checked there, in SQL,
    whichever version wrote the file."""

    def __init__(self) -> None:
        self.bad: list[SetAside] = []

    @staticmethod
    def ts(value: Any) -> str | None:
        try:
            return canonical_ts(value)
        except ValueError:
            return None  # its row is left out by ``row_ok``

    def row_ok(self, message_id: Any, ticket_id: Any, *stamps: Any) -> bool:
        try:
            if canonical_ts(stamps[0]) is None:
                raise ValueError("no created_at")
            for stamp in stamps[1:]:
                canonical_ts(stamp)
        except ValueError as exc:
            self.bad.append(
                SetAside("messages", row_id([message_id]), reason(exc), ticket_of("messages", {"ticket_id": ticket_id}))
            )
            return False
        return True


def move(conn: sqlite3.Connection, me: str, files_dir: Path) -> Moved:
    """Inside the caller's transaction on the cache file: the staged rows into ``messages`` (the thread index
    dropped and built again around it; a row with a timestamp that is none left out, ``_Checked``), queued edits
    and deletes laid over again, the cache's messages cursor set to the staged one."""
    after = _cursor(conn)
    if after is None:
        return Moved(set(), [], [], [])
    writes.fail_foreign(conn, [str(r[0]) for r in conn.execute(_FOREIGN)])  # first: never a tombstone of theirs
    # tombstones whose text reached ``messages`` meanwhile (normally dropped already, when their page came)
    landed = [
        history.Dropped(str(r[0]), str(r[1]), str(r[2]))
        for r in conn.execute(
            "select m.id, m.ticket_id, m.content from staging.messages_staged s join messages m on m.id = s.id"
            " where s.deleted_at is not null and m.content <> ''"
            " and m.ticket_id = s.ticket_id and m.sender_id is s.sender_id"
        )
    ]
    conn.execute("drop index messages_thread")
    checked = _Checked()
    conn.create_function("staged_ts", 1, checked.ts)
    conn.create_function("staged_row_ok", 5, checked.row_ok)
    with bulk_triggers.set_aside(conn, bulk_triggers.MESSAGES):  # a no-op per row here (sync/cache/bulk_triggers.py)
        conn.execute(_MOVE)
    conn.execute(_THREAD_INDEX)
    # the tickets with messages, from the index just built (a walk of it, ~0.2 s at 1M; the staged rows' distinct
    # tickets were a sort of the whole staging table, ~1 s): the staged ones, and any other already there
    tickets = {str(r[0]) for r in conn.execute("select distinct ticket_id from messages")}
    files = history.drop_text(conn, landed, me, writes.now_ts(), files_dir)
    conn.execute(
        "delete from message_revisions where message_id in"
        " (select id from staging.messages_staged where deleted_at is not null)"
    )
    queued = [
        str(r[0])
        for r in conn.execute(
            "select distinct entity_id from outbox where state = 'queued' and kind in (?, ?)",
            (history.EDIT, history.DELETE),
        )
    ]
    for start in range(0, len(queued), 500):
        chunk = queued[start : start + 500]
        rows = [
            dict(r)
            for r in conn.execute(
                f"select * from messages where local_state = 'sent' and id {IN_LIST}", (as_param(chunk),)
            )
        ]
        if rows:
            writes.apply_messages(conn, history.overlay(conn, rows), index=False)
    if after > writes.get_cursor(conn, "messages"):
        writes.set_cursor(conn, "messages", after)
    return Moved(tickets, [d.message_id for d in landed], files, checked.bad)


@dataclass
class Moved:
    """What a move did: the tickets with messages (those whose messages came in among them), the messages whose
    tombstone dropped text here and their downloaded files (to delete), the rows left out (to set aside)."""

    tickets: set[str]
    dropped: list[str]
    files: list[str]
    set_aside: list[SetAside]


def detach_and_delete(conn: sqlite3.Connection, cache_path: Path) -> None:
    """After the move is committed: the staging file goes (its rows are in the cache file)."""
    if attached(conn):
        conn.execute("detach database staging")
    for file in files_of(cache_path):
        with contextlib.suppress(FileNotFoundError):
            file.unlink()
