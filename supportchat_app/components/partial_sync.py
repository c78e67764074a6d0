"""Partial sync in the app (issue 15, sync/scope.py): the setting ("keep on this computer: everything, or
open/pending tickets plus the last N days"), and the search dialog's "search the server" for what a partial
cache does not hold. Opening a hit that is not cached fetches it first (``Workspace.open_ticket``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from supportchat_app import fmt
from sync import SyncEngine
from sync.models import SearchHit

CHOICES: dict[int, str] = {
    0: "Everything",
    7: "Open and pending + last 7 days",
    30: "Open and pending + last 30 days",
    90: "Open and pending + last 90 days",
    365: "Open and pending + last year",
}


class SyncScopeCard(ui.column):
    """How much of the desk this computer keeps; older tickets stay on the server, found by search."""

    def __init__(self, engine: SyncEngine) -> None:
        super().__init__()
        self.engine = engine
        current = engine.partial.days() or 0
        options = dict(CHOICES)
        options.setdefault(current, f"Open and pending + last {current} days")
        with self.classes("w-full gap-1"):
            ui.label("Keep on this computer").classes("text-lg font-medium")
            ui.select(options, value=current, on_change=lambda e: self._save(int(e.value))).props(
                'outlined dense data-testid="sync-scope"'
            ).mark("sync-scope").classes("w-full")
            ui.label(
                "Older closed tickets stay on the server: search finds them there and opening one downloads it."
            ).classes("text-xs opacity-60")

    def _save(self, days: int) -> None:
        self.engine.partial.set_days(days or None)
        ui.notify("Saved: syncing what this setting keeps")


class ServerSearch(ui.column):
    """Below the local hits: search the server too, when the cache is partial (or on demand)."""

    def __init__(self, search: Callable[[str], Awaitable[list[SearchHit]]], on_pick: Callable[[str], None]) -> None:
        super().__init__()
        self._search, self._on_pick = search, on_pick
        self.hits: list[SearchHit] = []
        self.classes("w-full gap-0")

    def show(self, query: str, known: set[tuple[str, str | None]]) -> None:
        self.clear()
        self.hits = []
        with self:
            ui.button(
                "Search older tickets on the server", icon="cloud", on_click=lambda: self._run(query, known)
            ).props('flat dense no-caps data-testid="search-server"').mark("search-server")

    async def _run(self, query: str, known: set[tuple[str, str | None]]) -> None:
        self.clear()
        with self:
            waiting = ui.label("Searching the server…").classes("text-sm opacity-60 p-2")
        try:
            hits = await self._search(query)
        except Exception as exc:  # offline, or the server refused: say so, keep the local hits
            waiting.set_text(f"The server search did not work: {exc}")
            return
        waiting.delete()
        self.hits = [h for h in hits if (h.ticket_id, h.message_id) not in known]
        with self:
            if not self.hits:
                ui.label("Nothing more on the server.").classes("text-sm opacity-60 p-2")
            for hit in self.hits:
                self._render(hit)

    def _render(self, hit: SearchHit) -> None:
        with (
            ui.item(on_click=lambda t=hit.ticket_id: self._on_pick(t))
            .classes("w-full rounded")
            .props('data-testid="search-hit" dense')
            .mark("search-hit")
        ):
            with ui.item_section().props("avatar"):
                ui.icon("cloud", size="20px").classes("opacity-70")
            with ui.item_section():
                ui.label(hit.subject or "Ticket").classes("text-sm font-medium")
                ui.label(hit.snippet).classes("text-xs opacity-70 ellipsis-2-lines")
            if hit.created_at:
                with ui.item_section().props("side"):
                    ui.label(fmt.ago(hit.created_at)).classes("text-xs opacity-60")
