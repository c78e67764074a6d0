"""Per-message read receipts: the pure rule (`ThreadReceipts.of`) and the line under a bubble (`ReceiptLine`).

A receipt is derived, never stored: "read" means the other side's read marker on the ticket
(``ticket_reads.last_read_at``, server-clamped, never moving backwards) passed the message's server
``created_at``. The thread reads every marker of its ticket once (`Cache.read_markers`, one primary-key
range read) and derives each bubble's receipt from that dict, so a render of 50 bubbles is one query,
and a marker that moves (realtime or pull → ``TicketsChanged``) re-derives the receipts and redraws only
the bubbles whose receipt changed.

Who "the other side" is, per message:
- a customer's message: the staff (anyone but the ticket's customer who has a marker on it);
- a staff member's public reply: the ticket's customer;
- an internal note: the staff other than its sender (customers never see notes).

What each viewer sees:
- own messages: queued (waiting in the outbox while offline: "sends when back online"; while the session has ended:
  "sends after you sign in again"), sending (waiting in
  the outbox while connected), sent (the server acknowledged it), read (the other side read it). Staff get
  the readers' names; a customer gets "Read" (by support) — and only when the project lets customers see
  read receipts (``app_settings.customers_see_read_receipts``). RLS already
  hides staff markers from customers when the setting is off; the app also ignores staff markers it
  cached before the setting was turned off, so the UI never shows what the server would now refuse.
- staff, on other people's messages: "Read by …" with the other side's readers other than themselves
  (e.g. which agents read a customer's message, or whether the customer read a colleague's reply).
- customers, on other people's messages: nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from nicegui import ui

from supportchat_app import fmt
from sync.models import Message, SyncState

if TYPE_CHECKING:
    from sync.cache import Cache

# "signed-out": queued while the session has ended (the engine's needs-sign-in): it sends after a new sign-in
ReceiptState = Literal["queued", "signed-out", "sending", "sent", "read", "failed", "none"]

# what the line under an own message still in the outbox says, by why it waits
PENDING_TEXT: dict[ReceiptState, str] = {
    "queued": "Queued — sends when back online",
    "signed-out": "Queued — sends after you sign in again",
    "sending": "Sending…",
}


# an own message in the outbox, by the engine's connection (offline and connecting: "queued")
_PENDING: dict[SyncState, ReceiptState] = {"online": "sending", "needs-sign-in": "signed-out"}


@dataclass(frozen=True)
class Receipt:
    """What the line under one bubble says. ``readers`` are user ids, oldest marker first."""

    state: ReceiptState
    readers: tuple[str, ...] = ()
    read_at: str | None = None  # the newest marker among the readers
    own: bool = True


@dataclass
class ThreadReceipts:
    """The receipts of one ticket's thread for one viewer, from the ticket's read markers."""

    ticket_id: str
    me: str
    staff: bool
    customer_id: str
    customers_see: bool = True
    connection: SyncState = "online"  # the engine's: online, a message in the outbox is being sent, not waiting
    markers: dict[str, datetime] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_ticket(cls, cache: Cache, ticket_id: str, *, me: str, staff: bool) -> ThreadReceipts:
        ticket = cache.ticket(ticket_id)
        receipts = cls(ticket_id, me, staff, ticket.customer_id if ticket is not None else "")
        receipts.reload(cache)
        return receipts

    def reload(self, cache: Cache) -> bool:
        """Re-read the markers (one query) and the project's setting; returns whether anything changed."""
        see = cache.customers_see_read_receipts()
        changed, self.customers_see = see != self.customers_see, see
        return self.load(cache.read_markers(self.ticket_id)) or changed

    def load(self, markers: Mapping[str, str]) -> bool:
        """Take the ticket's markers (user id → last_read_at); returns whether they changed."""
        raw = dict(markers)
        if raw == self.raw:
            return False
        self.raw = raw
        self.markers = {uid: at for uid, value in raw.items() if (at := fmt.as_datetime(value)) is not None}
        return True

    def other_side(self, message: Message) -> list[str]:
        """Users with a marker who count as "the other side" of this message."""
        sender = str(message.sender_id)
        if message.is_internal:
            candidates = [u for u in self.markers if u not in (sender, self.customer_id)]
        elif sender == self.customer_id:
            candidates = [u for u in self.markers if u != self.customer_id]
        else:
            candidates = [self.customer_id] if self.customer_id in self.markers else []
        if not self.staff and not self.customers_see:
            return []  # staff markers are not the customer's to see
        return candidates

    def of(self, message: Message) -> Receipt:
        own = str(message.sender_id) == self.me
        if message.deleted_at:
            return Receipt("none", own=own)
        if own and message.local_state == "pending":
            return Receipt(_PENDING.get(self.connection, "queued"))
        if own and message.local_state == "failed":
            return Receipt("failed")
        if not own and not self.staff:
            return Receipt("none", own=False)
        created = fmt.as_datetime(message.created_at)
        readers = sorted(
            (u for u in self.other_side(message) if u != self.me and created and self.markers[u] >= created),
            key=lambda u: self.markers[u],
        )
        if not readers:
            return Receipt("sent" if own else "none", own=own)
        newest = max(self.raw[u] for u in readers)
        return Receipt("read", tuple(readers), newest, own=own)


class ReceiptLine(ui.row):
    """The small line under a bubble: queued (clock) or sending (arrow), sent (one tick), read (two ticks, who and
    when)."""

    def __init__(self) -> None:
        super().__init__(align_items="center")
        self.classes("gap-1 text-xs no-wrap px-1")
        self.receipt: Receipt | None = None
        self.tip: ui.tooltip | None = None  # a "read" line's tooltip: who read it and when they last did

    def show(self, receipt: Receipt, *, staff: bool, name_of: Callable[[str], str]) -> None:
        if receipt == self.receipt:
            return
        if (
            self.tip is not None
            and self.receipt is not None
            and replace(self.receipt, read_at=receipt.read_at) == receipt
        ):
            # the same readers read again (every read marker that moves touches every bubble they read): only the
            # tooltip's time can differ, and it changes at most once a minute; the line's elements stay
            self.receipt = receipt
            self.tip.set_text(_tip(receipt, staff=staff, name_of=name_of))
            return
        self.receipt = receipt
        self.tip = None
        self.clear()
        self.set_visibility(receipt.state != "none")
        with self:
            if receipt.state in PENDING_TEXT:
                ui.icon("arrow_upward" if receipt.state == "sending" else "schedule", size="14px").classes("opacity-60")
                ui.label(PENDING_TEXT[receipt.state]).classes("opacity-60").props(
                    f'data-testid="state-pending" data-state="{receipt.state}"'
                ).mark("state-pending")
            elif receipt.state == "sent":
                ui.icon("done", size="14px").classes("opacity-50").props('data-testid="state-sent"').mark(
                    "state-sent"
                ).tooltip("Sent: the server has it")
            elif receipt.state == "read":
                self._read(receipt, staff=staff, name_of=name_of)

    def _read(self, receipt: Receipt, *, staff: bool, name_of: Callable[[str], str]) -> None:
        if receipt.own:
            # the read ticks also mean "sent": the server had it before anyone could read it
            ui.icon("done_all", size="14px", color="primary").props('data-testid="state-sent"').mark("state-sent")
        else:
            ui.icon("visibility", size="14px").classes("opacity-60")
        text = "Read by " + ", ".join(name_of(u) for u in receipt.readers) if staff else "Read"
        with ui.label(text).classes("opacity-70").props('data-testid="state-read"').mark("state-read"):
            self.tip = ui.tooltip(_tip(receipt, staff=staff, name_of=name_of))


def _tip(receipt: Receipt, *, staff: bool, name_of: Callable[[str], str]) -> str:
    """A "read" line's tooltip: who read the message and when they last read the thread."""
    names = ", ".join(name_of(u) for u in receipt.readers) if staff else "support"
    when = fmt.clock(receipt.read_at)
    return f"Read by {names} (last read {when})" if when else f"Read by {names}"
