"""Dialogs: Ctrl+K search over the local cache, the `?` shortcut sheet, and a customer's New ticket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Self

from nicegui import ui

from supportchat_app import fmt
from supportchat_app.components.partial_sync import ServerSearch
from supportchat_app.state import PRIORITIES
from sync.models import SearchHit

SHORTCUTS = [
    ("Ctrl+K", "Search tickets and messages"),
    ("Alt+↑ / Alt+↓", "Previous / next ticket"),
    ("↑ / ↓, Enter", "Move between inbox rows, open one"),
    ("X", "Select the inbox row (in Select mode)"),
    ("Enter", "Send (or save the message you are editing)"),
    ("Shift+Enter", "New line"),
    ("Ctrl+Enter", "Send and resolve (agents)"),
    ("/", "Canned replies (agents, in the composer)"),
    ("T", "Tag the open ticket (agents)"),
    ("?", "This list"),
    ("Esc", "Close a dialog, cancel an edit"),
]


class ShortcutSheet(ui.dialog):
    """The list of shortcuts; drawn the first time it opens (not on every page load)."""

    def __init__(self) -> None:
        super().__init__()
        self._drawn = False

    def open(self) -> Self:
        if not self._drawn:
            self._drawn = True
            with self, ui.card().classes("min-w-[360px]"):
                ui.label("Keyboard shortcuts").classes("text-lg font-medium")
                with ui.grid(columns=2).classes("gap-x-6 gap-y-2"):
                    for keys, what in SHORTCUTS:
                        ui.label(keys).classes("font-mono text-sm sc-kbd px-2 rounded")
                        ui.label(what).classes("text-sm")
                ui.button("Close", on_click=self.close).props('flat data-testid="close-shortcuts"').classes(
                    "self-end"
                ).mark("close-shortcuts")
        return super().open()


class SearchDialog(ui.dialog):
    """Type to search the local cache (works offline); Enter or click opens the ticket."""

    def __init__(
        self,
        search: Callable[[str], list[SearchHit]],
        on_open: Callable[[str], None],
        server_search: Callable[[str], Awaitable[list[SearchHit]]] | None = None,
    ) -> None:
        super().__init__()
        self._search, self._on_open = search, on_open
        self._server_search = server_search  # a partial cache: the server may know more (partial_sync.py)
        self.hits: list[SearchHit] = []
        with self, ui.card().classes("w-[640px] max-w-full"):
            self.input = (
                ui.input(placeholder="Search tickets and messages…", on_change=self._update)
                .props('autofocus outlined dense clearable data-testid="search-input"')
                .mark("search-input")
                .classes("w-full")
            )
            self.input.on("keydown.enter", self._open_first)
            self.results = ui.column().classes("w-full gap-0 max-h-[60vh] overflow-y-auto")
            self.server = ServerSearch(server_search, self._pick) if server_search is not None else None
        self.on("show", lambda: self.input.run_method("focus"))

    def _update(self) -> None:
        query = (self.input.value or "").strip()
        self.results.clear()
        self.hits = []
        if self.server is not None:
            self.server.clear()
        if len(query) < 2:
            return
        try:
            self.hits = self._search(query)
        except ValueError as exc:
            with self.results:
                ui.label(f"That search did not work: {exc}. Try plain words.").classes("text-negative text-sm")
            return
        with self.results:
            if not self.hits:
                ui.label("Nothing found in this device's copy of your tickets.").classes("text-sm opacity-60 p-2")
            for hit in self.hits:
                self._hit(hit)
        if self.server is not None:
            self.server.show(query, {(h.ticket_id, h.message_id) for h in self.hits})

    def _hit(self, hit: SearchHit) -> None:
        ticket_id = hit.ticket_id
        with (
            ui.item(on_click=lambda t=ticket_id: self._pick(t))
            .classes("w-full rounded")
            .props('data-testid="search-hit"')
            .mark("search-hit")
        ):
            with ui.item_section():
                ui.label(hit.subject or "Ticket").classes("text-sm font-medium")
                ui.label(str(hit.snippet)).classes("text-xs opacity-70 ellipsis-2-lines")
            if hit.created_at:
                with ui.item_section().props("side"):
                    ui.label(fmt.ago(hit.created_at)).classes("text-xs opacity-60")

    def _open_first(self) -> None:
        hits = self.hits or (self.server.hits if self.server is not None else [])
        if hits:
            self._pick(hits[0].ticket_id)

    def _pick(self, ticket_id: str) -> None:
        self.close()
        self._on_open(ticket_id)

    def open_empty(self) -> None:
        self.input.value = ""
        self.results.clear()
        self.open()


class NewTicketDialog(ui.dialog):
    def __init__(self, on_create: Callable[[str, str, str], bool]) -> None:
        super().__init__()
        self._on_create = on_create
        with self, ui.card().classes("w-[560px] max-w-full"):
            ui.label("New ticket").classes("text-lg font-medium")
            self.subject = (
                ui.input("Subject")
                .props('outlined dense data-testid="new-subject"')
                .mark("new-subject")
                .classes("w-full")
            )
            self.body = (
                ui.textarea("How can we help?")
                .props('outlined autogrow data-testid="new-body"')
                .mark("new-body")
                .classes("w-full")
            )
            self.priority = (
                ui.select({p: p.title() for p in PRIORITIES}, value="normal", label="Priority")
                .props("outlined dense")
                .classes("w-40")
            )
            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=self.close).props('flat data-testid="cancel-ticket"').mark("cancel-ticket")
                ui.button("Create ticket", on_click=self._create).props('unelevated data-testid="create-ticket"').mark(
                    "create-ticket"
                )

    def _create(self) -> None:
        if self._on_create(self.subject.value or "", self.body.value or "", self.priority.value or "normal"):
            self.subject.value = self.body.value = ""
            self.close()
