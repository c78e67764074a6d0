"""The server rows this cache could not take and set aside (``Cache._apply``, cache schema v17), kept in the file.

A row the cache cannot store (a value no parser reads, a constraint of the cache) is skipped so that the rest of its
page, and the cursor, go on; it is noted here in the same transaction as the page, so the status line says so
after a restart too ("Online · a row was skipped"), and it leaves when the server sends it again and it applies.
Only the newest ``KEPT`` are kept: the note names the newest and counts the others.

``Ledger`` is the one way server rows go in with these rules (the cache's pulls, realtime, backfills, the initial
sync's staging, a push's ticket rows, the workspace's rows written online): the rows whole first, in a savepoint; when
that raises a row's error (``ROW_ERRORS``), each row alone in its own savepoint, the bad ones noted. More than
``PER_PAGE`` bad rows in one call raise the last one's error instead: that is a fault of the client (a bug, a server
column it does not know), not a bad row, and skipping them for good would lose them.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sync.cache import writes
from sync.cache.id_lists import IN_LIST, as_param

log = logging.getLogger(__name__)

KEPT = 20  # the newest rows set aside that a cache remembers, for the status line
# what a server row the cache cannot take raises while it is applied (a value no parser reads, a field missing or of
# the wrong type, a constraint of the cache); anything else (the disk, a lock) still aborts the whole write
ROW_ERRORS = (ValueError, TypeError, KeyError, OverflowError, sqlite3.IntegrityError)
# more bad rows than this in one page is no bad row but a fault of the client (a bug, a server column it does not
# know): the page fails whole and its cursor stays, as before set-asides, rather than skip the rows for good
PER_PAGE = 3
_ROW_ID_CHARS = 100
# a row's key when it has no ``id``: a read marker's ticket and user, a ticket tag's, an SLA target's priority, a
# holiday's day
_KEY_COLUMNS = ("ticket_id", "user_id", "tag_id", "priority", "day")

T = TypeVar("T")


@dataclass(frozen=True)
class SetAside:
    """A pulled row the cache could not apply: skipped so that the rest of its page (and the cursor) went on."""

    table: str
    row_id: str
    reason: str
    ticket_id: str | None = None  # the ticket the row belongs to, when known: its notes go with the ticket (``forget``)


def record(conn: sqlite3.Connection, rows: Sequence[SetAside]) -> None:
    """Inside the page's transaction: note these rows (a row set aside again becomes the newest)."""
    for row in rows:
        log.warning("a %s row (%s) could not be applied and was set aside: %s", row.table, row.row_id, row.reason)
        conn.execute("delete from set_aside where table_name = ? and row_id = ?", (row.table, row.row_id))
        conn.execute(
            "insert into set_aside (table_name, row_id, reason, at, ticket_id) values (?, ?, ?, ?, ?)",
            (row.table, row.row_id, row.reason, writes.now_ts(), row.ticket_id),
        )
    if rows:
        conn.execute(
            "delete from set_aside where seq not in (select seq from set_aside order by seq desc limit ?)", (KEPT,)
        )


def clear(conn: sqlite3.Connection, table: str, row_ids: Iterable[str] | None = None) -> None:
    """Rows set aside before that the server sent again and the cache took: no longer skipped (None: every row of
    ``table``, for a set read whole that went in)."""
    if row_ids is None:
        conn.execute("delete from set_aside where table_name = ?", (table,))
    else:
        conn.execute(f"delete from set_aside where table_name = ? and row_id {IN_LIST}", (table, as_param(row_ids)))


def forget(conn: sqlite3.Connection, ticket_ids: Iterable[str]) -> None:
    """Tickets dropped from the cache (no longer visible to this user): the rows set aside in them can never come
    again to clear their notes, so the notes go with them."""
    conn.execute(f"delete from set_aside where ticket_id {IN_LIST}", (as_param(ticket_ids),))


def listed(conn: sqlite3.Connection) -> list[SetAside]:
    """The rows set aside, oldest first."""
    return [
        SetAside(str(r[0]), str(r[1]), str(r[2]), None if r[3] is None else str(r[3]))
        for r in conn.execute("select table_name, row_id, reason, ticket_id from set_aside order by seq")
    ]


def any_noted(conn: sqlite3.Connection) -> bool:
    return conn.execute("select 1 from set_aside limit 1").fetchone() is not None


def note(rows: Sequence[SetAside]) -> str | None:
    """The status line's words for these rows (None: none)."""
    if not rows:
        return None
    last = rows[-1]
    more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
    return f"a {last.table} row ({last.row_id}) from the server could not be read and was skipped{more}: {last.reason}"


def row_id(row: Any) -> str:
    """A server row's key, for the log and the rows set aside (an id, or the columns of a key without one); cut to
    ``_ROW_ID_CHARS`` (a real key is a uuid or two: a longer one is a hostile server's, kept out of the status
    line and the file)."""
    if isinstance(row, Mapping):
        if "id" in row:
            key = str(row["id"])
        else:
            key = "/".join(str(row[k]) for k in _KEY_COLUMNS if k in row) or "?"
    else:
        key = str(row[0]) if isinstance(row, Sequence) and row else "?"
    return key[:_ROW_ID_CHARS]


def ticket_of(table: str, row: Any) -> str | None:
    """The ticket a server row belongs to (a ticket's own id; a message's, an attachment's, a read marker's
    ``ticket_id``; a staged message array's second field), cut as ``row_id`` is; None: none or not readable."""
    if isinstance(row, Mapping):
        value = row.get("id") if table == "tickets" else row.get("ticket_id")
    elif isinstance(row, Sequence) and not isinstance(row, str) and len(row) > 1 and table == "messages":
        value = row[1]
    else:
        value = None
    return None if value is None else str(value)[:_ROW_ID_CHARS]


def reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


class Ledger:
    """One cache file's rows set aside, as its writes see them (shared by ``Cache`` and ``WorkspaceCache``): while
    the file notes none, a write that applies has none to clear, and pays no statement for it."""

    def __init__(self, reader: sqlite3.Connection) -> None:
        self.noted = any_noted(reader)

    def apply(
        self, conn: sqlite3.Connection, table: str, rows: Sequence[Any], each: Callable[[list[Any]], T]
    ) -> list[T]:
        """``each(rows)`` whole, in a savepoint; when that raises a row's error, each row alone (``one_by_one``).
        Returns what the calls that went returned."""
        conn.execute("savepoint apply_page")
        try:
            result = each(list(rows))
        except ROW_ERRORS:
            conn.execute("rollback to apply_page")
        else:
            conn.execute("release apply_page")
            self.applied(conn, table, rows)
            return [result]
        conn.execute("release apply_page")
        results: list[T] = []
        self.one_by_one(conn, table, rows, lambda one: results.append(each(one)))
        return results

    def one_by_one(
        self,
        conn: sqlite3.Connection,
        table: str,
        rows: Sequence[Any],
        each: Callable[[list[Any]], object],
        *,
        keep: bool = True,
    ) -> list[Any]:
        """Of rows that did not go in whole: ``each`` row alone, in its own savepoint (rolled back after it unless
        ``keep``: a trial); the rows it raised a row's error for are set aside, in this transaction. Returns the rows
        that went. More than ``PER_PAGE`` bad rows raise the last one's error: the page fails."""
        bad, good = list[SetAside](), list[Any]()
        for row in rows:
            conn.execute("savepoint apply_row")
            try:
                each([row])
            except ROW_ERRORS as exc:
                conn.execute("rollback to apply_row")
                bad.append(SetAside(table, row_id(row), reason(exc), ticket_of(table, row)))
                if len(bad) > PER_PAGE:
                    conn.execute("release apply_row")
                    raise
            else:
                good.append(row)
                if not keep:
                    conn.execute("rollback to apply_row")
            conn.execute("release apply_row")
        self.applied(conn, table, good)
        self.record(conn, bad)
        return good

    def record(self, conn: sqlite3.Connection, rows: Sequence[SetAside]) -> None:
        if rows:
            record(conn, rows)
            self.noted = True

    def applied(self, conn: sqlite3.Connection, table: str, rows: Sequence[Any] | None) -> None:
        """Rows set aside before that the server sent again and the cache took: no longer skipped (None: the whole
        of a set read whole)."""
        if self.noted and (rows is None or rows):
            clear(conn, table, None if rows is None else {row_id(r) for r in rows})
