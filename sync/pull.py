"""Pull: bring the cache up to the server's truth by its change cursor.

For each table, pages of ``sync_<table>(after_xid, after_id)`` (≤ 1000 rows, keyset order, until an
empty page) are applied in one SQLite transaction each, together with the new cursor, so a crash mid-pull resumes
where it stopped. The next page is already in flight while the writer thread applies the current
one. The server's cursor never skips a row committed late (see the migration's header), so the
pull is gap-free; two things it cannot see by cursor are handled explicitly:

- a ticket that just became visible (new here, or reassigned to me) has older messages below the
  cursor: its thread and read markers are fetched by ticket id (backfill), noted in the cache with
  the tickets page that revealed it, so a backfill cut short by the network is resumed by the next pull;
- a ticket that stopped being visible never shows up again: cached ticket ids are compared with
  the server's visible ids, and the missing ones leave the cache (unless local unsent work on them
  must stay visible to the user).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sync import events, local
from sync.decisions import needs_backfill, stale_tickets
from sync.remote import Remote
from sync.store import Store

log = logging.getLogger(__name__)

ORDER = ("profiles", "tickets", "messages", "ticket_reads")


@dataclass
class PullResult:
    rows: int = 0
    backfilled: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)


class Puller:
    def __init__(self, store: Store, remote: Remote, emit: Callable[[events.Event], None], me: str) -> None:
        self.store = store
        self.remote = remote
        self.emit = emit
        self.me = me

    async def pull(self, *, check_visibility: bool = True) -> PullResult:
        result = PullResult()
        initial = await self.store.aread(lambda c: local.get_cursor(c, "messages") == (0, 0))
        backfill: set[str] = set()
        for table in ORDER:
            await self._pull_table(table, result, initial, backfill)
        backfill |= await self.store.aread(local.pending_backfills)  # incl. those an earlier pull could not finish
        for ticket_id in sorted(backfill):
            await self.backfill(ticket_id, result)
        if check_visibility:
            await self._prune(result)
        return result

    async def _pull_table(self, table: str, result: PullResult, initial: bool, backfill: set[str]) -> None:
        cursor = await self.store.aread(lambda c: local.get_cursor(c, table))
        fetch: asyncio.Task[list[dict[str, Any]]] = asyncio.ensure_future(self.remote.pull(table, cursor))
        done = 0
        try:
            while True:
                rows = await fetch
                if not rows:
                    break
                last = (int(rows[-1]["change_xid"]), int(rows[-1]["change_id"]))
                # only an empty page ends a table (a project's max rows may cut pages below PAGE, so a
                # short page proves nothing); the next request overlaps applying this page
                fetch = asyncio.ensure_future(self.remote.pull(table, last))
                await self._apply(table, rows, last, initial, backfill)
                done += len(rows)
                result.rows += len(rows)
                if initial:
                    self.emit(events.SyncProgress(done, None, table))
            if initial:
                self.emit(events.SyncProgress(done, done, table))  # this phase is complete: total known
        finally:
            if not fetch.done():
                fetch.cancel()
                await asyncio.wait([fetch])
            if not fetch.cancelled() and fetch.exception() is not None:
                log.debug("prefetch of %s ended with %s", table, fetch.exception())

    async def _apply(self, table: str, rows: list[dict[str, Any]], cursor: tuple[int, int], initial: bool,
                     backfill: set[str]) -> None:
        me = self.me

        def write(conn: sqlite3.Connection) -> Any:
            out = apply_rows(conn, table, rows, me, initial)
            if table == "tickets":
                # recorded with the cursor that passes these rows: a backfill cut short is resumed later
                local.add_backfills(conn, tickets_to_backfill(rows, out[0], not initial))
            local.set_cursor(conn, table, cursor)
            return out

        out = await self.store.awrite(write)
        if table == "tickets":
            previous, ids = out
            backfill.update(tickets_to_backfill(rows, previous, not initial))
            self.emit(events.TicketsChanged(frozenset(ids)))
        elif table == "messages":
            for ticket_id, (ids, from_others) in out.items():
                self.emit(events.MessagesChanged(ticket_id, frozenset(ids), from_others))
        elif table == "ticket_reads":
            self.emit(events.TicketsChanged(frozenset(out)))

    async def backfill(self, ticket_id: str, result: PullResult | None = None) -> None:
        """Fetch a ticket's whole thread and read markers by ticket id (it became visible)."""
        messages = await self.remote.rows_of_ticket("messages", ticket_id)
        reads = await self.remote.rows_of_ticket("ticket_reads", ticket_id)
        me = self.me
        def write(conn: sqlite3.Connection) -> Any:
            out = apply_rows(conn, "messages", messages, me, False)
            local.apply_reads(conn, reads)
            local.backfill_done(conn, ticket_id)
            return out

        out = await self.store.awrite(write)
        for tid, (ids, from_others) in out.items():
            self.emit(events.MessagesChanged(tid, frozenset(ids), from_others))
        if result is not None:
            result.backfilled.add(ticket_id)
            result.rows += len(messages) + len(reads)

    async def _prune(self, result: PullResult) -> None:
        visible = await self.remote.visible_ticket_ids()

        def prune(conn: sqlite3.Connection) -> set[str]:
            gone = stale_tickets(local.local_ticket_ids(conn), visible, local.tickets_with_local_work(conn))
            local.remove_tickets(conn, gone)
            return gone

        gone = await self.store.awrite(prune)
        if gone:
            result.removed |= gone
            self.emit(events.TicketsRemoved(frozenset(gone)))
            self.emit(events.TicketsChanged(frozenset(gone)))


def tickets_to_backfill(rows: list[dict[str, Any]], previous: dict[str, Any], messages_synced: bool) -> list[str]:
    return [str(r["id"]) for r in rows if needs_backfill(previous.get(str(r["id"])), r, messages_synced)]


def apply_rows(conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]], me: str, initial: bool) -> Any:
    """Apply server rows of one table in the caller's transaction; returns what changed, for events.

    Shared by pulls and realtime so both paths write the cache the same way."""
    if table == "messages":
        new_ids: set[str] = set()
        if not initial:
            ids = [r["id"] for r in rows]
            known: set[str] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                known |= {x[0] for x in conn.execute(
                    f"select id from messages where local_state = 'sent' and id in ({','.join('?' * len(chunk))})",
                    chunk)}
            new_ids = set(ids) - known
        by_ticket = local.apply_messages(conn, rows)
        senders = {r["id"]: r["sender_id"] for r in rows}
        return {tid: (ids_, any(i in new_ids and senders[i] != me for i in ids_)) for tid, ids_ in by_ticket.items()}
    if table == "tickets":
        previous = local.apply_tickets(conn, rows)
        return previous, {str(r["id"]) for r in rows}
    if table == "ticket_reads":
        return local.apply_reads(conn, rows)
    if table == "profiles":
        local.apply_profiles(conn, rows)
        return None
    raise ValueError(f"not a synced table: {table}")
