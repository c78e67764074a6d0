"""A saved view's menu in the inbox sidebar (issue 14): rename it, move it up or down, remove it. Each change
goes through the outbox like the view itself (``engine.workspace``: offline first, synced, private to the
agent); the sidebar follows the cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from nicegui import ui

from supportchat_app import fmt
from sync.workspace_rows import SavedView

if TYPE_CHECKING:
    from sync.engine import SyncEngine


class Bar(Protocol):
    """What the menu needs of the sidebar (components/views_bar.py)."""

    engine: SyncEngine
    dialog: ui.dialog

    def refresh(self) -> None: ...
    def delete_view(self, view: SavedView) -> None: ...


def marker_of(name: str) -> str:
    """A view's name as one marker: NiceGUI splits markers at whitespace, so runs of it become one "_" (other
    characters stay: a marker is compared as a whole). The data-testid attributes keep the name as it is."""
    return "_".join(name.split())


def testid(element: ui.element, value: str) -> ui.element:
    """Set ``data-testid`` as a prop value, never through a props string (a name with a quote or a space would
    break the string's parsing)."""
    element.props["data-testid"] = value
    return element


def view_menu(bar: Bar, view: SavedView, index: int, total: int) -> None:
    """The ⋮ button beside a view's entry and its menu."""
    key = marker_of(view.name)
    button = ui.button(icon="more_vert").props("flat round dense size=xs").mark(f"view-menu-{key}")
    with testid(button.classes("opacity-50"), f"view-menu-{view.name}"):
        with ui.menu().props("auto-close"):
            ui.menu_item("Rename…", on_click=lambda: rename_dialog(bar, view)).mark(f"rename-view-{key}")
            up = ui.menu_item("Move up", on_click=lambda: _move(bar, view, -1)).mark(f"move-up-{key}")
            up.set_enabled(index > 0)
            down = ui.menu_item("Move down", on_click=lambda: _move(bar, view, 1)).mark(f"move-down-{key}")
            down.set_enabled(index < total - 1)
            remove = ui.menu_item("Remove", on_click=lambda: bar.delete_view(view)).mark(f"delete-view-{key}")
            testid(remove, f"delete-view-{view.name}")


def _move(bar: Bar, view: SavedView, step: int) -> None:
    try:
        bar.engine.workspace.move_view(view.id, step)
    except ValueError as exc:
        ui.notify(fmt.plain_error(exc, "move the view"), type="negative")
    bar.refresh()


def rename_dialog(bar: Bar, view: SavedView) -> None:
    bar.dialog.clear()
    with bar.dialog, ui.card().classes("sc-panel w-[360px] gap-2"):
        ui.label("Rename view").classes("text-base font-medium")
        name = (
            ui.input("Name", value=view.name)
            .props('dense outlined autofocus data-testid="view-rename"')
            .mark("view-rename")
            .classes("w-full")
        )

        def save() -> None:
            try:
                bar.engine.workspace.rename_view(view.id, str(name.value or ""))
            except ValueError as exc:
                ui.notify(fmt.plain_error(exc, "rename the view"), type="negative")
                return
            bar.dialog.close()
            bar.refresh()

        name.on("keydown.enter", save)
        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=bar.dialog.close).props("flat no-caps")
            ui.button("Save", on_click=save).props('unelevated no-caps data-testid="view-rename-save"').mark(
                "view-rename-save"
            )
    bar.dialog.open()
