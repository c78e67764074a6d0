"""``WorkspaceCache``: the agent workspace's verbs on the user's cache (issue 14), reached as
``Cache.workspace``. It shares the cache's store (one writer thread, one reader connection) and keeps
the SQL in sync/cache/workspace.py (writes) and sync/cache/workspace_reads.py (reads).

``queue(steps)`` is the one local command: any mix of row writes, messages and ticket changes in ONE
transaction, each step with its outbox entry, in the order given — a macro (reply + status + tags)
is one call, so it is queued whole or not at all, and the server receives it in that order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sync.cache import set_aside, snoozes, workspace, workspace_reads, writes
from sync.cache.files import Store
from sync.decisions import OutboxEntry
from sync.models import Ticket
from sync.workspace_rows import (
    SNAPSHOT_TABLES,
    BusinessHours,
    CannedFile,
    CannedReply,
    CustomerNote,
    Holiday,
    InboxFilter,
    Macro,
    Mention,
    NewMessage,
    SavedView,
    SlaTarget,
    SnoozeChange,
    Step,
    Tag,
    TicketChange,
    TicketSla,
)


class WorkspaceCache:
    def __init__(self, store: Store, me: str, role: str, ledger: set_aside.Ledger) -> None:
        self._store = store
        self.me, self.role = me, role
        self._ledger = ledger  # the cache's rows set aside: server rows go in under the same rules as a pull's

    # --- local commands -------------------------------------------------------------------------------

    def queue(self, steps: Sequence[Step]) -> set[str]:
        """Apply every step locally and queue its outbox entry, all in one transaction (all or nothing).
        Steps must already be checked (sync/workspace.py does). Returns the tickets touched.
        Raises ValueError when a step's ticket or row is not in the cache."""

        def write(conn: sqlite3.Connection) -> set[str]:
            touched: set[str] = set()
            for step in steps:
                ticket_id = self._queue_step(conn, step)
                if ticket_id:
                    touched.add(ticket_id)
            return touched

        return self._store.write(write)

    def _queue_step(self, conn: sqlite3.Connection, step: Step) -> str:
        if isinstance(step, NewMessage):
            if not writes.ticket_exists(conn, step.ticket_id):
                raise ValueError(f"no such ticket in the cache: {step.ticket_id}")
            row = {
                "id": step.id,
                "ticket_id": step.ticket_id,
                "sender_id": step.sender_id,
                "content": step.content,
                "is_internal": 1 if step.is_internal else 0,
            }
            writes.queue_message(conn, row)
            writes.save_draft(conn, step.ticket_id, "")
            return step.ticket_id
        if isinstance(step, TicketChange | SnoozeChange):
            try:
                if isinstance(step, TicketChange):
                    writes.queue_ticket_update(conn, step.ticket_id, step.changes)
                else:
                    snoozes.queue(conn, step.ticket_id, step.until, writes.now_ts())
            except KeyError:
                raise ValueError(f"no such ticket in the cache: {step.ticket_id}") from None
            return step.ticket_id
        if step.table == "ticket_tags" and not writes.ticket_exists(conn, str(step.row["ticket_id"])):
            raise ValueError(f"no such ticket in the cache: {step.row['ticket_id']}")
        try:
            return workspace.queue_row(conn, step, self.me, writes.now_ts())
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise ValueError(f"this {step.table} row exists already") from None
            raise ValueError(f"{step.table}: {exc}") from None

    def discard_failed(self, table: str, key: Mapping[str, Any]) -> bool:
        """Forget a row whose creation the server refused."""
        return self._store.write(lambda c: workspace.discard_failed(c, table, key))

    # --- for the Pusher and the Puller ------------------------------------------------------------------

    async def refused(self, entry: OutboxEntry, reason: str, server_row: Mapping[str, Any] | None) -> None:
        """The server refused a change for good; its row, when it sent one, under the pulls' rules (before, one the
        cache could not take failed the write, and the refused change stayed queued, sent again at every round)."""
        await self._store.awrite(lambda c: workspace.refused(c, entry, reason, server_row, self._server_rows))

    async def snooze_refused(self, entry: OutboxEntry, server_row: Mapping[str, Any] | None) -> None:
        """The server refused a snooze for good: the ticket shows the server's (sync/cache/snoozes.py)."""
        await self._store.awrite(lambda c: snoozes.refused(c, entry, server_row))

    def _server_rows(self, conn: sqlite3.Connection, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Server rows of a workspace table: one the cache cannot take is set aside, the others go in."""
        self._ledger.apply(conn, table, rows, lambda r: workspace.apply_rows(conn, table, r))

    async def apply_snapshot(self, table: str, rows: Sequence[Mapping[str, Any]]) -> bool:
        """A settings table read whole replaces the cached one; False when a row of it could not be taken: a set
        read whole is the contract (a set of business hours or holidays without one of its rows would compute
        other deadlines), so the previous set is kept whole, and the bad rows are set aside (the status line says a
        row was skipped, until the set goes in). Before, the read raised, failing the pull at every round."""
        if table not in SNAPSHOT_TABLES:
            raise ValueError(f"not a settings table: {table}")

        def write(conn: sqlite3.Connection) -> bool:
            conn.execute("savepoint snapshot")
            try:
                workspace.replace_snapshot(conn, table, rows)
            except set_aside.ROW_ERRORS as exc:
                conn.execute("rollback to snapshot")
                conn.execute("release snapshot")
                # which rows: each tried alone on the previous set, then rolled back (more than PER_PAGE raise)
                went = self._ledger.one_by_one(
                    conn, table, rows, lambda one: workspace.apply_rows(conn, table, one), keep=False
                )
                if len(went) == len(rows):  # no row fails alone: the set as a whole is what the cache refused
                    self._ledger.record(conn, [set_aside.SetAside(table, "the whole set", set_aside.reason(exc))])
                return False
            conn.execute("release snapshot")
            self._ledger.applied(conn, table, None)
            return True

        return await self._store.awrite(write)

    async def apply_deletes(self, table: str, keys: Sequence[Mapping[str, Any]]) -> set[str]:
        """Rows the server deleted (realtime DELETE events' keys); returns the tickets concerned."""
        if table not in workspace.COLUMNS:
            raise ValueError(f"not a workspace table: {table}")
        return await self._store.awrite(lambda c: workspace.apply_deletes(c, table, keys))

    # --- reads (synchronous, indexed) ---------------------------------------------------------------------

    def inbox(self, f: InboxFilter, now: datetime, limit: int = 200) -> list[Ticket]:
        return workspace_reads.inbox(self._store.reader, self.me, self.role, f, now=now, limit=limit)

    def count_unread(self, f: InboxFilter, now: datetime) -> int:
        return workspace_reads.count_unread(self._store.reader, self.me, f, now)

    def count(self, f: InboxFilter, now: datetime) -> int:
        return workspace_reads.count(self._store.reader, self.me, f, now)

    def tags(self) -> list[Tag]:
        return workspace_reads.tags(self._store.reader)

    def tags_of(self, ticket_ids: Sequence[str]) -> dict[str, list[Tag]]:
        return workspace_reads.tags_of(self._store.reader, ticket_ids)

    def sla_of(self, ticket_ids: Sequence[str]) -> dict[str, TicketSla]:
        return workspace_reads.sla_of(self._store.reader, ticket_ids)

    def canned_replies(self) -> list[CannedReply]:
        return workspace_reads.canned_replies(self._store.reader)

    def macros(self) -> list[Macro]:
        return workspace_reads.macros(self._store.reader)

    def saved_views(self) -> list[SavedView]:
        return workspace_reads.saved_views(self._store.reader, self.me)

    def customer_notes(self, customer_id: str) -> list[CustomerNote]:
        return workspace_reads.customer_notes(self._store.reader, customer_id)

    def mentions(self, unseen_only: bool = False, limit: int = 200) -> list[Mention]:
        return workspace_reads.mentions(self._store.reader, self.me, unseen_only, limit)

    def sla_targets(self) -> list[SlaTarget]:
        return workspace_reads.sla_targets(self._store.reader)

    def sla_timezone(self) -> str:
        return workspace_reads.sla_timezone(self._store.reader)

    def canned_files(self, reply_id: str | None = None) -> list[CannedFile]:
        return workspace_reads.canned_files(self._store.reader, reply_id)

    async def apply_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Server rows of a workspace table the app wrote online (a canned reply's file), shown at once; one the
        cache cannot take is set aside as a pull's would be (before, the write failed whole after the server had
        done it)."""
        if table not in workspace.COLUMNS:
            raise ValueError(f"not a workspace table: {table}")
        await self._store.awrite(lambda c: self._server_rows(c, table, rows))

    def sla_business_hours(self) -> list[BusinessHours]:
        return workspace_reads.sla_business_hours(self._store.reader)

    def sla_holidays(self) -> list[Holiday]:
        return workspace_reads.sla_holidays(self._store.reader)

    def snoozed_until(self, ticket_id: str) -> str | None:
        return workspace_reads.snoozed_until(self._store.reader, ticket_id)

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every cached row of a workspace table, as stored (for tests and diagnosis)."""
        if table not in workspace.COLUMNS:
            raise ValueError(f"not a workspace table: {table}")
        return workspace_reads.rows(self._store.reader, table)
