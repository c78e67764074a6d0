"""Inbox rows: customer avatar, subject (bold while unread), last-message preview, age, unread badge,
priority and status chips."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from nicegui import ui

from supportchat_app import fmt
from supportchat_app.business_time import Calendar
from supportchat_app.components.avatar import Avatar
from supportchat_app.components.collision import ViewerAvatars
from supportchat_app.components.sla_badge import sla_badge
from supportchat_app.components.tags import tag_chips
from sync.models import Ticket
from sync.workspace_rows import Tag, TicketSla

PRIORITY_COLORS = {"urgent": "negative", "high": "deep-orange-6", "normal": "grey-6", "low": "blue-grey-4"}
STATUS_COLORS = {"open": "primary", "pending": "amber-8", "resolved": "positive", "closed": "grey-6"}


class TicketRow(ui.item):
    def __init__(
        self,
        ticket: Ticket,
        *,
        selected: bool,
        on_open: Callable[[str], None],
        show_customer: bool,
        viewers: tuple[str, ...] = (),
        tags: Sequence[Tag] = (),
        sla: TicketSla | None = None,
        calendar: Calendar | None = None,
        avatar_of: Callable[[str], Path | None] = lambda _: None,
        check: Callable[[str], None] | None = None,
        checked: bool = False,
    ) -> None:
        super().__init__(on_click=lambda: on_open(ticket.id))
        unread = ticket.unread_count
        customer = ticket.customer_name or "Customer"
        self.classes("sc-ticket-row rounded-lg q-my-xs" + (" sc-selected" if selected else ""))
        self.props(f'data-ticket-id="{ticket.id}" data-testid="ticket-row"').mark("ticket-row", f"ticket-{ticket.id}")
        with self:
            if check is not None:  # bulk selection (components/bulk.py); the click must not open the ticket
                with ui.item_section().props("side"):
                    ui.checkbox(value=checked, on_change=lambda: check(ticket.id)).props(
                        'dense data-testid="bulk-check"'
                    ).mark("bulk-check", f"bulk-check-{ticket.id}").on("click.stop", lambda: None)
            with ui.item_section().props("avatar"):
                if show_customer:
                    Avatar(customer, str(ticket.customer_id), image=avatar_of(str(ticket.customer_id)))
                elif ticket.assignee_name:
                    Avatar(ticket.assignee_name, str(ticket.assignee_id), image=avatar_of(str(ticket.assignee_id)))
                else:
                    ui.avatar("support_agent", color="blue-grey-2", text_color="blue-grey-8", size="32px")
            with ui.item_section().classes("min-w-0"):
                with ui.row(wrap=False).classes("w-full items-center gap-1 no-wrap"):
                    ui.label(str(ticket.subject)).classes(
                        "ellipsis grow text-sm " + ("font-bold" if unread else "font-medium")
                    )
                    ui.label(fmt.ago(ticket.last_message_at or ticket.updated_at)).classes(
                        "text-xs opacity-60 whitespace-nowrap"
                    )
                with ui.row(wrap=False).classes("w-full items-center gap-1 no-wrap"):
                    preview = ticket.last_message_preview
                    who = f"{customer} · " if show_customer else ""
                    ui.label(f"{who}{preview}").classes("ellipsis grow text-xs opacity-70")
                    if unread:
                        ui.badge(str(unread), color="primary").props('rounded data-testid="unread"').mark("unread")
                with ui.row(wrap=False).classes("w-full min-w-0 items-center gap-1 no-wrap"):
                    status = str(ticket.status)
                    ui.badge(status, color=STATUS_COLORS.get(status, "grey")).props("outline").classes("text-xs")
                    priority = str(ticket.priority)
                    if priority != "normal":
                        ui.badge(priority, color=PRIORITY_COLORS.get(priority, "grey")).classes("text-xs")
                    assignee = ticket.assignee_name or None
                    if show_customer and assignee:
                        ui.label(f"→ {assignee}").classes("text-xs opacity-60 ellipsis min-w-0")
                    sla_badge(sla, calendar=calendar)
                    if viewers:
                        ViewerAvatars(viewers)
                if tags:  # their own line: chips wrap instead of widening the list
                    with ui.row().classes("items-center gap-1 pt-[2px]"):
                        tag_chips(tags)
