"""New tickets whose id the server holds under another ticket (mend17c): failed with their queued work, and sent
again under new ids.

A ticket made here (a customer's "New ticket", often offline) carries an id made here; its creation is inserted
with ignore-duplicates, so a ticket the server already holds under that id (another customer's, or one this user
may not read) answered nothing, and the creation was taken as delivered: the ticket and its first messages then
pointed at someone else's row. The push now asks who holds the ids it did not insert (sync/push.py
``Pusher._tickets``); another's row fails the ticket here (``fail``) with every entry queued for it, and what the
user wrote is kept, to go again as a new ticket (``resend``: sync/commands.py ``send_as_new_ticket``).

``ForeignTickets`` runs these on the cache's writer thread (``Cache.foreign_tickets``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sync.cache import writes
from sync.cache.files import Store
from sync.cache.writes import FOREIGN_TICKET_ERROR


@dataclass(frozen=True)
class Failed:
    """A new ticket refused for its id, as the user wrote it: its fields (with the changes folded in while it was
    queued) and its unsent messages, oldest first (id, content, is_internal)."""

    ticket: dict[str, Any]
    messages: list[tuple[str, str, bool]]


def fail(conn: sqlite3.Connection, ticket_ids: Iterable[str]) -> dict[str, set[str]]:
    """Fail these new tickets and everything queued for them (their creation, messages, files, changes); a queued
    read marker goes (nothing to show). Returns each ticket's failed messages."""
    failed: dict[str, set[str]] = {}
    for ticket_id in ticket_ids:
        conn.execute("delete from outbox where kind = 'read' and ticket_id = ?", (ticket_id,))
        conn.execute(
            "update outbox set state = 'failed', error = ? where ticket_id = ? and state = 'queued'",
            (FOREIGN_TICKET_ERROR, ticket_id),
        )
        conn.execute(
            "update tickets set local_state = 'failed', error = ? where id = ?",
            (FOREIGN_TICKET_ERROR, ticket_id),
        )
        ids = {
            str(r[0])
            for r in conn.execute(
                "select id from messages where ticket_id = ? and local_state <> 'sent'", (ticket_id,)
            ).fetchall()
        }
        conn.executemany(
            "update messages set local_state = 'failed', error = ? where id = ?",
            [(FOREIGN_TICKET_ERROR, i) for i in ids],
        )
        conn.execute(
            "update attachments set local_state = 'failed', error = ? where ticket_id = ? and local_state <> 'sent'",
            (FOREIGN_TICKET_ERROR, ticket_id),
        )
        failed[ticket_id] = ids
    return failed


def failed_ticket(conn: sqlite3.Connection, ticket_id: str) -> Failed | None:
    """The ticket as the user wrote it, when its creation failed for its id; None otherwise."""
    if not writes.not_created(conn, ticket_id):
        return None
    create = conn.execute(
        "select payload from outbox where kind = 'ticket_create' and entity_id = ?", (ticket_id,)
    ).fetchone()
    if create is None:
        return None
    rows = conn.execute(
        "select id, content, is_internal from messages where ticket_id = ? and local_state = 'failed'"
        " and error = ? order by created_at, id",
        (ticket_id, FOREIGN_TICKET_ERROR),
    ).fetchall()
    return Failed(json.loads(create[0]), [(str(r[0]), str(r[1]), bool(r[2])) for r in rows])


def resend(
    conn: sqlite3.Connection,
    old_id: str,
    ticket: Mapping[str, Any],
    messages: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]],
) -> bool:
    """The failed ticket queued again as ``ticket`` with its ``messages`` (each row with its files, copied
    already) and its draft, and the failed one removed here, in one transaction. False when it is no longer
    failed for its id (nothing written)."""
    if not writes.not_created(conn, old_id):
        return False
    conn.execute("delete from outbox where ticket_id = ?", (old_id,))
    conn.execute("delete from attachments where ticket_id = ? and local_state <> 'sent'", (old_id,))
    conn.execute("delete from messages where ticket_id = ? and local_state <> 'sent'", (old_id,))
    draft = conn.execute("select text from drafts where ticket_id = ?", (old_id,)).fetchone()
    writes.remove_tickets(conn, [old_id])
    writes.queue_ticket(conn, ticket)
    if draft is not None:  # what the user was still typing in it goes along
        writes.save_draft(conn, str(ticket["id"]), str(draft[0]))
    for row, files in messages:
        writes.queue_message_with_files(conn, row, files)
    return True


class ForeignTickets:
    """``fail``, ``failed_ticket`` and ``resend`` on an open cache's store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def fail(self, ticket_ids: Iterable[str]) -> dict[str, set[str]]:
        ids = list(ticket_ids)
        return await self._store.awrite(lambda c: fail(c, ids))

    def failed_ticket(self, ticket_id: str) -> Failed | None:
        return failed_ticket(self._store.reader, ticket_id)

    def resend(
        self,
        old_id: str,
        ticket: Mapping[str, Any],
        messages: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]],
    ) -> bool:
        return self._store.write(lambda c: resend(c, old_id, ticket, messages))
