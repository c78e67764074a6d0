"""The server rows this cache could not take and set aside (``Cache._apply``, cache schema v17), kept in the file.

A row the cache cannot store (a value no parser reads, a constraint of the cache) is skipped so that the rest of its
page, and the cursor, go on; it is noted here in the same transaction as the page, so the status line says so
after a restart too ("Online · a row was skipped"), and it leaves when the server sends it again and it applies.
Only the newest ``KEPT`` are kept: the note names the newest and counts the others.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sync.cache import writes
from sync.cache.id_lists import IN_LIST, as_param

log = logging.getLogger(__name__)

KEPT = 20  # the newest rows set aside that a cache remembers, for the status line


@dataclass(frozen=True)
class SetAside:
    """A pulled row the cache could not apply: skipped so that the rest of its page (and the cursor) went on."""

    table: str
    row_id: str
    reason: str


def record(conn: sqlite3.Connection, rows: Sequence[SetAside]) -> None:
    """Inside the page's transaction: note these rows (a row set aside again becomes the newest)."""
    for row in rows:
        log.warning("a %s row (%s) could not be applied and was set aside: %s", row.table, row.row_id, row.reason)
        conn.execute("delete from set_aside where table_name = ? and row_id = ?", (row.table, row.row_id))
        conn.execute(
            "insert into set_aside (table_name, row_id, reason, at) values (?, ?, ?, ?)",
            (row.table, row.row_id, row.reason, writes.now_ts()),
        )
    if rows:
        conn.execute(
            "delete from set_aside where seq not in (select seq from set_aside order by seq desc limit ?)", (KEPT,)
        )


def clear(conn: sqlite3.Connection, table: str, row_ids: Iterable[str]) -> None:
    """Rows set aside before that the server sent again and the cache took: no longer skipped."""
    conn.execute(f"delete from set_aside where table_name = ? and row_id {IN_LIST}", (table, as_param(row_ids)))


def listed(conn: sqlite3.Connection) -> list[SetAside]:
    """The rows set aside, oldest first."""
    return [
        SetAside(str(r[0]), str(r[1]), str(r[2]))
        for r in conn.execute("select table_name, row_id, reason from set_aside order by seq")
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
