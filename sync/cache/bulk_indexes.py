"""The tickets' four secondary indexes set aside during a first sync's tickets phase, then built once by a sort
(issue 15: the cache's size and the initial sync's writes).

Why: tickets arrive in the server's change order, which on a desk filled over the years follows ``last_message_at``,
the key of all four indexes (after status, assignee or customer), descending; SQLite splits a B-tree page for an
insert below its lowest key by halves, so these inserts left the pages half full. Measured at 100,000 tickets in
the kept desk's arrival order (load ~10): the four indexes 42.6 MB, 24.7 MB when built by a sort once all tickets
are in (the cache file 18 MB smaller), and the tickets' upsert 2.3 to 2.4 s of CPU instead of 2.7 to 3.4 (the sort
costs less than keeping four indexes per row).

When: an initial sync's tickets page into a cache that holds no ticket yet (a first sync: the inbox has nothing to
list). The drop and a note of what was dropped (``meta``, each index's exact text) are in the page's transaction;
the rebuild and the note's removal are one transaction at the end of the phase (``restore``, also when the phase
fails). A kill in between leaves the note, and the next open of the cache builds them before its schema steps
(sync/cache/files.py), so a cache never stays without them. Meanwhile a reader sees the tickets committed so far
without these indexes: the same rows, found by a scan (the initial sync commits every 100,000 rows).
"""

from __future__ import annotations

import json
import sqlite3

NAMES = ("tickets_activity", "tickets_assignee", "tickets_status", "tickets_customer")
_KEY = "tickets_indexes_aside"


def set_aside(conn: sqlite3.Connection) -> bool:
    """Inside the page's transaction: drop the indexes if the cache holds no ticket yet (noted in ``meta``);
    whether they are aside now."""
    if conn.execute("select 1 from meta where key = ?", (_KEY,)).fetchone():
        return True
    if conn.execute("select exists (select 1 from tickets)").fetchone()[0]:
        return False
    marks = ", ".join("?" * len(NAMES))
    kept = conn.execute(
        f"select name, sql from sqlite_master where type = 'index' and tbl_name = 'tickets' and name in ({marks})",
        NAMES,
    ).fetchall()
    conn.execute("insert into meta (key, value) values (?, ?)", (_KEY, json.dumps([list(k) for k in kept])))
    for name, _sql in kept:
        conn.execute(f'drop index "{name}"')
    return True


def noted(conn: sqlite3.Connection) -> bool:
    """Whether the indexes are set aside (outside a transaction too: opening the cache)."""
    if not conn.execute("select 1 from sqlite_master where type = 'table' and name = 'meta'").fetchone():
        return False  # a new file, before its first schema step
    return conn.execute("select 1 from meta where key = ?", (_KEY,)).fetchone() is not None


def restore(conn: sqlite3.Connection) -> bool:
    """Inside a transaction: build the indexes ``set_aside`` dropped (those still missing) and remove the note;
    whether there was anything to do."""
    if not noted(conn):
        return False
    row = conn.execute("select value from meta where key = ?", (_KEY,)).fetchone()
    for name, sql in json.loads(row[0]):
        if not conn.execute("select 1 from sqlite_master where type = 'index' and name = ?", (name,)).fetchone():
            conn.execute(sql)
    conn.execute("delete from meta where key = ?", (_KEY,))
    return True
