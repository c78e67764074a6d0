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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sync import events
from sync.cache import Cache
from sync.cache.db import TABLES as ORDER
from sync.models import STAFF_ROLES
from sync.remote import Remote
from sync.workspace_rows import CURSOR_TABLES, SNAPSHOT_TABLES

log = logging.getLogger(__name__)


@dataclass
class PullResult:
    rows: int = 0
    backfilled: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)


class Puller:
    def __init__(self, cache: Cache, remote: Remote) -> None:
        self.cache = cache
        self.remote = remote
        self.emit: Callable[[events.Event], None] = lambda _: None  # the running pull's (one at a time)
        # the SLA settings tables have no cursor: read whole on the first pull and after realtime said so
        self.snapshots_due = True

    async def pull(self, emit: Callable[[events.Event], None], *, check_visibility: bool = True) -> PullResult:
        """Every table by cursor, then backfills and pruning; ``emit`` gets the change and progress events."""
        self.emit = emit
        result = PullResult()
        initial = await self.cache.cursor("messages") == (0, 0)
        backfill: set[str] = set()
        staff = self.cache.role in STAFF_ROLES
        for table in ORDER:
            if table in CURSOR_TABLES and not staff:  # the workspace is staff business (RLS shows nothing)
                continue
            await self._pull_table(table, result, initial, backfill)
        await self._settings()
        if staff and self.snapshots_due:
            await self._pull_snapshots(result)
        backfill |= await self.cache.pending_backfills()  # incl. those an earlier pull could not finish
        for ticket_id in sorted(backfill):
            await self.backfill(ticket_id, emit, result)
        if check_visibility:
            await self._prune(result)
        return result

    async def _pull_table(self, table: str, result: PullResult, initial: bool, backfill: set[str]) -> None:
        cursor = await self.cache.cursor(table)
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

    async def _settings(self) -> None:
        """The project's settings and this user's notification preferences (single rows, no cursor); a change
        of the settings re-derives what depends on them (receipts)."""
        settings = await self.remote.app_settings()
        if settings is not None and await self.cache.set_app_settings(settings):
            self.emit(events.TicketsChanged(frozenset(await self.cache.ticket_ids())))
        await self.cache.apply_preferences(await self.remote.notification_preferences())

    async def _pull_snapshots(self, result: PullResult) -> None:
        for table in SNAPSHOT_TABLES:
            rows = await self.remote.select_where(table, {})
            await self.cache.workspace.apply_snapshot(table, rows)
            result.rows += len(rows)
        self.snapshots_due = False
        self.emit(events.WorkspaceChanged(frozenset(SNAPSHOT_TABLES)))

    async def _apply(
        self, table: str, rows: list[dict[str, Any]], cursor: tuple[int, int], initial: bool, backfill: set[str]
    ) -> None:
        applied = await self.cache.apply_page(table, rows, cursor, initial=initial)
        backfill.update(applied.backfill)
        for event in applied.events():
            self.emit(event)

    async def backfill(
        self, ticket_id: str, emit: Callable[[events.Event], None], result: PullResult | None = None
    ) -> None:
        """Fetch a ticket's whole thread and read markers by ticket id (it became visible)."""
        messages = await self.remote.rows_of_ticket("messages", ticket_id)
        files = await self.remote.rows_of_ticket("attachments", ticket_id)
        reads = await self.remote.rows_of_ticket("ticket_reads", ticket_id)
        applied = await self.cache.apply_backfill(ticket_id, messages, reads, files)
        for event in applied.events():
            emit(event)
        if result is not None:
            result.backfilled.add(ticket_id)
            result.rows += applied.rows

    async def _prune(self, result: PullResult) -> None:
        visible = await self.remote.visible_ticket_ids()
        gone = await self.cache.prune(visible)
        if gone:
            result.removed |= gone
            self.emit(events.TicketsRemoved(frozenset(gone)))
            self.emit(events.TicketsChanged(frozenset(gone)))
