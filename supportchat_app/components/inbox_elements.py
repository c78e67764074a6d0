"""The inbox rows as NiceGUI elements — one ``TicketRow`` (components/ticket_list.py, ~24 elements) per ticket,
all rebuilt on every redraw. This is how the inbox drew its list before components/inbox_list.py; the app no
longer uses it: it is the naive baseline of the ``inbox_5k`` bench (``SUPPORTCHAT_INBOX_ELEMENTS=1``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from nicegui import ui

from supportchat_app.business_time import Calendar
from supportchat_app.components.ticket_list import TicketRow
from sync.models import Ticket
from sync.workspace_rows import Tag, TicketSla


class ElementList(ui.list):
    def __init__(
        self,
        *,
        on_open: Callable[[str], None],
        on_check: Callable[[str], None],
        on_more: Callable[[], object],  # may be a coroutine function: NiceGUI awaits what a handler returns
        empty: str,
    ) -> None:
        super().__init__()
        self.on_open, self.on_check, self.empty = on_open, on_check, empty
        self.classes("overflow-y-auto px-2 pb-2").props("dense").mark("inbox-list")
        self.on(
            "click",
            lambda e: on_open(str(e.args)) if e.args else None,
            js_handler="(e) => { if (e.target.closest('.q-checkbox')) return;"
            " const r = e.target.closest('[data-ticket-id]'); if (r) emit(r.dataset.ticketId); }",
        )
        self.on(
            "scroll",
            lambda _: on_more(),
            js_handler="(e) => { const t = e.target;"
            " if (t.scrollTop + t.clientHeight > t.scrollHeight - 800) emit(); }",
            throttle=0.2,
        )

    def show_tickets(
        self,
        tickets: Sequence[Ticket],
        *,
        staff: bool,
        selected: str,
        tags: Mapping[str, Sequence[Tag]],
        slas: Mapping[str, TicketSla],
        calendar: Calendar | None,
        viewers: Mapping[str, tuple[str, ...]],
        avatar_of: Callable[[str], Path | None],
        selecting: bool,
        checked: set[str],
    ) -> None:
        self.clear()
        with self:
            if not tickets:
                with ui.column().classes("w-full items-center py-10 gap-1 opacity-60"):
                    ui.icon("inbox", size="40px")
                    ui.label(self.empty).classes("text-sm")
            for ticket in tickets:
                TicketRow(
                    ticket,
                    selected=str(ticket.id) == selected,
                    on_open=self.on_open,
                    show_customer=staff,
                    viewers=viewers.get(ticket.id, ()),
                    tags=tags.get(ticket.id, ()),
                    sla=slas.get(ticket.id),
                    calendar=calendar,
                    avatar_of=avatar_of,
                    check=self.on_check if selecting else None,
                    checked=ticket.id in checked,
                )
