"""The engine's realtime half: applying postgres_changes to the cache, presence and typing.

Changes arrive on the realtime client's task; they are queued and applied by one consumer task in
small batches (one SQLite transaction per batch, in arrival order) so a burst never turns into a
transaction per row and the socket reader is never blocked on disk. Each (re)subscription wakes the
engine loop for a catch-up pull: realtime is a hint, the pull is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from sync import events, local
from sync.live import cancel_for_sure
from sync.pull import Puller, apply_rows, tickets_to_backfill

if TYPE_CHECKING:
    from sync.engine import SyncEngine

log = logging.getLogger(__name__)

TYPING_EVERY = 2.0  # seconds between two "typing" broadcasts of one ticket while the user keeps typing


class LiveMixin:
    """Mixed into SyncEngine; kept apart so each file stays one idea."""

    _live_queue: asyncio.Queue[tuple[str, str, dict[str, Any]]] | None = None
    _live_task: asyncio.Task[None] | None = None
    live_applied: int = 0  # rows applied from realtime (for tests and the benchmark)
    _typing_sent: dict[str, float]  # ticket id -> when we last said we are typing there

    async def _start_live(self: SyncEngine) -> None:  # type: ignore[misc]
        self._live_queue = asyncio.Queue()
        self._live_task = asyncio.create_task(self._live_consumer(), name="sync-live-apply")
        await self.remote.start_live(self._on_change, self._on_live_state)

    async def _stop_live(self: SyncEngine) -> None:  # type: ignore[misc]
        await self.remote.stop_live()
        task, self._live_task = self._live_task, None
        await cancel_for_sure(task)

    def _on_live_state(self: SyncEngine, state: str) -> None:  # type: ignore[misc]
        if state == "SUBSCRIBED":
            self.wake(pull=True)  # catch up on whatever happened while the socket was down

    def _on_change(self: SyncEngine, table: str, kind: str, record: dict[str, Any]) -> None:  # type: ignore[misc]
        # DELETE carries only the primary key under RLS; visibility checks in the pull handle removals
        if self._live_queue is not None and kind in ("INSERT", "UPDATE") and record:
            self._live_queue.put_nowait((table, kind, record))

    async def _live_consumer(self: SyncEngine) -> None:  # type: ignore[misc]
        assert self._live_queue is not None
        queue = self._live_queue
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < 500:
                batch.append(queue.get_nowait())
            try:
                await self._apply_live(batch)
            except Exception:
                # the pull will bring these rows anyway; never let a bad frame stop live updates
                log.exception("applying %d realtime changes failed", len(batch))
                self.wake(pull=True)

    async def _apply_live(self: SyncEngine, batch: list[tuple[str, str, dict[str, Any]]]) -> None:  # type: ignore[misc]
        store, user = self._store, self.user
        if store is None or user is None:
            return
        by_table: dict[str, list[dict[str, Any]]] = {}
        for table, _, record in batch:
            by_table.setdefault(table, []).append(record)
        me = user.id

        def write(conn: sqlite3.Connection) -> tuple[dict[str, Any], list[str]]:
            out = {table: apply_rows(conn, table, rows, me, False)
                   for table in ("profiles", "tickets", "messages", "ticket_reads")
                   if (rows := by_table.get(table))}
            backfill = tickets_to_backfill(by_table["tickets"], out["tickets"][0], True) if "tickets" in out else []
            local.add_backfills(conn, backfill)  # so the next pull does it if the backfill below fails
            return out, backfill

        out, backfill = await store.awrite(write)
        self.live_applied += len(batch)
        if "tickets" in out:
            _, ids = out["tickets"]
            self._emit(events.TicketsChanged(frozenset(ids)))
        for ticket_id, (ids, from_others) in (out.get("messages") or {}).items():
            self._emit(events.MessagesChanged(ticket_id, frozenset(ids), from_others))
        if "ticket_reads" in out:
            self._emit(events.TicketsChanged(frozenset(out["ticket_reads"])))
        for ticket_id in backfill:
            try:
                await Puller(store, self.remote, self._emit, me).backfill(ticket_id)
            except Exception as exc:
                log.info("backfill of %s deferred to the next pull: %s", ticket_id, exc)
                self.wake(pull=True)

    # --- presence and typing ---------------------------------------------------------------------

    def _me(self: SyncEngine) -> dict[str, Any]:  # type: ignore[misc]
        user = self.user
        assert user is not None
        return {"user_id": user.id, "name": user.display_name, "role": user.role}

    async def watch_ticket(self: SyncEngine, ticket_id: str) -> None:  # type: ignore[misc]
        """Join this ticket's presence (others see you viewing it) and hear typing."""
        me = self._me()

        def on_presence(metas: list[dict[str, Any]]) -> None:
            names = tuple(sorted({str(m.get("name") or "") for m in metas if m.get("user_id") != me["user_id"]}))
            self._presence[ticket_id] = names
            self._emit(events.PresenceChanged(ticket_id, names))

        def on_typing(payload: dict[str, Any]) -> None:
            if payload.get("user_id") and payload.get("user_id") != me["user_id"]:
                self._emit(events.Typing(ticket_id, str(payload["user_id"]), str(payload.get("name") or "")))

        await self.remote.watch(ticket_id, me, on_presence, on_typing)

    async def unwatch_ticket(self: SyncEngine, ticket_id: str) -> None:  # type: ignore[misc]
        self._presence.pop(ticket_id, None)
        await self.stop_typing(ticket_id)
        await self.remote.unwatch(ticket_id)

    async def send_typing(self: SyncEngine, ticket_id: str) -> None:  # type: ignore[misc]
        """Tell the others viewing this ticket that you are typing; call it on every keystroke: one
        broadcast per ticket every ``TYPING_EVERY`` seconds is plenty for an indicator (the one throttle)."""
        now = time.monotonic()
        if now - self._typing_sent.get(ticket_id, -TYPING_EVERY) < TYPING_EVERY:
            return
        self._typing_sent[ticket_id] = now
        with contextlib.suppress(Exception):  # typing hints are best-effort by nature
            await self.remote.typing(ticket_id, self._me())

    async def stop_typing(self: SyncEngine, ticket_id: str) -> None:  # type: ignore[misc]
        """You stopped typing (sent, left the composer, or paused): no more "typing" signals, and the
        next keystroke says so at once. The others' indicator ends when your message arrives, or a few
        seconds after your last signal (ticket signals are minted by the database, which has no "stopped")."""
        self._typing_sent.pop(ticket_id, None)
