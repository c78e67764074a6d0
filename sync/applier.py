"""``LiveApplier``: realtime ``postgres_changes`` applied to the cache as they arrive.

Changes arrive on the realtime client's task; they are queued and applied by one consumer task in
small batches (one SQLite transaction per batch, in arrival order) so a burst never turns into a
transaction per row and the socket reader is never blocked on disk. Each (re)subscription asks the
engine for a catch-up pull: realtime is a hint, the pull is the truth. A channel that breaks, or a burst whose tail
the server may have dropped (Supabase drops changes silently over the project's quota), asks for one at once
(``CatchUp``, sync/catchup.py), so nothing waits for the periodic pull. Tickets that became visible
get their thread backfilled by the Puller (noted in the cache first, so the next pull resumes a
backfill that failed here). A profile that changed live also downloads the pictures the profiles now name
(``on_profiles``, the engine's avatar refresh), so a new avatar shows on other devices at once, not at the next
pull; one refresh runs at a time, and changes that arrive during it ask for one more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sync import events, hops
from sync.cache import Cache
from sync.catchup import CatchUp
from sync.live import ReachHandler, cancel_for_sure
from sync.models import LiveState
from sync.pull import Puller
from sync.remote import ChangeKind, Remote
from sync.workspace_rows import SNAPSHOT_TABLES

# tables whose rows the server really deletes (no tombstone): a realtime DELETE removes them from the cache
DELETED_ROWS_TABLES = frozenset({*SNAPSHOT_TABLES, "ticket_sla"})

log = logging.getLogger(__name__)

MAX_BATCH = 500

Change = tuple[str, ChangeKind, dict[str, Any]]


class LiveApplier:
    """Owns the realtime subscription's consumer; ``want_pull`` asks the engine loop for a pull."""

    def __init__(
        self,
        cache: Cache,
        remote: Remote,
        puller: Puller,
        emit: Callable[[events.Event], None],
        want_pull: Callable[[], None],
        *,
        on_profiles: Callable[[], Awaitable[None]] | None = None,
        on_live: Callable[[LiveState], None] | None = None,
        on_reach: ReachHandler | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache, self.remote, self.puller = cache, remote, puller
        self.emit, self.want_pull, self.on_profiles = emit, want_pull, on_profiles
        self.on_reach = on_reach  # the realtime probe: the server stopped answering, or answers again
        self.catch_up = CatchUp(want_pull, on_live or (lambda _state: None), clock)
        self._profiles_task: asyncio.Task[None] | None = None
        self._profiles_again = False
        self.applied = 0  # rows applied from realtime (for tests and the benchmark)
        self.subscribed = False  # the channel is joined: every change that commits from now on comes here
        self._queue: asyncio.Queue[Change] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._consume(), name="sync-live-apply")
        self.catch_up.open()
        await self.remote.live.start(self._on_change, self._on_state, self.on_reach)

    async def stop(self) -> None:
        self.subscribed = False
        self.catch_up.close()  # first: the channel's CLOSED on the way out is no break
        await self.remote.live.stop()
        task, self._task = self._task, None
        await cancel_for_sure(task)
        profiles, self._profiles_task = self._profiles_task, None
        await cancel_for_sure(profiles)

    def _on_state(self, state: str) -> None:
        self.subscribed = state == "SUBSCRIBED"
        if state == "SUBSCRIBED":
            self.want_pull()  # catch up on whatever happened while the socket was down
        self.catch_up.state(state)

    def _on_change(self, table: str, kind: ChangeKind, record: dict[str, Any]) -> None:
        # DELETE carries only the primary key under RLS (and is not RLS-checked, so customers hear them too):
        # used by staff for the SLA tables, whose rows are really deleted, and by every role for attachments (an id
        # the cache does not hold changes nothing; the pull's tombstones bring the same to a client that was
        # offline); elsewhere visibility checks in the pull handle removals
        self.catch_up.change(str(record.get("id")) if table == "messages" and record else None)
        staff = self.cache.role in ("agent", "admin")
        deleted = table == "attachments" or (staff and table in DELETED_ROWS_TABLES)
        if record and (kind in ("INSERT", "UPDATE") or deleted):
            self._queue.put_nowait((table, kind, record))

    async def _consume(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < MAX_BATCH:
                batch.append(queue.get_nowait())
            try:
                await self.apply(batch)
            except Exception:
                # the pull will bring these rows anyway; never let a bad frame stop live updates
                log.exception("applying %d realtime changes failed", len(batch))
                self.want_pull()

    async def apply(self, batch: list[Change]) -> None:
        by_table: dict[str, list[dict[str, Any]]] = {}
        for table, kind, record in batch:
            if table in SNAPSHOT_TABLES:  # settings without a cursor: the next pull reads them whole
                self.puller.snapshots_due = True
                self.want_pull()
            if kind == "DELETE":  # gone from the cache at once (unless changed locally), in order
                await self._flush(by_table)
                await self._delete(table, record)
            elif table not in SNAPSHOT_TABLES:
                by_table.setdefault(table, []).append(record)
        await self._flush(by_table)
        self.applied += len(batch)

    async def _delete(self, table: str, key: dict[str, Any]) -> None:
        if table == "attachments":  # its row and its file (sync/cache/attachment_deletes.py)
            for event in (await self.cache.drop_deleted_attachments([(str(key.get("id")), None)])).events():
                self.emit(event)
            return
        tickets = await self.cache.workspace.apply_deletes(table, [key])
        self.emit(events.WorkspaceChanged(frozenset({table})))
        if tickets:
            self.emit(events.TicketsChanged(frozenset(tickets)))

    async def _flush(self, by_table: dict[str, list[dict[str, Any]]]) -> None:
        if not by_table:
            return
        profiles = "profiles" in by_table
        applied = await self.cache.apply_live(by_table)
        if hops.enabled():
            for record in by_table.get("messages", ()):
                hops.mark("cached", str(record.get("id")))
        by_table.clear()
        for event in applied.events():
            self.emit(event)
        if profiles:
            self._profiles_changed()
            if self.cache.own_role() not in (None, self.cache.role):  # an admin changed this user's role
                self.want_pull()  # the round after it rebuilds the cache for the new role (engine._follow_role)
        for ticket_id in applied.backfill:
            try:
                await self.puller.backfill(ticket_id, self.emit)
            except Exception as exc:
                log.info("backfill of %s deferred to the next pull: %s", ticket_id, exc)
                self.want_pull()

    def _profiles_changed(self) -> None:
        if self.on_profiles is None:
            return
        self._profiles_again = True
        if self._profiles_task is None or self._profiles_task.done():
            self._profiles_task = asyncio.create_task(self._follow_profiles(), name="sync-live-avatars")

    async def _follow_profiles(self) -> None:
        assert self.on_profiles is not None
        while self._profiles_again:
            self._profiles_again = False
            try:
                await self.on_profiles()
            except Exception as exc:  # pictures are a nicety: the next pull's refresh tries again
                log.info("avatar refresh after a live profile change failed: %s", exc)
