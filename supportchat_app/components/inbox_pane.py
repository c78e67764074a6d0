"""The ticket list on the left: agents get Mine / Unassigned / All (admin) and status and priority
filters; customers get My tickets and a New ticket button. Sorted by last activity (the engine's order)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from nicegui import ui

from supportchat_app.components import sla_badge
from supportchat_app.components.bulk import BulkBar, BulkSelection
from supportchat_app.components.ticket_list import TicketRow
from supportchat_app.components.views_bar import ViewsBar
from supportchat_app.state import PRIORITIES, STATUSES, VIEWS, InboxState
from sync.models import LocalUser, Ticket

if TYPE_CHECKING:
    from sync.engine import SyncEngine

# tickets a list holds for staff (the newest of the filter); the inbox_5k bench's baseline draws them all
INBOX_LIMIT = int(os.environ.get("SUPPORTCHAT_INBOX_LIMIT", "200"))
# rows built when a list is shown, and how many more each time it is scrolled near its end: a row is some
# twenty NiceGUI elements, and building 200 of them took seconds on a busy machine (bench inbox_5k)
FIRST_ROWS = int(os.environ.get("SUPPORTCHAT_INBOX_FIRST_ROWS", "20"))
MORE_ROWS = 30


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
    ) -> None:
        super().__init__()
        self.engine, self.state, self._on_open = engine, state, on_open
        self.user = user
        self.staff = user.is_staff
        self.ids: list[str] = []
        self.tickets: list[Ticket] = []
        self.rows: dict[str, tuple[object, TicketRow]] = {}  # ticket id -> (what its row shows, the row)
        self.empty: ui.column | None = None  # "No tickets here"
        self.shown = FIRST_ROWS  # rows drawn of the current list (more as it is scrolled)
        self._filter: object = None  # the filter the rows were drawn for
        self.selection = BulkSelection(on_change=self._selection_changed)  # bulk actions (components/bulk.py)
        self.classes("sc-panel sc-line-r h-full w-[370px] min-w-[300px] gap-0 no-wrap")
        if self.staff:
            sla_badge.install()
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
                        ui.button("Select", icon="checklist", on_click=self.selection.toggle_mode).props(
                            'flat dense no-caps size=sm data-testid="bulk-select"'
                        ).mark("bulk-select")
                if self.staff:
                    self.bulk = BulkBar(engine, user, self.selection, lambda: self.ids)
            self.list = ui.list().classes("w-full grow overflow-y-auto px-2 pb-2").props("dense").mark("inbox-list")
            # the list, unlike its rows, survives every redraw: a click that lands while the rows are being
            # replaced (the first sync) still reaches the server this way; opening twice is a no-op
            self.list.on(
                "click",
                lambda e: on_open(str(e.args)) if e.args else None,
                js_handler="(e) => { if (e.target.closest('.q-checkbox')) return;"  # a bulk checkbox: no open
                " const r = e.target.closest('[data-ticket-id]'); if (r) emit(r.dataset.ticketId); }",
            )
            self.list.on(
                "scroll",
                self._more,
                js_handler="(e) => { const t = e.target;"
                " if (t.scrollTop + t.clientHeight > t.scrollHeight - 800) emit(); }",
                throttle=0.2,
            )
        self.refresh()

    def query(self) -> list[Ticket]:
        if self.staff:  # the workspace's filter: tags, snoozed hidden, saved views, SLA order (issue 14)
            return self.engine.workspace.inbox(self.state.to_filter(), limit=INBOX_LIMIT)
        statuses = self.state.statuses if self.staff else None
        priorities = self.state.priorities or None
        return list(
            self.engine.cache.inbox(
                view=self.state.view if self.staff else "mine", statuses=statuses, priorities=priorities
            )
        )

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
        """What decides the list's contents: a change starts it again at its first rows."""
        if self.staff:
            return self.state.to_filter()
        return (self.state.view, tuple(sorted(self.state.statuses)), tuple(sorted(self.state.priorities)))

    def refresh(self) -> None:
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

    def _more(self) -> None:
        """The list was scrolled near its end: draw the next rows."""
        if self.shown < len(self.tickets):
            self.shown += MORE_ROWS
            self._draw()

    def _draw(self) -> None:
        """Draw the first ``shown`` tickets, reusing every row whose ticket and decoration are unchanged (tickets
        are frozen dataclasses, so equal snapshots mean an identical row): a sync event redraws the rows it
        changed, not the list; a filter switch builds at most ``FIRST_ROWS`` rows."""
        if self.state.selected in self.ids:  # Alt+Down (or a link) may select a ticket below the drawn rows
            self.shown = max(self.shown, self.ids.index(self.state.selected) + 1)
        visible = self.tickets[: self.shown]
        ids = [str(t.id) for t in visible]
        tags = self.engine.workspace.tags_of(ids) if self.staff else {}
        slas = self.engine.workspace.sla_of(ids) if self.staff else {}
        calendar = sla_badge.calendar_of(self.engine.workspace) if slas else None
        viewers = {t.id: self.engine.presence.inbox_viewers(t.id) for t in visible} if self.staff else {}
        selecting = self.selection.active
        wanted: dict[str, tuple[object, ...]] = {
            t.id: (
                t,
                str(t.id) == self.state.selected,
                viewers.get(t.id, ()),
                tuple(tags.get(t.id, ())),
                slas.get(t.id),
                calendar,
                selecting,
                t.id in self.selection.selected,
                # the picture the row shows: one arriving (AvatarsChanged) must redraw its row
                self.engine.avatars.file(t.customer_id if self.staff else t.assignee_id or ""),
            )
            for t in visible
        }
        for ticket_id in [k for k in self.rows if wanted.get(k) != self.rows[k][0]]:
            self.list.remove(self.rows.pop(ticket_id)[1])
        if not visible and self.empty is None:
            with self.list:
                self.empty = ui.column().classes("w-full items-center py-10 gap-1 opacity-60")
                with self.empty:
                    ui.icon("inbox", size="40px")
                    ui.label("No tickets here" if self.staff else "You have no tickets yet").classes("text-sm")
        elif visible and self.empty is not None:
            self.list.remove(self.empty)
            self.empty = None
        for index, ticket in enumerate(visible):
            found = self.rows.get(ticket.id)
            if found is None:
                with self.list:
                    row = TicketRow(
                        ticket,
                        selected=str(ticket.id) == self.state.selected,
                        on_open=self._on_open,
                        show_customer=self.staff,
                        viewers=viewers.get(ticket.id, ()),
                        tags=tags.get(ticket.id, ()),
                        sla=slas.get(ticket.id),
                        calendar=calendar,
                        avatar_of=self.engine.avatars.file,
                        check=self.selection.toggle if selecting else None,
                        checked=ticket.id in self.selection.selected,
                    )
                self.rows[ticket.id] = (wanted[ticket.id], row)
            else:
                row = found[1]
            children = self.list.default_slot.children
            if index >= len(children) or children[index] is not row:
                row.move(self.list, target_index=index)

    def _selection_changed(self) -> None:
        self.bulk.draw()
        self.refresh()

    @property
    def unread_tickets(self) -> int:
        return sum(1 for t in self.tickets if getattr(t, "unread_count", 0))
