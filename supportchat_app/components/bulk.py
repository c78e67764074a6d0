"""Bulk actions in the inbox (issue 14, item 7): "Select" puts a checkbox on every row; with tickets selected,
a bar applies a status, an assignee, a tag or a macro to all of them at once — one local transaction
(sync/macros.py), so it works offline and reaches the server exactly once.

``BulkSelection`` is plain state (no ``ui``); ``BulkBar`` draws the bar and runs the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nicegui import ui

from supportchat_app import fmt
from supportchat_app.canned import ticket_render
from supportchat_app.state import PRIORITIES, STATUSES
from sync.macros import BulkChange, apply_bulk, apply_macro
from sync.models import LocalUser

if TYPE_CHECKING:
    from sync.engine import SyncEngine


def _noop() -> None:
    return None


@dataclass
class BulkSelection:
    """Whether rows are selectable, and which tickets are selected."""

    active: bool = False
    selected: set[str] = field(default_factory=set)
    on_change: Callable[[], None] = _noop

    def toggle_mode(self) -> None:
        self.active = not self.active
        self.selected.clear()
        self.on_change()

    def toggle(self, ticket_id: str) -> None:
        self.selected ^= {ticket_id}
        self.on_change()

    def select_all(self, ticket_ids: Iterable[str]) -> None:
        self.selected = set(ticket_ids)
        self.on_change()

    def clear(self) -> None:
        self.selected.clear()
        self.on_change()

    def snapshot(self) -> tuple[bool, frozenset[str]]:
        return self.active, frozenset(self.selected)


class BulkBar(ui.row):
    """The bar over the inbox list while selecting: how many, and what to apply to them."""

    def __init__(
        self, engine: SyncEngine, user: LocalUser, selection: BulkSelection, visible_ids: Callable[[], list[str]]
    ) -> None:
        super().__init__(wrap=True)
        self.engine, self.user, self.selection, self._visible = engine, user, selection, visible_ids
        self.classes("w-full items-center gap-2").props('data-testid="bulk-bar"').mark("bulk-bar")
        self.draw()

    def draw(self) -> None:
        self.clear()
        if not self.selection.active:
            self.set_visibility(False)
            return
        self.set_visibility(True)
        count = len(self.selection.selected)
        with self:
            ui.label(f"{count} selected").classes("text-xs font-medium").props('data-testid="bulk-count"').mark(
                "bulk-count"
            )
            ui.button("All", on_click=lambda: self.selection.select_all(self._visible())).props(
                'flat dense no-caps size=sm data-testid="bulk-all"'
            ).mark("bulk-all")
            if not count:
                return
            self._menu("Status", "bulk-status", {s: s.title() for s in STATUSES}, "status")
            self._menu("Priority", "bulk-priority", {p: p.title() for p in PRIORITIES}, "priority")
            assignees = {"me": "Me", "none": "Nobody"}
            if self.user.role == "admin":
                assignees |= {a.id: a.display_name for a in self.engine.cache.agents()}
            self._menu("Assign", "bulk-assignee", assignees, "assignee")
            tags = {t.id: t.name for t in self.engine.workspace.tags()}
            if tags:
                self._menu("Tag", "bulk-tag", tags, "add_tag")
            macros = {m.id: m.name for m in self.engine.workspace.macros()}
            if macros:
                self._menu("Macro", "bulk-macro", macros, "macro")

    def _menu(self, label: str, marker: str, options: dict[str, str], what: str) -> None:
        ui.select(options, label=label, on_change=lambda e: self._apply(what, e.value)).props(
            f'dense outlined options-dense data-testid="{marker}"'
        ).mark(marker).classes("min-w-[112px]")  # "Priority" and "Assign" whole

    def _apply(self, what: str, value: Any) -> None:
        if not value:
            return
        ids = sorted(self.selection.selected)
        try:
            if what == "macro":
                macro = next(m for m in self.engine.workspace.macros() if m.id == value)
                render = ticket_render(self.user.display_name, self.engine.cache.ticket)
                apply_macro(self.engine.workspace, macro, ids, self.user.id, render)
                done = f"Macro “{macro.name}” applied to {len(ids)} tickets"
            else:
                apply_bulk(self.engine.workspace, BulkChange(what, str(value)), ids, self.user.id)  # type: ignore[arg-type]
                done = f"Changed {len(ids)} tickets"
        except (ValueError, StopIteration) as exc:
            ui.notify(fmt.plain_error(exc, "change the tickets"), type="negative")
            return
        ui.notify(done, type="positive")
        self.selection.clear()
