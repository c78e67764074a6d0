"""Triggers set aside while the initial sync writes in bulk (issue 15): their work is done once at its end.

Why: SQLite enters a trigger's program once per row it fires for, and decides its ``when`` clause inside it, so
a trigger that does nothing (``not exists (select 1 from meta where key = 'bulk_apply')``, schema v12) still costs
a program frame per row. Measured on this machine (load ~10, CPU time): 100,000 tickets upserted into an empty
cache took 5.8 to 7.1 s with the tickets' triggers and 3.2 to 3.5 s without; the move of 1,000,000 staged messages 7.2 s
in its insert with ``messages_unread_ai`` and 5.5 to 5.8 s without.

What is set aside is only what the initial sync redoes whole at its end (``Cache.finish_initial_sync``: the
search indexes rebuilt, the unread columns recounted), so nothing a reader can see changes:

- ``tickets_fts_ai``, ``tickets_unread_ai``: they skip their work during a bulk page anyway (schema v12);
- ``tickets_fts_au``: a ticket's subject changed by a later page of the same initial sync; the subject index is
  rebuilt from the table at the end (``rebuild_search``), as it is for the rows ``tickets_fts_ai`` skipped;
- ``messages_unread_ai``: skips its work during a bulk page (schema v12); the unread columns are recounted at the
  end (``recount_unread``).
- ``ticket_reads_unread_ai``, ``ticket_reads_unread_au``: they copy this user's read marker to its ticket's
  ``my_read_at``, which ``recount_unread`` sets from the markers at the end; their ``when`` (the marker is mine)
  was decided in a program frame for every one of the desk's 180,000 markers (schema v9).

They are dropped and made again, from their own text in ``sqlite_master``, inside the caller's transaction: the
reader connection and a crash see them always there (DDL is transactional in SQLite; a failing page rolls back
to the last commit with them in place).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

TICKETS = ("tickets_fts_ai", "tickets_unread_ai", "tickets_fts_au")
MESSAGES = ("messages_unread_ai",)
READS = ("ticket_reads_unread_ai", "ticket_reads_unread_au")


@contextmanager
def set_aside(conn: sqlite3.Connection, names: tuple[str, ...]) -> Iterator[None]:
    """Inside a transaction: the named triggers are dropped for the block and made again after it (with the
    exact text they had). On an error the caller's rollback brings them back."""
    if not conn.in_transaction:
        raise RuntimeError("triggers are set aside inside a transaction only")
    marks = ", ".join("?" * len(names))
    kept = conn.execute(
        f"select name, sql from sqlite_master where type = 'trigger' and name in ({marks})", names
    ).fetchall()
    for name, _sql in kept:
        conn.execute(f'drop trigger "{name}"')
    yield
    for _name, sql in kept:
        conn.execute(sql)
