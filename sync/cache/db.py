"""``Cache``: one signed-in user's SQLite cache, spoken to in the domain's verbs.

It owns the file (sync/cache/files.py: 0600, WAL, ``user_version`` migrations, corruption → move aside
and salvage), one writer thread and a reader connection; every SQL statement of the engine lives in
this package (writes in sync/cache/writes.py, reads in sync/cache/reads.py). Like sqlite-utils'
``Database`` and PowerSync's ``BucketStorageAdapter``, callers say what they mean — ``queue_message``,
``queued``, ``acknowledge``, ``apply_page`` — and never hand SQL or lambdas around.

Each verb is one transaction. Local commands (what the UI does) are synchronous: they wait for the
writer thread, so the UI can read its own write at once. What the sync loop does is ``async`` and
never blocks the event loop. Reads are synchronous, indexed and cheap (the UI calls them on the loop).

Adding an outbox entry kind (attachments, edits, deletes): a ``queue_*`` verb here that writes the
local row and its entry (writes.enqueue) in one transaction, its ``acknowledge``/``fail`` effect on
the local row in writes.acknowledge/writes.fail, and a sender registered with the Pusher (sync/push.py).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sync import events
from sync.cache import (
    attachment_deletes,
    bulk_indexes,
    bulk_triggers,
    cancel_file,
    context,
    history,
    reads,
    set_aside,
    settings,
    staging,
    workspace,
    writes,
)
from sync.cache.avatar_deletes import AvatarDeletes
from sync.cache.edit_drafts import EditDrafts
from sync.cache.files import Store, delete_store, open_store, rebuild_store
from sync.cache.foreign_tickets import ForeignTickets
from sync.cache.schema import VERSION
from sync.cache.set_aside import SetAside
from sync.cache.workspace_db import WorkspaceCache
from sync.decisions import OutboxEntry, TicketDigest, needs_backfill, stale_tickets, ticket_digest
from sync.models import Message, Profile, SearchHit, Ticket, TicketView
from sync.preferences import KIND as PREFERENCES_KIND
from sync.preferences import Preferences
from sync.workspace_rows import CURSOR_TABLES

log = logging.getLogger(__name__)

SET_ASIDE_PER_PAGE = set_aside.PER_PAGE  # more bad rows than this in one page fail it (sync/cache/set_aside.py)


# pull order: a message's ticket comes first, an attachment's (and a revision's) message before
# it; the workspace's tables last
CORE_TABLES = ("profiles", "tickets", "messages", "attachments", "ticket_reads", "message_revisions")
TABLES = (*CORE_TABLES, *CURSOR_TABLES)
_INITIAL_SYNC = "initial_sync_done"


@dataclass
class Applied:
    """What applying server rows changed, for the events the UI gets (one shape for every table)."""

    tickets: set[str] = field(default_factory=set)  # tickets whose row or read markers changed
    messages: dict[str, tuple[set[str], bool]] = field(default_factory=dict)  # ticket -> (ids, new from others)
    backfill: list[str] = field(default_factory=list)  # tickets that became visible: fetch their thread
    workspace: set[str] = field(default_factory=set)  # workspace tables with changed rows
    rows: int = 0
    dropped: list[str] = field(default_factory=list)  # messages whose text a tombstone just removed here
    dropped_files: list[str] = field(default_factory=list)  # their downloaded attachment files, to delete

    def merge(self, other: Applied) -> None:
        self.tickets |= other.tickets
        for ticket_id, (ids, from_others) in other.messages.items():
            known, before = self.messages.get(ticket_id, (set(), False))
            self.messages[ticket_id] = (known | ids, before or from_others)
        self.backfill += [t for t in other.backfill if t not in self.backfill]
        self.workspace |= other.workspace
        self.rows += other.rows
        self.dropped += other.dropped
        self.dropped_files += other.dropped_files

    def events(self) -> list[events.Event]:
        out: list[events.Event] = []
        if self.tickets:
            out.append(events.TicketsChanged(frozenset(self.tickets)))
        out += [
            events.MessagesChanged(ticket_id, frozenset(ids), from_others)
            for ticket_id, (ids, from_others) in self.messages.items()
        ]
        if self.workspace:
            out.append(events.WorkspaceChanged(frozenset(self.workspace)))
        return out


@dataclass(frozen=True)
class CacheInfo:
    """What `supportchat doctor` reports of a cache file, read without opening it for writing."""

    version: int
    pending: int
    failed: int


def _build_initial_indexes(conn: sqlite3.Connection) -> None:
    """What the initial sync's pages left to its end (``Cache.build_initial_indexes``)."""
    bulk_indexes.restore(conn)  # normally done at the end of the tickets phase already
    writes.rebuild_search(conn)
    writes.recount_unread(conn)


class Cache:
    """The cache of one user (``me``, ``role``): local commands, the outbox, server rows, the UI's reads."""

    def __init__(
        self, store: Store, me: str, role: str, rebuilt_reason: str | None = None, kept_unsent: int = 0
    ) -> None:
        self._store = store
        self.me, self.role = me, role
        self.rebuilt_reason = rebuilt_reason  # set when a damaged file was moved aside and rebuilt
        self.kept_unsent = kept_unsent
        # scrubs asked for / covered: requests that arrive while one runs share the next run (see ``scrub``)
        self._scrubs_asked = self._scrubs_covered = 0
        self._scrub_lock = asyncio.Lock()
        # the rows set aside (sync/cache/set_aside.py), as this file's writes see them
        self._ledger = set_aside.Ledger(store.reader)
        self.workspace = WorkspaceCache(store, me, role, self._ledger)  # the agent workspace's rows (issue 14)
        self.edit_drafts = EditDrafts(store)  # unsaved inline edits, restored on reopen
        self.avatar_deletes = AvatarDeletes(store)  # previous pictures to remove from Storage, retried
        self.foreign_tickets = ForeignTickets(store)  # new tickets refused for their id, and sent again

    @classmethod
    def open(cls, path: Path, me: str, role: str) -> Cache:
        """Open (creating, migrating or rebuilding) the cache file; blocking, call it off the event loop."""
        opened = open_store(path)
        cache = cls(opened.store, me, role, opened.rebuilt_reason, opened.kept_unsent)
        cache._store.write(lambda c: writes.set_meta(c, "user_id", me))
        if history.owes(cache._store.reader):  # a drop committed, then the process died before its cleanup
            cache._store.maintain(cache._settle_owed)
        return cache

    @staticmethod
    def rebuild(path: Path, reason: str, customer: str | None = None) -> tuple[int, int]:
        """Empty the (closed) cache file at ``path`` but for the unsent outbox, the local rows it needs, the drafts
        and the device's settings; with ``customer`` only what that customer may send and see
        (``files.rebuild_store``). Returns (outbox entries kept, dropped). Blocking (a small file: the outbox and
        a schema)."""
        return rebuild_store(path, reason, customer)

    def own_role(self) -> str | None:
        """The user's role as the server last said (their profile row), None before the first pull brought it."""
        return reads.role_of(self._store.reader, self.me)

    @staticmethod
    def _settle_owed(conn: sqlite3.Connection) -> None:
        history.settle_owed(conn)
        conn.execute("pragma wal_checkpoint(truncate)")

    @staticmethod
    def delete(path: Path) -> None:
        """Delete a (closed) cache file, its WAL files and any damaged copy moved aside (signing out)."""
        delete_store(path)

    @staticmethod
    def inspect(path: Path) -> CacheInfo:
        """Schema version and outbox counts of a cache file, read-only; raises sqlite3.Error if unreadable."""
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            version = int(conn.execute("pragma user_version").fetchone()[0])
            pending, failed = (0, 0) if version > VERSION else writes.counts(conn)
        finally:
            conn.close()
        return CacheInfo(version, pending, failed)

    @property
    def path(self) -> Path:
        return self._store.path

    def close(self) -> None:
        self._store.close()

    # --- local commands: one transaction each, the row and its outbox entry together ------------------

    def queue_message(self, row: Mapping[str, Any]) -> None:
        """A new message (status pending) and its outbox entry; the ticket's draft is cleared with it."""
        ticket_id = str(row["ticket_id"])

        def write(conn: sqlite3.Connection) -> None:
            if not writes.ticket_exists(conn, ticket_id):
                raise ValueError(f"no such ticket in the cache: {ticket_id}")
            writes.queue_message(conn, row)
            writes.save_draft(conn, ticket_id, "")

        self._store.write(write)

    def queue_message_with_files(self, row: Mapping[str, Any], files: Sequence[Mapping[str, Any]]) -> None:
        """A message with its attachments (files already copied into ``files_dir``), their uploads and rows
        queued around it, in one transaction; the ticket's draft is cleared with it."""
        ticket_id = str(row["ticket_id"])

        def write(conn: sqlite3.Connection) -> None:
            if not writes.ticket_exists(conn, ticket_id):
                raise ValueError(f"no such ticket in the cache: {ticket_id}")
            writes.queue_message_with_files(conn, row, files)
            writes.save_draft(conn, ticket_id, "")

        self._store.write(write)

    def resend_message(self, old_id: str, row: Mapping[str, Any], files: Sequence[Mapping[str, Any]]) -> bool:
        """A failed message queued again under a new id (``row``, with ``files`` copied already) and the failed one
        discarded, in one transaction; the ticket's draft is left as it is. False when the old one is gone or was
        sent meanwhile (nothing written)."""

        def write(conn: sqlite3.Connection) -> bool:
            if not writes.discard_message(conn, old_id):
                return False
            writes.queue_message_with_files(conn, row, files)
            return True

        return self._store.write(write)

    def cancel_file(
        self, attachment_id: str, content: str | None, upload_url: str | None, started: bool
    ) -> dict[str, Any] | None:
        """One file of an unsent message cancelled, in one transaction (sync/cache/cancel_file.py)."""
        return self._store.write(lambda c: cancel_file.cancel_file(c, attachment_id, content, upload_url, started))

    def queue_upload_cleanup(self, items: Sequence[tuple[dict[str, Any], str | None]]) -> None:
        """Files of a discarded message that reached the server in part or whole: removed once online."""

        def write(conn: sqlite3.Connection) -> None:
            for row, url in items:
                cancel_file.queue_cleanup(conn, row, url)

        self._store.write(write)

    @property
    def files_dir(self) -> Path:
        """Where queued and downloaded attachment files live, beside the cache file."""
        return self.path.with_name(self.path.name + ".files")

    def attachments(self, message_id: str) -> list[dict[str, Any]]:
        """A message's attachments as the cache has them (name, mime, size, local state and path)."""
        return reads.attachments(self._store.reader, message_id)

    def ticket_attachments(self, ticket_id: str, mimes: Sequence[str]) -> list[dict[str, Any]]:
        """A thread's attachments of these types, in thread order (the lightbox steps through its images)."""
        return reads.ticket_attachments(self._store.reader, ticket_id, mimes)

    def uploaded_attachments(self, message_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Files of these (queued) messages already on the server, their rows still to send."""
        return reads.uploaded_attachments(self._store.reader, message_ids)

    def attachment(self, attachment_id: str) -> dict[str, Any] | None:
        return reads.attachment(self._store.reader, attachment_id)

    def attachment_progress(self, message_id: str) -> tuple[int, int]:
        """How many of a message's files are on the server, of how many ("uploading 2 of 3")."""
        return reads.attachment_progress(self._store.reader, message_id)

    def cached_attachment_files(self) -> list[tuple[str, int, float, bool]]:
        return reads.cached_attachment_files(self._store.reader)

    async def set_attachment_file(self, attachment_id: str, local_path: Path | None, used: float) -> bool:
        """Where an attachment's bytes are on disk now (after a download), and when it was last opened; False when
        the cache has no such row (the server deleted it meanwhile: the caller deletes the file)."""
        return await self._store.awrite(
            lambda c: writes.set_attachment_file(
                c, attachment_id, str(local_path) if local_path is not None else None, used
            )
        )

    async def forget_attachment_files(self, attachment_ids: Sequence[str]) -> None:
        await self._store.awrite(lambda c: writes.forget_attachment_files(c, attachment_ids))

    def queue_ticket(self, ticket: Mapping[str, Any], first_message: Mapping[str, Any] | None) -> None:
        """A new ticket (and usually its first message), queued together."""

        def write(conn: sqlite3.Connection) -> None:
            writes.queue_ticket(conn, ticket)
            if first_message is not None:
                writes.queue_message(conn, first_message)

        self._store.write(write)

    def queue_ticket_update(self, ticket_id: str, changes: Mapping[str, Any]) -> None:
        try:
            self._store.write(lambda c: writes.queue_ticket_update(c, ticket_id, changes))
        except KeyError:
            raise ValueError(f"no such ticket in the cache: {ticket_id}") from None

    def queue_read(self, ticket_id: str, at: str | None = None) -> None:
        when = at or writes.now_ts()
        self._store.write(lambda c: writes.queue_read(c, ticket_id, self.me, when))

    def retry_message(self, message_id: str) -> bool:
        return self._store.write(lambda c: writes.retry_message(c, message_id))

    def discard_message(self, message_id: str) -> bool:
        return self._store.write(lambda c: writes.discard_message(c, message_id))

    def save_draft(self, ticket_id: str, text: str) -> None:
        self._store.write(lambda c: writes.save_draft(c, ticket_id, text))

    async def asave_draft(self, ticket_id: str, text: str) -> None:
        """The same, without blocking the event loop (the composer saves drafts this way)."""
        await self._store.awrite(lambda c: writes.save_draft(c, ticket_id, text))

    # --- edits and deletes (sync/cache/history.py) ----------------------------------------------------------

    def queue_edit(self, message_id: str, content: str) -> str | None:
        """The user's new text for their own message, shown at once; returns its ticket (None: unchanged)."""
        return self._store.write(lambda c: history.queue_edit(c, message_id, self.me, content, writes.now_ts()))

    def queue_delete(self, message_id: str) -> history.Dropped | None:
        """Delete a message that is on the server: a local tombstone at once (its text, revisions, queued edits
        and draft copies go in the same transaction); ``scrub`` then clears what SQLite kept of the bytes."""
        admin = self.role == "admin"
        dropped, files = self._store.write(
            lambda c: history.queue_delete(c, message_id, self.me, admin, writes.now_ts(), files_dir=self.files_dir)
        )
        for path in files:  # downloaded or queued copies of its files, their thumbnails and opened copies
            history.delete_path(path)
        return dropped

    def revisions(self, message_id: str) -> list[history.Revision]:
        """The earlier texts of an edited message, oldest first (staff only: a customer's cache has none)."""
        return history.revisions(self._store.reader, message_id)

    async def still_queued(self, entry: OutboxEntry) -> bool:
        """Whether an entry read for this push is still in the outbox (a lost edit takes the later ones along)."""
        return await self._store.aread(
            lambda c: (
                c.execute("select 1 from outbox where seq = ? and state = 'queued'", (entry.seq,)).fetchone()
                is not None
            )
        )

    async def settle(self, entry: OutboxEntry, server_row: Mapping[str, Any] | None) -> None:
        """An edit or delete the server has (or one with nothing left to do): the entry leaves the outbox and
        the server's row is applied, with any later queued edit still on top."""

        def write(conn: sqlite3.Connection) -> Applied:
            writes.drop(conn, entry)
            if server_row is None or not server_row.get("deleted_at"):  # the message lives: its files stay
                conn.execute("delete from outbox where kind = ? and entity_id = ?", (history.PURGE, entry.entity_id))
            rows = [dict(server_row)] if server_row is not None else []
            return self._apply(conn, "messages", rows, False, messages_synced=True)

        await self._after_drop(await self._store.awrite(write))

    async def lose_edit(self, entry: OutboxEntry, server_row: Mapping[str, Any] | None) -> str | None:
        """An edit the server did not take (a conflict or a refusal): it and the edits of the same message queued
        after it leave the outbox, the row shows the server's text again, and the user's newest text goes into
        the ticket's draft, so nothing typed is lost — unless the message was deleted meanwhile: then its text
        goes everywhere. Returns the text put into the draft."""

        def write(conn: sqlite3.Connection) -> tuple[Applied, str | None]:
            chain = history.later_edits(conn, entry)
            text = chain[-1][1] if chain else str(entry.payload["content"])
            conn.executemany("delete from outbox where seq = ?", [(seq,) for seq, _ in chain] or [(entry.seq,)])
            if server_row is None:
                conn.execute("update messages set content = ? where id = ?", (entry.payload["seen"], entry.entity_id))
                applied = Applied()
            else:
                applied = self._apply(conn, "messages", [dict(server_row)], False, messages_synced=True)
                if server_row.get("deleted_at"):
                    return applied, None
            history.restore_to_draft(conn, entry.ticket_id, text, writes.now_ts())
            return applied, text

        applied, text = await self._store.awrite(write)
        await self._after_drop(applied)
        return text

    async def scrub(self) -> None:
        """Make dropped text unrecoverable from the file: rewrite the search index without deleted entries, then
        checkpoint and truncate the WAL (which still holds earlier copies of the pages). A burst of requests (many
        tombstones arriving one realtime batch at a time) costs at most two rewrites: every request made before a
        rewrite started is covered by it."""

        self._scrubs_asked += 1
        asked = self._scrubs_asked
        async with self._scrub_lock:
            if self._scrubs_covered >= asked:
                return  # a rewrite that started after this request was made has done it
            covers = self._scrubs_asked
            await self._store.amaintain(self._settle_owed)  # also deletes the dropped files noted so far
            self._scrubs_covered = covers

    async def _after_drop(self, applied: Applied) -> Applied:
        for path in applied.dropped_files:
            history.delete_path(path)
        if applied.dropped:
            await self.scrub()
        return applied

    # --- the outbox, for the Pusher ---------------------------------------------------------------------

    async def queued(self, limit: int) -> list[OutboxEntry]:
        """The oldest queued entries, FIFO."""
        return await self._store.aread(lambda c: writes.queued_entries(c, limit))

    def queued_at_once(self, short: int) -> list[OutboxEntry] | None:
        """The queued entries read on this thread's reader connection (no hop to the writer thread), when there
        are some, at most ``short``, and no bulk transaction is held; None otherwise (read them with ``queued``)."""
        if self._store.holding_bulk:
            return None
        entries = writes.queued_entries(self._store.reader, short + 1)
        return entries if 0 < len(entries) <= short else None

    async def acknowledge(
        self, entries: Sequence[OutboxEntry], server_tickets: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        """The server has these entries: they leave the outbox and their rows become sent (with the server's
        ticket rows applied in the same transaction, for a ticket update)."""
        rows = list(server_tickets)

        def write(conn: sqlite3.Connection) -> None:
            writes.acknowledge(conn, entries)
            for entry in entries:
                if entry.kind == PREFERENCES_KIND:
                    settings.acknowledged(conn, entry.payload)
            workspace.acknowledge(conn, entries)
            if rows:
                self._apply_tickets(conn, rows)

        await self._store.awrite(write)

    async def fail(self, entry: OutboxEntry, reason: str) -> None:
        """Refused for good: the entry stays, failed, with the server's reason, shown with retry/discard."""
        await self._store.awrite(lambda c: writes.fail(c, entry, reason))

    async def fail_foreign(self, message_ids: Iterable[str]) -> dict[str, set[str]]:
        """These queued replies' ids are held by another message on the server (``writes.fail_foreign``): failed
        for good, with their queued entries; returns them by ticket."""
        ids = list(message_ids)
        return await self._store.awrite(lambda c: writes.fail_foreign(c, ids))

    async def drop(self, entry: OutboxEntry, ticket_error: str | None = None) -> None:
        """An entry with nothing left to retry; a refused ticket change marks its ticket with the reason."""

        def write(conn: sqlite3.Connection) -> None:
            writes.drop(conn, entry)
            if ticket_error is not None:
                writes.mark_ticket_error(conn, entry.entity_id, ticket_error)

        await self._store.awrite(write)

    async def apply_server_ticket(self, row: Mapping[str, Any]) -> None:
        await self._store.awrite(lambda c: self._apply_tickets(c, [row]))

    def counts(self) -> tuple[int, int]:
        """(queued, failed) outbox entries."""
        return writes.counts(self._store.reader)

    def outbox(self, limit: int = 1000) -> list[dict[str, Any]]:
        return reads.outbox(self._store.reader, limit)

    # --- server rows, for the Puller and the LiveApplier ---------------------------------------------

    async def cursor(self, table: str) -> tuple[int, int]:
        """Where the pull of ``table`` goes on (the staged messages' cursor while the initial sync stages them)."""
        return await self._store.aread(lambda c: staging.cursor(c, table) or writes.get_cursor(c, table))

    async def begin_staging(self) -> None:
        """The initial sync's messages go to the staging file until ``unstage`` (sync/cache/staging.py)."""
        self._store.grant_initial_sync_memory()  # its page caches on top of the steady budget (cache/memory.py)
        await self._store.amaintain(lambda c: staging.attach(c, self.path))

    async def unstage(self) -> Applied:
        """The initial sync's messages phase is over: the staged rows move into ``messages`` in one transaction
        (a crash before its commit leaves them staged; after it, the next attach finds them moved), then the
        staging file goes. One event names the tickets whose messages came in."""

        def write(conn: sqlite3.Connection) -> Applied:
            if not staging.attached(conn):
                return Applied()
            writes.set_meta(conn, writes.BULK, "1")  # the unread columns are recounted at the end (schema v12)
            moved = staging.move(conn, self.me, self.files_dir)
            self._ledger.record(conn, moved.set_aside)
            conn.execute("delete from meta where key = ?", (writes.BULK,))
            return Applied(tickets=moved.tickets, dropped=moved.dropped, dropped_files=moved.files)

        await self._store.aend_bulk()  # the move with the normal page cache: the process grows less
        applied = await self._store.awrite_interruptible(write)  # cancelled: still staged, moved by the next pull
        await self._store.amaintain(lambda c: staging.detach_and_delete(c, self.path))
        return await self._after_drop(applied)

    async def end_tickets_bulk(self) -> None:
        """The initial sync's tickets phase is over (or failed): the tickets' indexes a first sync set aside are
        built (sync/cache/bulk_indexes.py)."""
        await self._store.awrite(bulk_indexes.restore)

    def initial_sync_done(self) -> bool:
        return writes.get_meta(self._store.reader, _INITIAL_SYNC) is not None

    async def mark_initial_sync_done(self) -> None:
        await self._store.awrite(lambda c: writes.set_meta(c, _INITIAL_SYNC, writes.now_ts()))

    async def build_initial_indexes(self) -> None:
        """What the initial sync's pages left to its end, built once in one transaction: the search indexes its
        pages skipped and the tickets' unread state (schema v12). From its commit on, every later write keeps them
        (the live and backfill paths index and count as in the steady state), so the pull runs it while the server
        answers its last question (sync/pull.py) and ``finish_initial_sync(built=True)`` only marks the sync done.
        A crash after it leaves the mark to the next, still initial, pull, which builds them again."""

        await self.unstage()  # normally done at the end of the messages phase already
        await self._store.awrite_interruptible(_build_initial_indexes)  # a cancelled pull builds them next time

    async def finish_initial_sync(self, *, built: bool = False) -> None:
        """The initial sync pulled everything: build what its pages left (unless ``built``: this pull ran
        ``build_initial_indexes`` after its last initial page) and mark it done, in one transaction (a crash
        before the commit leaves it to the next, still initial, pull)."""

        def write(conn: sqlite3.Connection) -> None:
            if not built:
                _build_initial_indexes(conn)
            writes.set_meta(conn, _INITIAL_SYNC, writes.now_ts())

        await self.unstage()
        await self._store.awrite(write)
        await self._store.aend_bulk()
        self._store.release_initial_sync_memory()

    def sync_scope_days(self) -> int | None:
        """The partial sync's days (sync/scope.py), or None: everything is cached."""
        return writes.get_scope_days(self._store.reader)

    def set_sync_scope_days(self, days: int | None, scoped_tables: Iterable[str]) -> None:
        self._store.write(lambda c: writes.set_scope_days(c, days, scoped_tables))

    async def acount(self, table: str) -> int:
        """``count`` on the writer thread, off the event loop (a million rows take a moment)."""
        return await self._store.aread(
            lambda c: reads.count(c, _synced(table)) + (staging.count(c) if table == "messages" else 0)
        )

    def _apply(
        self, conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]], initial: bool, messages_synced: bool
    ) -> Applied:
        """Server rows of one table. A row the cache cannot take is set aside (logged, noted in the file for the
        status line: ``set_aside``) and the others applied: one bad row must not stop every later change from
        arriving, since the caller's cursor moves past the page either way. The page goes in whole first; only when
        that raises is it applied again row by row, each in its own savepoint (``set_aside.Ledger``)."""
        applied = Applied()
        for one in self._ledger.apply(
            conn, table, rows, lambda r: self._apply_rows(conn, table, r, initial, messages_synced)
        ):
            applied.merge(one)
        applied.rows = len(rows)
        return applied

    def _apply_tickets(self, conn: sqlite3.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Ticket rows the server answered a push or a lookup with, under the same rules as a pull's: one the cache
        cannot take is set aside and the write it came with (the outbox entry's acknowledgement) goes on; before,
        the whole write failed, and a pushed change was sent again at every round, its answer failing again."""
        self._ledger.apply(conn, "tickets", rows, lambda r: writes.apply_tickets(conn, r))

    @property
    def set_aside(self) -> list[SetAside]:
        """The newest rows this cache could not apply, oldest first, as committed (kept across restarts)."""
        return set_aside.listed(self._store.reader)

    def set_aside_note(self) -> str | None:
        """The status line's words for the rows set aside and not applied since (None: none)."""
        return set_aside.note(self.set_aside)

    def _apply_rows(
        self, conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]], initial: bool, messages_synced: bool
    ) -> Applied:
        applied = Applied(rows=len(rows))
        if table == "messages":
            self._apply_messages(conn, rows, initial, applied)
        elif table == "message_revisions":
            for ticket_id, ids in history.apply_revisions(conn, rows).items():
                applied.messages[ticket_id] = (ids, False)
        elif table == "tickets":
            with bulk_triggers.set_aside(conn, bulk_triggers.TICKETS) if initial else nullcontext():
                previous = writes.apply_tickets(conn, rows)  # the initial sync: finish_initial_sync redoes theirs
            applied.tickets = {str(r["id"]) for r in rows}
            applied.backfill = [
                str(r["id"]) for r in rows if needs_backfill(previous.get(str(r["id"])), r, messages_synced)
            ]
            # kept with the rows that revealed them: a backfill cut short is resumed by the next pull
            writes.add_backfills(conn, applied.backfill)
        elif table == "ticket_reads":
            with bulk_triggers.set_aside(conn, bulk_triggers.READS) if initial else nullcontext():
                applied.tickets = writes.apply_reads(conn, rows)  # the initial sync: recount_unread redoes theirs
        elif table == "profiles":
            writes.apply_profiles(conn, rows)
        elif table == "attachments":
            self._apply_attachments(conn, rows, applied)
        elif table in CURSOR_TABLES:
            applied.tickets = workspace.apply_rows(conn, table, rows)
            applied.workspace.add(table)
        else:
            raise ValueError(f"not a synced table: {table}")
        return applied

    def _apply_attachments(self, conn: sqlite3.Connection, rows: list[dict[str, Any]], applied: Applied) -> None:
        files = writes.apply_attachments(conn, rows)
        for ticket_id, ids in files.changed.items():
            applied.messages[ticket_id] = (ids, False)
        for attachment_id, local_path in files.stale:  # rows the server no longer has: what they left on disk
            applied.dropped_files += history.attachment_files(self.files_dir, attachment_id, local_path)

    def _apply_messages(
        self, conn: sqlite3.Connection, rows: list[dict[str, Any]], initial: bool, applied: Applied
    ) -> None:
        # one lookup of the ids for the guard and the apply (``fail_foreign`` changes only rows the apply leaves out)
        known = writes.known_messages(conn, rows)
        failed: dict[str, set[str]] = {}
        if known.foreign:  # first: their tombstones must not drop a local message's text
            failed = writes.fail_foreign(conn, known.foreign)
            rows = [r for r in rows if str(r["id"]) not in known.foreign]
        rows = history.overlay(conn, rows)  # queued edits/deletes stay on top (sync/cache/history.py)
        landed = history.landing_tombstones(conn, rows)
        with bulk_triggers.set_aside(conn, bulk_triggers.MESSAGES) if initial else nullcontext():
            applied.messages = writes.apply_message_rows(conn, rows, self.me, initial, known.sent)
        for ticket_id, ids in failed.items():  # the replies failed by the guard: their threads show it
            seen, new_from_others = applied.messages.get(ticket_id, (set(), False))
            applied.messages[ticket_id] = (seen | ids, new_from_others)
        history.drop_revisions_of_tombstones(conn, rows)
        applied.dropped_files += history.drop_text(conn, landed, self.me, writes.now_ts(), self.files_dir)
        applied.dropped += [d.message_id for d in landed]
        if landed:  # their mentions went with them (history.drop_text): the Mentions view and badge follow
            applied.workspace.add("mentions")

    async def apply_page(
        self, table: str, rows: list[Any], cursor: tuple[int, int], *, initial: bool, commit: bool = True
    ) -> Applied:
        """One pulled page and the cursor that passes it, in one transaction (a crash resumes after it). The
        initial sync's pages share a transaction held open until one says ``commit`` (or another write comes):
        a page and its cursor stay together either way. Rows are the server's dicts, or for the initial sync's
        messages ``MESSAGE_ROW`` arrays (``Remote.pull_message_rows``)."""

        def write(conn: sqlite3.Connection) -> Applied:
            if initial:  # per-row index and unread work is left to finish_initial_sync (schema v12)
                writes.set_meta(conn, writes.BULK, "1")
                if table == "tickets":  # a first sync's: built once at the phase's end (sync/cache/bulk_indexes.py)
                    bulk_indexes.set_aside(conn)
            if initial and table == "messages" and staging.attached(conn):  # staged (sync/cache/staging.py)
                # what goes into ``messages`` at once is chosen as shown (queued edits/deletes on top); the staged
                # rows are the server's own, since an edit or delete the server refuses before the move must not
                # come back with it (the move lays what is still queued over again)
                applied = self._stage(conn, rows, cursor)
            else:
                # ``MESSAGE_ROW`` arrays not staged go in as dicts
                dicts = rows if not rows or isinstance(rows[0], dict) else staging.as_dicts(rows)
                applied = self._apply(conn, table, dicts, initial, messages_synced=not initial)
                writes.set_cursor(conn, table, cursor)
            if initial:
                conn.execute("delete from meta where key = ?", (writes.BULK,))
            return applied

        if initial:
            return await self._after_drop(await self._store.abulk(write, commit=commit))
        return await self._after_drop(await self._store.awrite(write))

    def _stage(self, conn: sqlite3.Connection, rows: list[Any], cursor: tuple[int, int]) -> Applied:
        """An initial-sync page of messages staged (sync/cache/staging.py), what goes into ``messages`` at once
        with it. A row that can go into neither (a ``created_at`` PostgreSQL holds as 'infinity' comes as null
        from ``sync_message_rows``) is set aside as in ``_apply``, found by a trial of each row alone, and the page
        goes on without it."""

        def stage(page: list[Any]) -> Applied:
            now = self._at_once(conn, page)
            applied = self._apply_rows(conn, "messages", now, True, messages_synced=False)
            staging.stage(conn, page, cursor, {str(r["id"]) for r in now})
            return applied

        conn.execute("savepoint stage_page")
        try:
            applied = stage(rows)
        except set_aside.ROW_ERRORS:
            conn.execute("rollback to stage_page")
            conn.execute("release stage_page")
        else:
            conn.execute("release stage_page")
            self._ledger.applied(conn, "messages", rows)
            applied.rows = len(rows)
            return applied
        # the rows that go alone, into both (each tried as the only row of its page, then rolled back), together
        applied = stage(self._ledger.one_by_one(conn, "messages", rows, stage, keep=False))
        applied.rows = len(rows)
        return applied

    @staticmethod
    def _at_once(conn: sqlite3.Connection, rows: list[Any]) -> list[dict[str, Any]]:
        """Of an initial-sync page of messages (server dicts or ``MESSAGE_ROW`` arrays), what goes into
        ``messages`` at once (sync/cache/staging.py), chosen with the queued edits and deletes on top."""
        if rows and isinstance(rows[0], dict):
            return staging.at_once(history.overlay(conn, rows))
        queued = history.queued_ids(conn)
        if queued and any(r[0] in queued for r in rows):  # rare: laid over as dicts, as shown
            return staging.at_once(history.overlay(conn, staging.as_dicts(rows)))
        return staging.at_once_rows(rows)

    async def apply_live(self, rows_by_table: Mapping[str, list[dict[str, Any]]]) -> Applied:
        """Rows from realtime, all tables in one transaction, in pull order."""

        def write(conn: sqlite3.Connection) -> Applied:
            applied = Applied()
            for table in TABLES:
                if rows := rows_by_table.get(table):
                    applied.merge(self._apply(conn, table, rows, False, messages_synced=True))
            return applied

        return await self._after_drop(await self._store.awrite(write))

    async def drop_deleted_attachments(
        self, deleted: Sequence[tuple[str, str | None]], cursor: tuple[int, int] | None = None
    ) -> Applied:
        """Attachments the server deleted, as ids with their message (a page of its tombstones, with the ``cursor``
        past it; or a realtime DELETE, whose message is ``None``: the row the id names now): their rows and the files
        they left here go, the user's unsent ones stay (sync/cache/attachment_deletes.py). Their threads are
        announced as changed."""

        def write(conn: sqlite3.Connection) -> Applied:
            dropped = attachment_deletes.drop(conn, deleted, self.files_dir)
            if cursor is not None:
                writes.set_cursor(conn, attachment_deletes.DELETIONS, cursor)
            applied = Applied(rows=len(deleted), dropped_files=dropped.paths)
            applied.messages = {ticket_id: (ids, False) for ticket_id, ids in dropped.messages.items()}
            return applied

        return await self._after_drop(await self._store.awrite(write))

    async def apply_backfill(
        self,
        ticket_id: str,
        messages: list[dict[str, Any]],
        reads_: list[dict[str, Any]],
        attachments: Sequence[Mapping[str, Any]] = (),
        revisions: Sequence[Mapping[str, Any]] = (),
        *,
        decorations: Mapping[str, list[dict[str, Any]]] | None = None,
    ) -> Applied:
        """A newly visible ticket's whole thread, its attachments, revisions and read markers, and for staff its
        ``decorations`` (workspace rows of the ticket: tags, SLA); its backfill is then done."""

        def write(conn: sqlite3.Connection) -> Applied:
            # each table as a pull's page: a row the cache cannot take is set aside and the backfill is done all the
            # same (it is not asked again: the row comes back by its table's cursor when it changes on the server)
            applied = self._apply(conn, "messages", messages, False, messages_synced=True)
            self._apply(conn, "attachments", [dict(r) for r in attachments], False, messages_synced=True)
            self._apply(conn, "message_revisions", [dict(r) for r in revisions], False, messages_synced=True)
            for table, rows in (decorations or {}).items():
                applied.merge(self._apply(conn, table, rows, False, messages_synced=True))
            self._apply(conn, "ticket_reads", reads_, False, messages_synced=True)
            writes.backfill_done(conn, ticket_id)
            applied.rows += len(reads_)
            return applied

        return await self._after_drop(await self._store.awrite(write))

    async def ticket_ids(self) -> set[str]:
        return await self._store.aread(writes.local_ticket_ids)

    async def server_tickets_digest(self) -> TicketDigest:
        """The digest of the cached tickets the server has (all but those whose creation is still queued), to
        compare with the server's (``Puller._nothing_to_prune``)."""
        return await self._store.aread(lambda c: ticket_digest(writes.server_ticket_ids(c)))

    async def pending_backfills(self) -> set[str]:
        return await self._store.aread(writes.pending_backfills)

    async def prune(self, visible: set[str]) -> set[str]:
        """Drop tickets the server no longer shows this user, except those with local work; returns them."""

        def write(conn: sqlite3.Connection) -> set[str]:
            gone = stale_tickets(writes.local_ticket_ids(conn), visible, writes.tickets_with_local_work(conn))
            writes.remove_tickets(conn, gone)
            workspace.remove_tickets(conn, gone)
            history.remove_tickets(conn, gone)
            set_aside.forget(conn, gone)
            return gone

        return await self._store.awrite(write)

    # --- the UI's reads (synchronous, indexed, no network) ---------------------------------------------

    def inbox(
        self,
        view: TicketView = "mine",
        statuses: Iterable[str] | None = None,
        priorities: Iterable[str] | None = None,
        limit: int = 200,
    ) -> list[Ticket]:
        return reads.inbox(
            self._store.reader, self.me, self.role, view=view, statuses=statuses, priorities=priorities, limit=limit
        )

    def ticket(self, ticket_id: str) -> Ticket | None:
        return reads.ticket(self._store.reader, self.me, self.role, ticket_id)

    def has_ticket(self, ticket_id: str) -> bool:
        return writes.ticket_exists(self._store.reader, ticket_id)

    def thread(self, ticket_id: str, limit: int = 50, before: tuple[str, str] | None = None) -> list[Message]:
        return reads.thread(self._store.reader, ticket_id, limit, before)

    def message(self, message_id: str) -> Message | None:
        return reads.message(self._store.reader, message_id)

    def count_thread(self, ticket_id: str) -> int:
        return reads.count_thread(self._store.reader, ticket_id)

    def latest_message_from(self, ticket_id: str, sender_id: str) -> str | None:
        return reads.latest_message_from(self._store.reader, ticket_id, sender_id)

    def profiles(self) -> dict[str, Profile]:
        return reads.profiles(self._store.reader)

    def agents(self) -> list[Profile]:
        return reads.agents(self._store.reader)

    def customer_tickets(self, customer_id: str, limit: int = 50) -> list[Ticket]:
        """A customer's tickets here, newest activity first (the context panel, sync/cache/context.py)."""
        return context.customer_tickets(self._store.reader, self.me, self.role, customer_id, limit)

    def first_seen(self, customer_id: str) -> str | None:
        """When the server first knew the customer (profile created), offline too (sync/cache/context.py)."""
        return context.first_seen(self._store.reader, customer_id)

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        return reads.search(self._store.reader, query, limit)

    def read_marker(self, ticket_id: str, user_id: str) -> str | None:
        return reads.read_marker(self._store.reader, ticket_id, user_id)

    async def set_app_settings(self, row: Mapping[str, Any]) -> bool:
        """Keep the project's settings as last pulled; returns whether they changed."""
        return await self._store.awrite(lambda c: settings.set_json(c, settings.APP_SETTINGS, row))

    def app_settings(self) -> dict[str, Any]:
        """The project's settings as last pulled (``{}`` before the first pull)."""
        return settings.get_json(self._store.reader, settings.APP_SETTINGS)

    def customers_see_read_receipts(self) -> bool:
        """The project's switch (true unless the server said otherwise): may customers see staff read markers?"""
        return bool(self.app_settings().get("customers_see_read_receipts", True))

    def preferences(self) -> Preferences:
        """This user's notification preferences: the choice waiting in the outbox, else the server's row."""
        return settings.preferences(self._store.reader)

    def queue_preferences(self, choice: Preferences) -> None:
        self._store.write(lambda c: settings.queue_preferences(c, self.me, choice))

    async def apply_preferences(self, row: Mapping[str, Any] | None) -> None:
        """The server's row of this user's preferences, as pulled (None: the user has none yet)."""
        await self._store.awrite(lambda c: settings.set_json(c, settings.PREFERENCES, row or {}))

    def avatar_urls(self) -> dict[str, str]:
        return reads.avatar_urls(self._store.reader)

    def avatar_url(self, user_id: str) -> str | None:
        return reads.avatar_url(self._store.reader, user_id)

    def read_markers(self, ticket_id: str) -> dict[str, str]:
        """Who has read a ticket up to when (user id → last_read_at), as RLS let this user see them."""
        return reads.read_markers(self._store.reader, ticket_id)

    def draft(self, ticket_id: str) -> str:
        return reads.draft(self._store.reader, ticket_id)

    def data_version(self) -> int:
        """A number that changes whenever the cache's contents did: every write is the writer's (the reader is
        query-only), and SQLite changes the reader's ``data_version`` at each commit of another connection. Equal
        numbers: nothing was written in between (what the UI may reuse a read for, e.g. the sidebar's counts)."""
        return reads.data_version(self._store.reader)

    def count(self, table: str) -> int:
        """Rows cached in a synced table (for diagnosis and the benchmark), messages staged by the initial sync
        included (sync/cache/staging.py)."""
        staged = staging.count_file(self.path) if table == "messages" else 0
        return reads.count(self._store.reader, _synced(table)) + staged

    def keys(self, table: str) -> set[str]:
        """The keys of every cached row of a synced table (``ticket_id:user_id`` for read markers)."""
        return reads.keys(self._store.reader, _synced(table))


def _synced(table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"not a synced table: {table}")
    return table
