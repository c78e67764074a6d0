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

# rows drawn for staff (the newest of the filter); the inbox_5k bench's baseline draws them all
INBOX_LIMIT = int(os.environ.get("SUPPORTCHAT_INBOX_LIMIT", "200"))


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
        self._drawn: object = None  # what the list shows now; an unchanged inbox is not redrawn
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
            self.list = ui.list().classes("w-full grow overflow-y-auto px-2 pb-2").props("dense")
            # the list, unlike its rows, survives every redraw: a click that lands while the rows are being
            # replaced (the first sync) still reaches the server this way; opening twice is a no-op
            self.list.on(
                "click",
                lambda e: on_open(str(e.args)) if e.args else None,
                js_handler="(e) => { if (e.target.closest('.q-checkbox')) return;"  # a bulk checkbox: no open
                " const r = e.target.closest('[data-ticket-id]'); if (r) emit(r.dataset.ticketId); }",
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

    def refresh(self) -> None:
        self.tickets = self.query()
        self.ids = [str(t.id) for t in self.tickets]
        tags = self.engine.workspace.tags_of(self.ids) if self.staff else {}
        slas = self.engine.workspace.sla_of(self.ids) if self.staff else {}
        calendar = sla_badge.calendar_of(self.engine.workspace) if slas else None
        if self.staff:
            self._sync_filters()
        # tickets are frozen dataclasses: equal snapshots mean an identical list, so keep the rows (and the
        # row under the agent's pointer) instead of rebuilding them on every sync event
        viewers = {t.id: self.engine.presence.inbox_viewers(t.id) for t in self.tickets} if self.staff else {}
        drawn = (
            tuple(self.tickets),
            self.state.selected,
            tuple(sorted(viewers.items())),
            tuple(sorted((k, tuple(v)) for k, v in tags.items())),
            tuple(sorted(slas.items())),
            calendar,
            self.selection.snapshot(),
            # the pictures the rows show: one arriving (AvatarsChanged) must redraw its rows
            tuple(self.engine.avatars.file(t.customer_id if self.staff else t.assignee_id or "") for t in self.tickets),
        )
        if drawn == self._drawn:
            return
        self._drawn = drawn
        self.list.clear()
        with self.list:
            if not self.tickets:
                with ui.column().classes("w-full items-center py-10 gap-1 opacity-60"):
                    ui.icon("inbox", size="40px")
                    ui.label("No tickets here" if self.staff else "You have no tickets yet").classes("text-sm")
            for ticket in self.tickets:
                TicketRow(
                    ticket,
                    selected=str(ticket.id) == self.state.selected,
                    on_open=self._on_open,
                    show_customer=self.staff,
                    viewers=viewers.get(ticket.id, ()),
                    tags=tags.get(ticket.id, ()),
                    sla=slas.get(ticket.id),
                    calendar=calendar,
                    avatar_of=self.engine.avatars.file,
                    check=self.selection.toggle if self.selection.active else None,
                    checked=ticket.id in self.selection.selected,
                )
        unread = sum(1 for t in self.tickets if getattr(t, "unread_count", 0))
        noun = "ticket" if len(self.tickets) == 1 else "tickets"
        self.count.set_text(f"{len(self.tickets)} {noun} · {unread} unread")

    def _selection_changed(self) -> None:
        self.bulk.draw()
        self.refresh()

    @property
    def unread_tickets(self) -> int:
        return sum(1 for t in self.tickets if getattr(t, "unread_count", 0))
