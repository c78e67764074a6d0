"""What the open ticket's header and footer show, as comparable keys: redraw them only when it changed.

Every new message changes its ticket's row (last message, preview), so each one reached the open pane as a
ticket change and a message change, and both rebuilt the header and the footer whole. On the customer's page
that was ~25 of the ~55 elements NiceGUI sent with a new bubble (deleted and made again, unchanged), most of
the page's work applying the update (the e2e hop trace in bench/README.md: "drawn → update in the page →
in the DOM"). A key holds exactly what the drawing code reads; equal keys mean an identical redraw.

The staff header is not keyed (``None``: always redrawn): its controls (the assignee list, the SLA badge, the
snooze menu's wake-up times, relative to now) read more than the ticket row, and an agent's page was not on the
measured path.
"""

from __future__ import annotations

from collections.abc import Callable

from supportchat_app import fmt
from sync.models import Ticket

HeaderKey = tuple[object, ...] | None


def header_key(ticket: Ticket | None, *, staff: bool, name_of: Callable[[str], str]) -> HeaderKey:
    """The customer's header as drawn (TicketPane.refresh_header); None for staff (always redrawn)."""
    if staff:
        return None
    if ticket is None:
        return ("gone",)
    customer = ticket.customer_name or name_of(ticket.customer_id)
    return (
        ticket.subject,
        f"{customer} · {fmt.opened(ticket.created_at)} · #{str(ticket.id)[:8]}",
        ticket.local_state,
        ticket.error if ticket.local_state == "failed" else None,
        ticket.status,
    )


def footer_key(names: list[str] | tuple[str, ...], marker: str | None, ticket: Ticket | None) -> tuple[object, ...]:
    """The footer as drawn (TicketPane._show_footer): who is typing, and for staff the customer's read marker
    against the ticket's last message (``marker`` None for a customer)."""
    if ticket is None:
        return (tuple(names),)
    return (tuple(names), marker, ticket.last_message_at, ticket.customer_name)
