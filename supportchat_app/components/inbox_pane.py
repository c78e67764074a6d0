"""The ticket list on the left: agents get Mine / Unassigned / All (admin) and status and priority
filters; customers get My tickets and a New ticket button. Sorted by last activity (the engine's order)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from nicegui import ui

from supportchat_app import foreground
from supportchat_app.business_time import Calendar
from supportchat_app.components import inbox_list, inbox_shell, sla_badge
from supportchat_app.components.bulk import BulkBar, BulkSelection
from supportchat_app.components.inbox_elements import ElementList
from supportchat_app.components.inbox_list import InboxList, row_data
from supportchat_app.components.inbox_prefetch import EVERY as PREFETCH_EVERY
from supportchat_app.components.inbox_prefetch import InboxPrefetch, entry_states
from supportchat_app.components.isolated import Isolated
from supportchat_app.components.views_bar import ViewsBar
from supportchat_app.kept import Kept
from supportchat_app.state import PRIORITIES, STATUSES, VIEWS, InboxState
from sync.models import LocalUser, Ticket
from sync.workspace_rows import InboxFilter, Tag, TicketSla

if TYPE_CHECKING:
    from sync.engine import SyncEngine

# tickets a list holds for staff (the newest of the filter); the inbox_5k bench's baseline draws them all
INBOX_LIMIT = int(os.environ.get("SUPPORTCHAT_INBOX_LIMIT", "200"))
# rows sent when a list is shown, and how many more each time it is scrolled near its end (as data: the
# component draws them, components/inbox_list.py)
FIRST_ROWS = int(os.environ.get("SUPPORTCHAT_INBOX_FIRST_ROWS", "20"))
MORE_ROWS = 30
# the bench's naive baseline: every row as NiceGUI elements, rebuilt on each redraw (components/inbox_elements.py)
ELEMENT_ROWS = os.environ.get("SUPPORTCHAT_INBOX_ELEMENTS") == "1"
# the first rows as server-rendered HTML before the framework starts (components/inbox_shell.py); "0": none,
# the inbox_5k bench's same-run comparison
SHELL = os.environ.get("SUPPORTCHAT_INBOX_SHELL") != "0"
# each sidebar list's first rows in the page ahead of a click (components/inbox_prefetch.py); "0": none (the bench's
# same-run comparison: every switch waits for the server)
PREFETCH = os.environ.get("SUPPORTCHAT_INBOX_PREFETCH") != "0"
# each prefetched list's first tickets, by its filter, while the cache is unchanged (supportchat_app/kept.py): a new
# page's prefetch asks the cache nothing that the page before it asked
_lists_kept: Kept[list[Ticket]] = Kept()


class RowKey(NamedTuple):
    """Everything a row shows: equal keys, the same row data."""

    ticket: Ticket
    viewers: tuple[str, ...]
    tags: tuple[Tag, ...]
    sla: TicketSla | None
    calendar: object
    selecting: bool
    checked: bool
    picture: Path | None
    snoozed: str  # "Snoozed until …": it ends with the clock, not with a change of the ticket


class InboxPane(ui.column):
    def __init__(
        self,
        engine: SyncEngine,
        user: LocalUser,
        state: InboxState,
        *,
        on_open: Callable[[str], None],
        on_new_ticket: Callable[[], object] | None,
        on_mentions: Callable[[], None] | None = None,
        first: FirstRows | None = None,
    ) -> None:
        """``first``: the first list, computed (and its shell sent) ahead of the page by pages/head_start.py."""
        super().__init__()
        self.engine, self.state, self._on_open = engine, state, on_open
        self.user = user
        self.staff = user.is_staff
        self.ids: list[str] = []
        self.tickets: list[Ticket] = []
        self.rows: dict[str, tuple[RowKey, dict[str, Any]]] = {}  # ticket id -> (what its row shows, its data)
        self.shown = FIRST_ROWS  # rows drawn of the current list (more as it is scrolled)
        self._filter: object = None  # the filter the rows were drawn for
        # each sidebar list's first rows, in the page ahead of a click (components/inbox_prefetch.py)
        self.prefetch: InboxPrefetch | None = None
        self._prefetched: dict[str, tuple[RowKey, dict[str, Any]]] = {}
        self._first = first
        if first is not None:
            self.rows = dict(first.rows)
        self.selection = BulkSelection(on_change=self._selection_changed)  # bulk actions (components/bulk.py)
        self.classes("sc-panel sc-line-r h-full w-[370px] min-w-[300px] gap-0 no-wrap")
        if self.staff:
            sla_badge.install()
        inbox_list.install()
        with self:
            with ui.column().classes("w-full gap-2 px-3 pt-3 pb-2 sc-line-b"):
                if self.staff:
                    views = {k: v for k, v in VIEWS.items() if k != "all" or self.user.role == "admin"}
                    self.views_bar = ViewsBar(
                        engine, state, on_mentions=on_mentions
                    )  # Inbox / Snoozed / Breaching soon / saved views
                    self.view_toggle = ui.toggle(views, value=state.view, on_change=lambda e: state.set_view(e.value))
                    self.view_toggle.props(
                        'no-caps unelevated spread dense toggle-color=primary data-testid="views"'
                    ).mark("views").classes("w-full")
                    with ui.row(wrap=False).classes("w-full gap-2 no-wrap"):
                        self.status_select = (
                            ui.select(
                                {s: s.title() for s in STATUSES},
                                multiple=True,
                                value=sorted(state.statuses),
                                label="Status",
                                on_change=lambda e: state.set_statuses(set(e.value or [])),
                            )
                            .props('dense outlined options-dense data-testid="status-filter"')
                            .mark("status-filter")
                            .classes("w-1/2")
                        )
                        self.priority_select = (
                            ui.select(
                                {p: p.title() for p in PRIORITIES},
                                multiple=True,
                                value=sorted(state.priorities),
                                label="Priority",
                                on_change=lambda e: state.set_priorities(set(e.value or [])),
                            )
                            .props('dense outlined options-dense data-testid="priority-filter"')
                            .mark("priority-filter")
                            .classes("w-1/2")
                        )
                else:
                    with ui.row(wrap=False).classes("w-full items-center no-wrap"):
                        ui.label("My tickets").classes("text-lg font-semibold grow")
                        if on_new_ticket is not None:
                            ui.button("New ticket", icon="add", on_click=on_new_ticket).props(
                                'unelevated no-caps dense data-testid="new-ticket"'
                            ).mark("new-ticket").classes("px-3")
                with ui.row(wrap=False).classes("w-full items-center no-wrap"):
                    self.count = (
                        ui.label("")
                        .classes("text-xs opacity-60 grow")
                        .props('data-testid="ticket-count"')
                        .mark("ticket-count")
                    )
                    if self.staff:
                        self._select_toggle()
                if self.staff:
                    self.bulk = BulkBar(engine, user, self.selection, lambda: self.ids)
            self.list = self._rows_element(on_open)
        self.refresh()
        if PREFETCH and self.staff and isinstance(self.list, InboxList):
            with self, Isolated():  # its lists follow every message: only it re-renders
                self.prefetch = InboxPrefetch()
            ui.timer(PREFETCH_EVERY, self._prefetch, immediate=False)  # not while the page is still loading
        if SHELL and first is None and isinstance(self.list, InboxList):  # first rows as HTML, painted before Vue
            entries = len(self.views_bar.items) if self.staff else None
            inbox_shell.add(self.list.rows, entries=entries, selected=self.state.selected or "")

    def _rows_element(self, on_open: Callable[[str], None]) -> InboxList | ElementList:
        """The rows: one element drawing plain data (components/inbox_list.py); it survives every redraw, and its new
        rows (at every message) re-render only it, not the page around it (components/isolated.py)."""
        with Isolated():
            return (ElementList if ELEMENT_ROWS else InboxList)(
                on_open=on_open,
                on_check=self.selection.toggle,
                on_more=self._more,
                empty="No tickets here" if self.staff else "You have no tickets yet",
            ).classes("w-full grow")

    def query(self) -> list[Ticket]:
        first, self._first = self._first, None
        if first is not None and first.complete and first.filter == self._filter_key():
            if first.selected == self.state.selected:
                return first.tickets  # queried just before the page was built (FirstRows)
        # (a FirstRows of the list's head only: its rows are reused, by their keys, from self.rows)
        return query(self.engine, self.staff, self.state)

    def _sync_filters(self) -> None:
        """A saved view sets the filters: the widgets follow."""
        self.views_bar.refresh()
        self.views_bar.stale = True  # its counts follow on its own timer (views_bar.COUNT_EVERY), off this path
        for widget, value in (
            (self.view_toggle, self.state.view),
            (self.status_select, sorted(self.state.statuses)),
            (self.priority_select, sorted(self.state.priorities)),
        ):
            if widget.value != value:
                widget.value = value

    def _filter_key(self) -> object:
        return _filter_key(self.staff, self.state)

    def refresh(self) -> None:
        if self.prefetch is not None:
            self.prefetch.stale = True
        self.tickets = self.query()
        self.ids = [str(t.id) for t in self.tickets]
        if self.staff:
            self._sync_filters()
        key = self._filter_key()
        if key != self._filter:
            self._filter, self.shown = key, FIRST_ROWS
        self._draw()
        unread = sum(1 for t in self.tickets if getattr(t, "unread_count", 0))
        noun = "ticket" if len(self.tickets) == 1 else "tickets"
        self.count.set_text(f"{len(self.tickets)} {noun} · {unread} unread")

    async def _more(self) -> None:
        """The list was scrolled near its end: draw the next rows (after a page load in flight: foreground.py)."""
        await foreground.turn()
        if self.shown < len(self.tickets) and not self.is_deleted:
            self.shown += MORE_ROWS
            self._draw()

    def _draw(self) -> None:
        """Send the first ``shown`` tickets' rows to the list, reusing the data of every row whose ticket and
        decoration are unchanged (tickets are frozen dataclasses, so equal snapshots mean an identical row): a
        sync event rebuilds the rows it changed; the component patches only what differs."""
        if self.state.selected in self.ids:  # Alt+Down (or a link) may select a ticket below the drawn rows
            self.shown = max(self.shown, self.ids.index(self.state.selected) + 1)
        visible = self.tickets[: self.shown]
        tags, slas, calendar, viewers = decorations(self.engine, self.staff, visible)
        selecting = self.selection.active
        if isinstance(self.list, ElementList):
            self.list.show_tickets(
                visible,
                staff=self.staff,
                selected=self.state.selected or "",
                tags=tags,
                slas=slas,
                calendar=calendar,
                viewers=viewers,
                avatar_of=self.engine.avatars.file,
                selecting=selecting,
                checked=self.selection.selected,
            )
            return
        rows = self._row_dicts(visible, tags=tags, slas=slas, calendar=calendar, viewers=viewers, known=self.rows)
        self.rows = rows
        self.list.show(
            [data for _, data in rows.values()],
            selected=self.state.selected or "",
            selecting=selecting,
            more=self.shown < len(self.tickets),
        )

    def _row_dicts(
        self,
        visible: list[Ticket],
        *,
        tags: Mapping[str, Sequence[Tag]],
        slas: Mapping[str, TicketSla],
        calendar: Calendar | None,
        viewers: Mapping[str, tuple[str, ...]],
        known: dict[str, tuple[RowKey, dict[str, Any]]],
    ) -> dict[str, tuple[RowKey, dict[str, Any]]]:
        """The rows' data, reusing a known row's whenever its key (what it shows) is unchanged."""
        return row_dicts(
            self.engine,
            self.staff,
            visible,
            Decorations(tags, slas, calendar, viewers),
            selecting=self.selection.active,
            checked=self.selection.selected,
            known=known,
        )

    async def _prefetch(self) -> None:
        """Each sidebar list's first rows, recomputed when the cache or the state changed (off the click path).
        One list per turn (foreground.py): a page requested meanwhile waits for one list's query at most, not for
        all of them (the lists together took 15-39 ms of the loop in a row at load 16, the longest piece a page
        load met; bench inbox_5k). The lists are shown together once all are computed; a change meanwhile marks
        them stale again, so they are computed anew on the next tick."""
        if self.prefetch is None or not self.prefetch.stale:
            return
        ws = self.engine.workspace
        lists: dict[str, list[dict[str, Any]]] = {}
        kept: dict[str, tuple[RowKey, dict[str, Any]]] = {}
        self.prefetch.stale = False
        try:
            for key, state in entry_states(self.state, self.views_bar.views).items():
                await foreground.turn()
                # a page left is kept a while for a reconnect (NiceGUI): nothing to prefetch for it
                if self.is_deleted or not self.client.has_socket_connection:
                    self.prefetch.stale = True
                    return
                known = {**self._prefetched, **self.rows, **kept}
                visible = self._listed(state.to_filter())
                ids = [str(t.id) for t in visible]
                tags, slas = ws.tags_of(ids), ws.sla_of(ids)
                calendar = sla_badge.calendar_of(ws) if slas else None
                viewers = {t.id: self.engine.presence.inbox_viewers(t.id) for t in visible}
                rows = self._row_dicts(visible, tags=tags, slas=slas, calendar=calendar, viewers=viewers, known=known)
                kept.update(rows)
                lists[key] = [data for _, data in rows.values()]
        except BaseException:  # not computed: again on the next tick
            self.prefetch.stale = True
            raise
        self._prefetched = kept
        self.prefetch.show(lists)

    def _listed(self, f: InboxFilter) -> list[Ticket]:
        """A prefetched list's first tickets: those the last page asked for, if the cache is unchanged since."""
        cache = self.engine.cache
        version, at = cache.data_version(), time.monotonic()
        found = _lists_kept.get(cache, f, version)
        if found is None:
            found = self.engine.workspace.inbox(f, limit=FIRST_ROWS)
            _lists_kept.put(cache, f, version, at, found)
        return found

    def _selection_changed(self) -> None:
        self._label_select_toggle()
        self.bulk.draw()
        self.refresh()

    def _select_toggle(self) -> None:
        """The inbox's "Select" toggle: bulk selection mode on and off (components/bulk.py)."""
        self.select_toggle = ui.button(on_click=self.selection.toggle_mode).props("flat dense size=sm")
        self.select_toggle.props('data-testid="bulk-select"').mark("bulk-select")
        self._label_select_toggle()

    def _label_select_toggle(self) -> None:
        """The toggle says what a click does: enter selection mode, or leave it ("Done")."""
        active = self.selection.active
        self.select_toggle.set_text("Done" if active else "Select")
        self.select_toggle.props(
            f'icon={"done" if active else "checklist"} aria-pressed={str(active).lower()} aria-label="'
            + ("Leave selection mode" if active else "Select tickets for bulk actions")
            + '"'
        )

    @property
    def unread_tickets(self) -> int:
        return sum(1 for t in self.tickets if getattr(t, "unread_count", 0))


class Decorations(NamedTuple):
    """What a page of rows shows beside its tickets (staff only: empty for a customer)."""

    tags: Mapping[str, Sequence[Tag]]
    slas: Mapping[str, TicketSla]
    calendar: Calendar | None
    viewers: Mapping[str, tuple[str, ...]]


class FirstRows(NamedTuple):
    """A new pane's first list, computed before the page is built (pages/head_start.py sends its rows ahead of
    the page); the pane uses it instead of querying again when its state is still the one it was made for.
    ``complete``: ``tickets`` is the whole list the pane holds; otherwise only its head (the rows drawn), and the
    pane queries the whole list while the page is built, reusing these rows."""

    filter: object
    selected: str | None
    tickets: list[Ticket]
    rows: dict[str, tuple[RowKey, dict[str, Any]]]
    complete: bool = True

    @property
    def shown(self) -> list[dict[str, Any]]:
        return [data for _, data in self.rows.values()]


def query(engine: SyncEngine, staff: bool, state: InboxState, limit: int = INBOX_LIMIT) -> list[Ticket]:
    """The tickets of the state's list (at most ``limit`` for staff), in the list's order."""
    if staff:  # the workspace's filter: tags, snoozed hidden, saved views, SLA order (issue 14)
        return engine.workspace.inbox(state.to_filter(), limit=limit)
    return list(engine.cache.inbox(view="mine", statuses=None, priorities=state.priorities or None))


def decorations(engine: SyncEngine, staff: bool, visible: Sequence[Ticket]) -> Decorations:
    if not staff:
        return Decorations({}, {}, None, {})
    ids = [str(t.id) for t in visible]
    slas = engine.workspace.sla_of(ids)
    calendar = sla_badge.calendar_of(engine.workspace) if slas else None
    viewers = {t.id: engine.presence.inbox_viewers(t.id) for t in visible}
    return Decorations(engine.workspace.tags_of(ids), slas, calendar, viewers)


def row_dicts(
    engine: SyncEngine,
    staff: bool,
    visible: Sequence[Ticket],
    decor: Decorations,
    *,
    selecting: bool,
    checked: Collection[str],
    known: Mapping[str, tuple[RowKey, dict[str, Any]]],
) -> dict[str, tuple[RowKey, dict[str, Any]]]:
    """The rows' data, reusing a known row's whenever its key (what it shows) is unchanged."""
    now = datetime.now(UTC)
    rows: dict[str, tuple[RowKey, dict[str, Any]]] = {}
    for t in visible:
        key = RowKey(
            t,
            tuple(decor.viewers.get(t.id, ())),
            tuple(decor.tags.get(t.id, ())),
            decor.slas.get(t.id),
            decor.calendar,
            selecting,
            selecting and t.id in checked,
            # the picture the row shows: one arriving (AvatarsChanged) must redraw its row
            engine.avatars.file(t.customer_id if staff else t.assignee_id or ""),
            inbox_list.snoozed(t, now) if staff else "",
        )
        found = known.get(t.id)
        if found is not None and found[0] == key:
            rows[t.id] = found
            continue
        data = row_data(
            t,
            staff=staff,
            now=now,
            tags=key.tags,
            sla=key.sla,
            calendar=decor.calendar,
            viewers=key.viewers,
            picture=key.picture,
            checked=key.checked,
        )
        rows[t.id] = (key, data)
    return rows


def first_rows(engine: SyncEngine, user: LocalUser, state: InboxState) -> FirstRows:
    """What a new pane of this user and state draws first (its refresh with nothing selected for bulk).

    For staff only the rows drawn are queried (the list's order ends on the ticket id, so its first rows are the
    same whatever the limit): the whole list (up to INBOX_LIMIT, each with its unread count and preview) cost
    most of the time before the first byte (bench inbox_5k: 35 of 40 ms under load). A ticket selected by its
    link below them needs the whole list."""
    staff = user.is_staff
    head = staff and FIRST_ROWS < INBOX_LIMIT
    tickets = query(engine, staff, state, FIRST_ROWS) if head else query(engine, staff, state)
    if head and state.selected and len(tickets) == FIRST_ROWS and state.selected not in {str(t.id) for t in tickets}:
        tickets, head = query(engine, staff, state), False
    complete = not head or len(tickets) < FIRST_ROWS
    shown = FIRST_ROWS
    ids = [str(t.id) for t in tickets]
    if state.selected in ids:  # as _draw: a ticket selected by its link below the first rows is drawn too
        shown = max(shown, ids.index(state.selected) + 1)
    visible = tickets[:shown]
    rows = row_dicts(engine, staff, visible, decorations(engine, staff, visible), selecting=False, checked=(), known={})
    return FirstRows(_filter_key(staff, state), state.selected, tickets, rows, complete)


def _filter_key(staff: bool, state: InboxState) -> object:
    """What decides the list's contents: a change starts it again at its first rows."""
    if staff:
        return state.to_filter()
    return (state.view, tuple(sorted(state.statuses)), tuple(sorted(state.priorities)))
