"""The command palette (issue 14, item 9): Ctrl+K for staff searches tickets *and* runs actions on the open
ticket — take / release, assign to… (admins), status, priority, snooze…, apply macro… —
all from the keyboard: type to filter, ↑/↓ to move, Enter to run, Esc to close.

Tickets come from the cache's full-text search (subjects and messages, offline); actions match when every
typed word is in their label or keywords (so "pri hi" finds "Priority: High"). ``palette_items`` is the
pure part; ``ticket_actions`` builds the actions of the open ticket from the engine's verbs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Literal

from nicegui import events, ui

from supportchat_app import fmt
from supportchat_app.canned import ticket_render
from supportchat_app.components.partial_sync import ServerSearch
from supportchat_app.state import PRIORITIES, STATUSES
from sync.macros import apply_macro
from sync.models import LocalUser, SearchHit

if TYPE_CHECKING:
    from sync.engine import SyncEngine

ItemKind = Literal["action", "ticket"]
MAX_ACTIONS = 8
MAX_TICKETS = 12


@dataclass(frozen=True)
class PaletteAction:
    label: str
    run: Callable[[], object]
    icon: str = "bolt"
    keywords: str = ""


@dataclass(frozen=True)
class PaletteItem:
    kind: ItemKind
    label: str
    detail: str
    icon: str
    action: PaletteAction | None = None
    ticket_id: str | None = None


def matches(query: str, text: str) -> bool:
    """Every word of the query is a part of the text (case-insensitive)."""
    haystack = text.lower()
    return all(word in haystack for word in query.lower().split())


def palette_items(query: str, actions: Sequence[PaletteAction], hits: Sequence[SearchHit]) -> list[PaletteItem]:
    """What the palette lists for a query: matching actions first, then tickets (one row per ticket)."""
    items = [
        PaletteItem("action", a.label, "", a.icon, action=a)
        for a in actions
        if matches(query, f"{a.label} {a.keywords}")
    ][:MAX_ACTIONS]
    seen: set[str] = set()
    for hit in hits:
        if hit.ticket_id in seen:
            continue
        seen.add(hit.ticket_id)
        items.append(PaletteItem("ticket", hit.subject or "Ticket", hit.snippet, "forum", ticket_id=hit.ticket_id))
        if len(seen) >= MAX_TICKETS:
            break
    return items


def ticket_actions(
    engine: SyncEngine, user: LocalUser, ticket_id: str | None, done: Callable[[str], object]
) -> list[PaletteAction]:
    """The actions on the open ticket, for staff; ``done`` is told what happened (for a toast)."""
    ticket = engine.cache.ticket(ticket_id) if ticket_id else None
    if ticket is None or not user.is_staff:
        return []
    act = _Actions(engine, ticket.id, done)
    if ticket.assignee_id != user.id:
        act.add("Take this ticket", "Taken", lambda: engine.commands.take(ticket.id), "pan_tool", "assign me")
    if ticket.assignee_id is not None:
        act.add("Unassign", "Unassigned", lambda: engine.commands.release(ticket.id), "person_off", "release")
    if user.role == "admin":  # agents take and release; only admins hand a ticket to someone else
        for agent in engine.cache.agents():
            if agent.id != ticket.assignee_id:
                act.change(f"Assign to {agent.display_name}", "person", "", assignee_id=agent.id)
    for status in (s for s in STATUSES if s != ticket.status):
        act.change(f"Status: {status.title()}", "flag", "change status mark", status=status)
    for priority in (p for p in PRIORITIES if p != ticket.priority):
        act.change(f"Priority: {priority.title()}", "priority_high", "change", priority=priority)
    _workspace_actions(act, engine, user, ticket.id)
    return act.actions


def _workspace_actions(act: _Actions, engine: SyncEngine, user: LocalUser, ticket_id: str) -> None:
    """Snooze… and Apply macro… (the agent workspace, sync/workspace.py)."""
    workspace = engine.workspace
    render = ticket_render(user.display_name, engine.cache.ticket)
    if workspace.snoozed_until(ticket_id) is not None:  # as the header's snooze menu offers it
        act.add("Unsnooze", "Unsnoozed", partial(workspace.unsnooze, ticket_id), "alarm_off", "wake snooze")
    for label, until in _snoozes(datetime.now().astimezone()):
        act.add(f"Snooze {label}", f"Snoozed {label}", partial(workspace.snooze, ticket_id, until), "snooze")
    for macro in workspace.macros():
        act.add(
            f"Apply macro: {macro.name}",
            f"Macro “{macro.name}” applied",
            partial(apply_macro, workspace, macro, [ticket_id], user.id, render),
            "auto_fix_high",
            "run",
        )


def _snoozes(now: datetime) -> list[tuple[str, datetime | None]]:
    """Snooze choices: an hour, tomorrow morning, next Monday morning, until the customer replies."""
    morning = (now + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    monday = (now + timedelta(days=7 - now.weekday())).replace(hour=9, minute=0, second=0, microsecond=0)
    return [
        ("for 1 hour", now + timedelta(hours=1)),
        ("until tomorrow 9:00", morning),
        ("until Monday 9:00", monday),
        ("until the customer replies", None),
    ]


@dataclass
class _Actions:
    engine: SyncEngine
    ticket_id: str
    done: Callable[[str], object]

    def __post_init__(self) -> None:
        self.actions: list[PaletteAction] = []

    def add(self, label: str, said: str, fn: Callable[[], object], icon: str, keywords: str = "") -> None:
        def go() -> None:
            try:
                fn()
            except ValueError as exc:
                self.done(fmt.plain_error(exc, "change the ticket"))
                return
            self.done(said)

        self.actions.append(PaletteAction(label, go, icon, keywords))

    def change(self, label: str, icon: str, keywords: str, **changes: str) -> None:
        self.add(label, label, lambda: self.engine.commands.update_ticket(self.ticket_id, **changes), icon, keywords)


class CommandPalette(ui.dialog):
    """Ctrl+K: search tickets and run actions, keyboard first."""

    def __init__(
        self,
        search: Callable[[str], list[SearchHit]],
        on_open: Callable[[str], None],
        actions: Callable[[], list[PaletteAction]],
        server_search: Callable[[str], Awaitable[list[SearchHit]]] | None = None,
    ) -> None:
        super().__init__()
        self._search, self._on_open, self._actions = search, on_open, actions
        self.current: list[PaletteAction] = []
        self.items: list[PaletteItem] = []
        self.active = 0
        with self, ui.card().classes("w-[640px] max-w-full gap-1").props('data-testid="palette"').mark("palette"):
            self.input = (
                ui.input(placeholder="Search tickets or type a command…", on_change=self._update)
                .props('autofocus outlined dense clearable data-testid="search-input"')
                .mark("search-input", "palette-input")
                .classes("w-full")
            )
            self.input.on("keydown", self._key, js_handler=_KEYS_JS)
            self.results = ui.column().classes("w-full gap-0 max-h-[60vh] overflow-y-auto")
            # a partial cache: the server may know older tickets (components/partial_sync.py)
            self.server = ServerSearch(server_search, self._pick) if server_search is not None else None
            ui.label("↑ ↓ move · Enter runs or opens · Esc closes").classes("text-xs opacity-50 px-1")
        self.on("show", lambda: self.input.run_method("focus"))

    def open_empty(self) -> None:
        self.current = self._actions()
        self.input.value = ""
        self._update()
        self.open()

    def _update(self) -> None:
        query = (self.input.value or "").strip()
        error = None
        hits: list[SearchHit] = []
        if len(query) >= 2:
            try:
                hits = self._search(query)
            except ValueError as exc:
                error = f"That search did not work: {exc}. Try plain words."
        self.items = palette_items(query, self.current, hits)
        self.active = 0
        self._draw(query, error)
        if self.server is not None:
            self.server.clear()
            if len(query) >= 2:
                self.server.show(query, {(h.ticket_id, h.message_id) for h in hits})

    def _draw(self, query: str, error: str | None = None) -> None:
        self.results.clear()
        with self.results:
            if error:
                ui.label(error).classes("text-negative text-sm")
            elif not self.items and len(query) >= 2:
                ui.label("Nothing found in this device's copy of your tickets.").classes("text-sm opacity-60 p-2")
            for index, item in enumerate(self.items):
                marker = "palette-action" if item.kind == "action" else "search-hit"
                with (
                    ui.item(on_click=lambda i=index: self._run(i))
                    .classes("w-full rounded" + (" sc-selected" if index == self.active else ""))
                    .props(f'data-testid="{marker}" dense')
                    .mark(marker, *(["palette-active"] if index == self.active else []))
                ):
                    with ui.item_section().props("avatar"):
                        ui.icon(item.icon, size="20px").classes("opacity-70")
                    with ui.item_section():
                        ui.label(item.label).classes("text-sm font-medium")
                        if item.detail:
                            ui.label(item.detail).classes("text-xs opacity-70 ellipsis-2-lines")
                    if item.kind == "action":
                        with ui.item_section().props("side"):
                            ui.label("action").classes("text-xs opacity-50")

    def _pick(self, ticket_id: str) -> None:
        self.close()
        self._on_open(ticket_id)

    def _key(self, e: events.GenericEventArguments) -> None:
        key = str(e.args)
        if key == "ArrowDown" and self.items:
            self.active = (self.active + 1) % len(self.items)
            self._draw((self.input.value or "").strip())
        elif key == "ArrowUp" and self.items:
            self.active = (self.active - 1) % len(self.items)
            self._draw((self.input.value or "").strip())
        elif key == "Enter":
            self._run(self.active)

    def _run(self, index: int) -> None:
        if not 0 <= index < len(self.items):
            return
        item = self.items[index]
        self.close()
        if item.action is not None:
            item.action.run()
        elif item.ticket_id is not None:
            self._on_open(item.ticket_id)


# only the keys the palette handles travel to the server; the caret keys stay out of the input, and so do the keys
# an input method takes while it composes (isComposing; WebKit's composition-ending Enter has only keyCode 229)
_KEYS_JS = """(e) => {
  if (!['ArrowDown', 'ArrowUp', 'Enter'].includes(e.key) || e.isComposing || e.keyCode === 229) return;
  e.preventDefault();
  emit(e.key);
}"""
