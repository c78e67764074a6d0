"""The inbox sidebar's lists (issue 14): Inbox, Snoozed, Breaching soon and the agent's saved views, each
with how many of its tickets have unread messages; a tag filter; "Save view" keeps the current filters and
order as a named view (synced, private to the agent, usable offline); each view's menu renames, moves or
removes it (components/view_menu.py). Counts come from the cache, never on a click's path: a new page's first
counts while it is built (its badges are in the page's first HTML), later ones on a timer, one query at a time
behind any page load in flight (foreground.py).

Counts taken are kept per cache with the cache's data version and reused while nothing was written since and
they are younger than ``kept.FRESH_S`` (supportchat_app/kept.py): a page built after another (a reload; bench
``inbox_5k`` loads the next page right after the last one mounted) shows the counts that page took, and neither its
build nor its socket's connect counts anything. Before, every page counted every list at connect (the breaching-soon
count 7-12 ms on the bench's desk on a quiet machine), on the one event loop, when the next page's request was often
arriving.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from nicegui import events, ui

from supportchat_app import fmt, foreground
from supportchat_app.components.view_menu import marker_of, testid, view_menu
from supportchat_app.kept import Kept
from supportchat_app.state import InboxState
from sync.workspace_rows import InboxFilter, SavedView

if TYPE_CHECKING:
    from sync.engine import SyncEngine
    from sync.workspace import Workspace

COUNT_EVERY = 1.0  # seconds: how often the sidebar's counts may follow a changed cache
# the counts taken, by what was counted (the list view, the saved views, whether Mentions is there)
_counted: Kept[dict[str, int]] = Kept()


def entry_key(view: SavedView) -> str:
    """A saved view's entry key: by id, so that no name (a view may be called "inbox") stands for another entry;
    the built-in entries' keys are ``inbox``, ``snoozed``, ``breaching`` and ``mentions``."""
    return f"view:{view.id}"


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
        self.counts: dict[str, int] = {}  # entry key (``entry_key``) -> unread count
        self.badges: dict[str, ui.badge] = {}
        self.items: dict[str, ui.item] = {}  # entry key -> its entry
        self.views: list[SavedView] = []
        self.stale = True  # the counts need a recount (the cache changed)
        self._followed = -1  # the cache's data version the entries and tags were last read at
        self.refresh()
        self._first_counts()
        # counting every list over the whole cache costs tens of ms each on a big desk: the counts follow the
        # data at most once a second, off the path of a click that switches the list
        ui.timer(COUNT_EVERY, self._recount)

    def _tags_changed(self, e: events.ValueChangeEventArguments[list[str] | None]) -> None:
        chosen = set(e.value or [])
        if chosen != self.state.tags:
            self.state.set_tags(chosen)

    def _entry(self, key: str, label: str, icon: str, *, on_click: Callable[[], None], name: str = "") -> None:
        """One entry; ``name`` (a saved view's, else the key) names its test id and marker."""
        name = name or key
        item = (
            ui.item(on_click=lambda: self._run(on_click))
            .classes("rounded-lg w-full min-h-[30px] py-0")
            .props("dense")
            .mark("view-entry", f"view-{marker_of(name)}")
        )
        self.items[key] = item
        if key != "mentions":  # its list's first rows are in the page: the click draws them at once (inbox_prefetch.py)
            item.props["data-sc-entry"] = key
        with testid(item, f"view-{name}"):
            with ui.item_section().props("avatar").classes("min-w-[28px]"):
                ui.icon(icon, size="18px").classes("opacity-70")
            with ui.item_section():
                ui.label(label).classes("text-sm ellipsis")
            with ui.item_section().props("side"):
                self.badges[key] = ui.badge("", color="primary").props("rounded").mark(f"count-{marker_of(name)}")
        self._show_count(key)

    def _show_count(self, key: str) -> None:
        badge = self.badges.get(key)
        if badge is None:
            return
        count = self.counts.get(key, 0)
        badge.set_text(str(count))
        badge.set_visibility(count > 0)

    def refresh(self) -> None:
        """Follow the cache's tags and views and the state's list. Counts are not computed here (the click
        that switches lists must not wait for them): the timer does (``_recount``); a changed count updates
        its badge in place, and the chosen entry's highlight moves in place: the entries the agent clicks are
        rebuilt only when the views change."""
        ws = self.engine.workspace
        self._followed = self.engine.cache.data_version()
        tags = {t.id: t.name for t in ws.tags()}
        if self.tag_filter.options != tags:
            self.tag_filter.set_options(tags, value=[t for t in self.state.tags if t in tags])
        elif set(self.tag_filter.value or []) != self.state.tags:
            self.tag_filter.value = sorted(self.state.tags)
        views = ws.saved_views()
        self.views = views
        drawn = tuple(views)
        if drawn != self._drawn:
            self._drawn = drawn
            self._draw(views)
        self._show_active()

    def _active(self) -> str | None:
        """The key of the entry whose list is shown."""
        if self.state.saved_view is not None:
            return next((entry_key(v) for v in self.views if v.id == self.state.saved_view), None)
        return self.state.special or "inbox"

    def _show_active(self) -> None:
        """Highlight the chosen entry in place: a switch does not rebuild the entries (it did, and building them
        was a third of a switch's server time on the bench)."""
        active = self._active()
        for key, item in self.items.items():
            if (key == active) != ("sc-selected" in item.classes):
                item.classes(add="sc-selected") if key == active else item.classes(remove="sc-selected")

    def _draw(self, views: list[SavedView]) -> None:
        self.lists.clear()
        self.badges = {}
        self.items = {}
        with self.lists:
            self._entry("inbox", "Inbox", "inbox", on_click=lambda: self._special(None))
            self._entry("snoozed", "Snoozed", "snooze", on_click=lambda: self._special("snoozed"))
            self._entry("breaching", "Breaching soon", "alarm", on_click=lambda: self._special("breaching"))
            if self.on_mentions is not None:
                self._entry("mentions", "Mentions", "alternate_email", on_click=self.on_mentions)
            for index, view in enumerate(views):
                self._view_entry(view, index, len(views))

    def _asks(self, views: list[SavedView]) -> dict[str, Callable[[], int]]:
        ws = self.engine.workspace
        view = self.state.view
        return {
            "inbox": lambda: ws.count_unread(InboxFilter(view=view, statuses=("open", "pending"))),
            "snoozed": lambda: ws.count(InboxFilter(view=view, statuses=("pending",), snoozed=True)),
            "breaching": lambda: ws.count(InboxFilter(view=view, statuses=("open", "pending"), breaching_within=60)),
            "mentions": lambda: len(ws.mentions(unseen_only=True)) if self.on_mentions else 0,
            **{entry_key(v): partial(_count_unread, ws, v) for v in views},
        }

    def _asked(self, views: list[SavedView]) -> object:
        return (self.state.view, tuple(views), self.on_mentions is not None)

    def _reusable(self, version: int, views: list[SavedView]) -> dict[str, int] | None:
        """Counts of these lists taken with the cache as it is (``version``), if still fresh (kept.py)."""
        return _counted.get(self.engine.cache, self._asked(views), version)

    def _keep(self, version: int, at: float, asked: object, counts: dict[str, int]) -> None:
        _counted.put(self.engine.cache, asked, version, at, counts)

    def _first_counts(self) -> None:
        """The page's first counts, in its first HTML: those another page took if the cache is unchanged since,
        else counted now (the page is being built: the rows went out before, pages/head_start.py)."""
        version, at = self.engine.cache.data_version(), time.monotonic()
        counts = self._reusable(version, self.views)
        if counts is None:
            counts = {key: ask() for key, ask in self._asks(self.views).items()}
            self._keep(version, at, self._asked(self.views), counts)
        self._show(counts)

    def _show(self, counts: dict[str, int]) -> None:
        changed = [k for k, v in counts.items() if self.counts.get(k) != v]
        self.counts = dict(counts)
        for key in changed:
            self._show_count(key)

    async def _count(self, views: list[SavedView], version: int) -> None:
        """Every entry's count, one query at a time, each after a page load in flight (foreground.py); none when
        the counts kept for this cache are still good (``version``: its data version before these are taken)."""
        self.stale = False  # a change while these are counted marks them stale again
        counts = self._reusable(version, views)
        if counts is None:
            at, asked, counts = time.monotonic(), self._asked(views), {}
            for key, ask in self._asks(views).items():
                await foreground.turn()
                if self.is_deleted:
                    return
                counts[key] = ask()
            self._keep(version, at, asked, counts)
        self._show(counts)

    async def _recount(self) -> None:
        if self.stale:
            version = self.engine.cache.data_version()
            if version != self._followed:  # the views or tags may have changed: follow them first
                self.refresh()
            await self._count(self.views, version)

    def _view_entry(self, view: SavedView, index: int, total: int) -> None:
        with ui.row(wrap=False).classes("w-full items-center no-wrap gap-0 sc-view-row"):
            with ui.element("div").classes("grow min-w-0"):
                self._entry(
                    entry_key(view),
                    view.name,
                    "bookmark",
                    on_click=partial(self.state.apply_view, view),
                    name=view.name,
                )
            view_menu(self, view, index, total)

    def _run(self, action: Callable[[], None]) -> None:
        # the action redraws this list, clicked item included: run it in the bar's own (surviving) context
        with self:
            action()

    def _special(self, special: str | None) -> None:
        self.state.set_special(special)

    def delete_view(self, view: SavedView) -> None:
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


def _count_unread(ws: Workspace, view: SavedView) -> int:
    return ws.count_unread(InboxFilter.from_json(view.filters, view.sort))
