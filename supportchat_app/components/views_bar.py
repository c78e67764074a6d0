"""The inbox sidebar's lists (issue 14): Inbox, Snoozed, Breaching soon and the agent's saved views, each
with how many of its tickets have unread messages; a tag filter; "Save view" keeps the current filters and
order as a named view (synced, private to the agent, usable offline). Counts come from the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from nicegui import events, ui

from supportchat_app import fmt
from supportchat_app.state import InboxState
from sync.workspace_rows import InboxFilter, SavedView

if TYPE_CHECKING:
    from sync.engine import SyncEngine

COUNT_EVERY = 1.0  # seconds: how often the sidebar's counts may follow a changed cache


class ViewsBar(ui.column):
    def __init__(self, engine: SyncEngine, state: InboxState, *, on_mentions: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.engine, self.state = engine, state
        self.on_mentions = on_mentions  # the Mentions view (components/mentions.py), an entry under the lists
        self.classes("w-full gap-0").props('data-testid="views-bar"').mark("views-bar")
        self._drawn: object = None
        with self:
            self.lists = ui.column().classes("w-full gap-0")
            with ui.row(wrap=False).classes("w-full items-center gap-1 no-wrap pt-1"):
                self.tag_filter = (
                    ui.select({}, multiple=True, with_input=True, label="Tags", on_change=self._tags_changed)
                    .props('dense outlined options-dense use-chips data-testid="tag-filter"')
                    .mark("tag-filter")
                    .classes("grow")
                )
                ui.button(icon="bookmark_add", on_click=self._save_dialog).props(
                    'flat round dense data-testid="save-view"'
                ).mark("save-view").tooltip("Save these filters as a view")
        self.dialog = ui.dialog()
        self.counts: dict[str, int] = {}
        self.stale = True  # the counts need a recount (the cache changed)
        self.refresh()
        # counting every list over the whole cache costs tens of ms each on a big desk: the counts follow the
        # data at most once a second, off the path of a click that switches the list
        ui.timer(COUNT_EVERY, self._recount)

    def _tags_changed(self, e: events.ValueChangeEventArguments[list[str] | None]) -> None:
        chosen = set(e.value or [])
        if chosen != self.state.tags:
            self.state.set_tags(chosen)

    def _entry(
        self, key: str, label: str, icon: str, count: int, *, active: bool, on_click: Callable[[], None]
    ) -> None:
        with (
            ui.item(on_click=lambda: self._run(on_click))
            .classes("rounded-lg w-full min-h-[30px] py-0" + (" sc-selected" if active else ""))
            .props(f'dense data-testid="view-{key}"')
            .mark("view-entry", f"view-{key}")
        ):
            with ui.item_section().props("avatar").classes("min-w-[28px]"):
                ui.icon(icon, size="18px").classes("opacity-70")
            with ui.item_section():
                ui.label(label).classes("text-sm ellipsis")
            with ui.item_section().props("side"):
                if count:
                    ui.badge(str(count), color="primary").props("rounded").mark(f"count-{key}")

    def refresh(self) -> None:
        ws = self.engine.workspace
        tags = {t.id: t.name for t in ws.tags()}
        if self.tag_filter.options != tags:
            self.tag_filter.set_options(tags, value=[t for t in self.state.tags if t in tags])
        elif set(self.tag_filter.value or []) != self.state.tags:
            self.tag_filter.value = sorted(self.state.tags)
        views = ws.saved_views()
        if self.stale or any(v.id not in self.counts for v in views):
            self._count(views)
        counts = self.counts
        drawn = (tuple(views), tuple(sorted(counts.items())), self.state.special, self.state.saved_view)
        if drawn == self._drawn:
            return
        self._drawn = drawn
        self.lists.clear()
        with self.lists:
            none = self.state.special is None and self.state.saved_view is None
            self._entry("inbox", "Inbox", "inbox", counts["inbox"], active=none, on_click=lambda: self._special(None))
            self._entry(
                "snoozed",
                "Snoozed",
                "snooze",
                counts["snoozed"],
                active=self.state.special == "snoozed" and self.state.saved_view is None,
                on_click=lambda: self._special("snoozed"),
            )
            self._entry(
                "breaching",
                "Breaching soon",
                "alarm",
                counts["breaching"],
                active=self.state.special == "breaching" and self.state.saved_view is None,
                on_click=lambda: self._special("breaching"),
            )
            if self.on_mentions is not None:
                self._entry(
                    "mentions",
                    "Mentions",
                    "alternate_email",
                    counts["mentions"],
                    active=False,
                    on_click=self.on_mentions,
                )
            for view in views:
                self._view_entry(view, counts[view.id])

    def _count(self, views: list[SavedView]) -> None:
        ws = self.engine.workspace
        base = InboxFilter(view=self.state.view, statuses=("open", "pending"))
        self.counts = {
            "inbox": ws.count_unread(base),
            "snoozed": ws.count(InboxFilter(view=self.state.view, statuses=("pending",), snoozed=True)),
            "breaching": ws.count(InboxFilter(view=self.state.view, statuses=("open", "pending"), breaching_within=60)),
            "mentions": len(ws.mentions(unseen_only=True)) if self.on_mentions else 0,
            **{v.id: ws.count_unread(InboxFilter.from_json(v.filters, v.sort)) for v in views},
        }
        self.stale = False

    def _recount(self) -> None:
        if self.stale:
            self.refresh()

    def _view_entry(self, view: SavedView, count: int) -> None:
        with ui.row(wrap=False).classes("w-full items-center no-wrap gap-0 sc-view-row"):
            with ui.element("div").classes("grow min-w-0"):
                self._entry(
                    view.name,
                    view.name,
                    "bookmark",
                    count,
                    active=self.state.saved_view == view.id,
                    on_click=partial(self.state.apply_view, view),
                )
            ui.button(icon="close", on_click=lambda v=view: self._delete(v)).props(
                f'flat round dense size=xs data-testid="delete-view-{view.name}"'
            ).mark(f"delete-view-{view.name}").classes("opacity-50")

    def _run(self, action: Callable[[], None]) -> None:
        # the action redraws this list, clicked item included: run it in the bar's own (surviving) context
        with self:
            action()

    def _special(self, special: str | None) -> None:
        self.state.set_special(special)

    def _delete(self, view: SavedView) -> None:
        try:
            self.engine.workspace.delete_view(view.id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "remove the view"), type="negative")
        if self.state.saved_view == view.id:
            self.state.saved_view = None
        self.refresh()

    def _save_dialog(self) -> None:
        self.dialog.clear()
        with self.dialog, ui.card().classes("sc-panel w-[360px] gap-2"):
            ui.label("Save this view").classes("text-base font-medium")
            ui.label("The current list, tags, status and priority filters and order, under a name.").classes(
                "text-xs opacity-70"
            )
            name = ui.input("Name").props('dense outlined autofocus data-testid="view-name"').mark("view-name")

            def save() -> None:
                try:
                    view_id = self.engine.workspace.save_view(
                        str(name.value or ""), self.state.to_filter(), position=len(self.engine.workspace.saved_views())
                    )
                except ValueError as exc:
                    ui.notify(fmt.plain_error(exc, "save the view"), type="negative")
                    return
                self.dialog.close()
                self.state.saved_view = view_id
                self.refresh()

            name.on("keydown.enter", save)
            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=self.dialog.close).props("flat no-caps")
                ui.button("Save", on_click=save).props('unelevated no-caps data-testid="view-save"').mark("view-save")
        self.dialog.open()
