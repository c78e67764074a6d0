"""What the open ticket's header and footer show, as comparable keys: redraw them only when it changed.

Every new message changes its ticket's row (last message, preview), so each one reached the open pane as a
ticket change and a message change, and both rebuilt the header and the footer whole. On the customer's page
that was ~25 of the ~55 elements NiceGUI sent with a new bubble (deleted and made again, unchanged), most of
the page's work applying the update (the e2e hop trace in bench/README.md: "drawn → update in the page →
in the DOM"). A key holds exactly what the drawing code reads; equal keys mean an identical redraw.

The staff header's key (``staff_header_key``) adds what its controls read beyond the ticket row: the priority
and assignee, the agents the assignee list offers, the SLA badge as drawn except the time left and its colour
(the page counts those down itself, components/sla_badge.py), and the snooze state. The snooze menu's wake-up
times are taken when one is clicked (components/snooze.py), so a header kept for hours offers the right ones.
The tags have their own redraw (``TagEditor.refresh``, on the workspace's change event), the viewers theirs.
Before this key the agent's header (some 40 elements) was made again on every ticket change, so on every
message (its row and its read markers change): in a profile of the e2e bench most of the agent app's CPU per
message, spent while the customer's side of the same message needed the machine's two cores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from supportchat_app import fmt
from supportchat_app.components.sla_badge import calendar_of, describe
from sync.models import Ticket

if TYPE_CHECKING:
    from sync.engine import SyncEngine

HeaderKey = tuple[object, ...] | None


def header_key(ticket: Ticket | None, *, staff: bool, name_of: Callable[[str], str]) -> HeaderKey:
    """The customer's header as drawn (TicketPane.refresh_header); None for staff (see ``staff_header_key``)."""
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


def staff_header_key(ticket: Ticket | None, engine: SyncEngine, *, me: str, name_of: Callable[[str], str]) -> HeaderKey:
    """The staff header as drawn (TicketPane.refresh_header and its ``_controls``, the SLA badge, the snooze
    button), less what the browser keeps current by itself."""
    if ticket is None:
        return ("gone",)
    ws, ticket_id = engine.workspace, str(ticket.id)
    sla = ws.sla_of([ticket_id]).get(ticket_id)
    badge = describe(sla, calendar=calendar_of(ws))
    return (
        *(header_key(ticket, staff=False, name_of=name_of) or ()),
        ticket.priority,
        ticket.assignee_id,
        ticket.assignee_id == me,
        tuple((str(a.id), a.display_name) for a in engine.cache.agents()),
        None if badge is None else (badge.what, badge.paused, badge.flip, badge.tip),
        sla,
        ws.snoozed_until(ticket_id),
    )


def footer_key(names: list[str] | tuple[str, ...], marker: str | None, ticket: Ticket | None) -> tuple[object, ...]:
    """The footer as drawn (TicketPane._show_footer): who is typing, and for staff the customer's read marker
    against the ticket's last message (``marker`` None for a customer)."""
    if ticket is None:
        return (tuple(names),)
    return (tuple(names), marker, ticket.last_message_at, ticket.customer_name)
