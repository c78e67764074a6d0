"""A ticket's snooze in the cache: the server keeps it in the staff-only ``ticket_snoozes`` (migration
``20261216000100``: on the ticket's row a customer read it), the cache on its own ticket row
(``tickets.snoozed_until``, schema v3), where the inbox's filters and the header read it.

- ``queue``: the user's snooze, shown at once and queued as a ``snooze`` outbox entry (an upsert of the server row,
  harmless when resent; each change its own entry, in order after the ticket's status change).
- ``apply_rows``: server rows (pulls, realtime, a ticket's backfill) set their ticket's time, unless a snooze of
  this device for that ticket is still queued (it wins until the server has it; the next pull brings the server's
  row, stamped later). A pulled ticket row never touches the time (``writes.apply_tickets``).
- ``refused``: the server refused the snooze for good: the entry leaves and the ticket shows the server's time.

Functions of an open transaction, called by ``Cache`` and ``WorkspaceCache`` only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any, Final

from sync.cache.files import dumps
from sync.decisions import OutboxEntry, canonical_ts

KIND: Final = "snooze"
TABLE: Final = "ticket_snoozes"
# what the synced table's rows are in the cache, for its counts and keys (``reads.count``, ``reads.keys``)
CACHED_ROWS: Final = "(select id as ticket_id from tickets where snoozed_until is not null)"

_QUEUED = "exists (select 1 from outbox o where o.kind = 'snooze' and o.entity_id = tickets.id)"


def queue(conn: sqlite3.Connection, ticket_id: str, until: str | None, now: str) -> None:
    """Show the snooze at once and queue it; KeyError when the ticket is not in the cache."""
    if not conn.execute("update tickets set snoozed_until = ? where id = ?", (until, ticket_id)).rowcount:
        raise KeyError(ticket_id)
    conn.execute(
        "insert into outbox (kind, entity_id, ticket_id, payload, created_at) values (?, ?, ?, ?, ?)",
        (KIND, ticket_id, ticket_id, dumps(payload(ticket_id, until)), now),
    )


def payload(ticket_id: str, until: str | None) -> dict[str, Any]:
    """The server row an entry upserts (who and when are the server's)."""
    return {"ticket_id": ticket_id, "snoozed_until": until}


def apply_rows(conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """Server rows of ``ticket_snoozes``; returns the tickets whose time changed."""
    changed: set[str] = set()
    for row in rows:
        ticket_id, until = str(row["ticket_id"]), canonical_ts(row.get("snoozed_until"))
        if conn.execute(
            f"update tickets set snoozed_until = ? where id = ? and snoozed_until is not ? and not {_QUEUED}",
            (until, ticket_id, until),
        ).rowcount:
            changed.add(ticket_id)
    return changed


def refused(conn: sqlite3.Connection, entry: OutboxEntry, server_row: Mapping[str, Any] | None) -> None:
    """The entry leaves; the ticket shows the server's time (none without a row), unless a later snooze of this
    device is still queued."""
    conn.execute("delete from outbox where seq = ?", (entry.seq,))
    apply_rows(conn, [server_row or payload(entry.entity_id, None)])
