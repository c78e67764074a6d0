"""The customer context panel (issue 14, item 6), beside the open ticket for staff: who the customer is, since
when they write in, their other tickets (status and last message, a click opens one) and the notes staff keep
about them (``customer_notes``: staff only, never synced to a customer's cache — RLS on the server).

Everything comes from the cache, so the panel works offline; a note is written through the outbox like any
workspace row (sync/workspace.py) and shows at once, marked while it waits for the server.

A ticket or message change redraws the panel only when something it shows changed (``_shown``): every message
anywhere used to rebuild it, which cost the agent's own send ~25 ms before its push could start (the e2e hop
trace, bench/README.md). A redraw replaces only what is drawn from the cache (``body``): the note input and its
button are made once, below it, so a note being typed keeps its text and focus whatever redraws the panel
(another agent's note, the customer's other tickets, a minute passing in "5 min ago").

In a window narrower than 1000 px the panel folds away (``CSS``): beside the inbox it left the ticket ~340 px, whose
header then wrapped its controls into four lines (270 of the pane's 650 px at 900 by 768) over a thread and a composer a
few words wide. The ticket header's person button (``toggle``) lays it over the ticket's right edge (the button under
it), and its close button in the same place (or Esc, pages/workspace.py) folds it; from 1000 px it stays beside the
ticket and neither button shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nicegui import ui

from supportchat_app import fmt
from supportchat_app.components.avatar import Avatar
from supportchat_app.components.ticket_list import STATUS_COLORS
from sync import events
from sync.models import LocalUser, Ticket, mentions_shown

if TYPE_CHECKING:
    from sync.engine import SyncEngine


def first_seen(value: str) -> str:
    """'today', 'yesterday' or the date ('12 Nov 2026') the customer was first seen."""
    day = fmt.day_of(value)
    if day is None:
        return "—"
    label = fmt.day_label(day)
    return label.lower() if label in ("Today", "Yesterday") else day.strftime("%d %b %Y").lstrip("0")


NARROW = "(max-width: 999.98px)"  # below 1000 px the panel folds behind the ticket header's person button
CSS = f"""
.sc-ticket-split {{ position: relative; }}
.sc-context-toggle, .sc-context-close {{ display: none !important; }}
@media {NARROW} {{
  .sc-context {{ display: none !important; }}
  .sc-context.sc-context-open {{ display: flex !important; position: absolute; top: 0; right: 0; bottom: 0; z-index: 5;
    box-shadow: -8px 0 24px rgba(0, 0, 0, 0.18); }}
  .sc-context-toggle {{ display: inline-flex !important; }}
  .sc-context-open .sc-context-close {{ display: inline-flex !important; position: absolute; top: 6px; right: 6px; }}
}}
"""
ui.add_css(CSS, shared=True)  # once in every page's head, not one more <style> per opened ticket


class ContextPanel(ui.column):
    def __init__(self, engine: SyncEngine, user: LocalUser, ticket_id: str, *, on_open: Callable[[str], None]) -> None:
        super().__init__()
        self.engine, self.user, self.ticket_id, self._on_open = engine, user, ticket_id, on_open
        ticket = engine.cache.ticket(ticket_id)
        self.customer_id = ticket.customer_id if ticket else ""
        self.classes(
            "sc-panel sc-context h-full w-[290px] min-w-[260px] gap-3 p-4 no-wrap overflow-y-auto overflow-x-hidden"
        )
        self.style("border-left: 1px solid var(--sc-line)")
        self.props('data-testid="context-panel"').mark("context-panel")
        self._drawn: tuple[object, ...] = ()
        with self:
            ui.button(icon="close", on_click=self.toggle).props(
                'flat round dense size=sm aria-label="Hide customer details" data-testid="context-close"'
            ).classes("sc-context-close").mark("context-close")
            self.body = ui.column().classes("w-full gap-3 p-0 no-wrap flex-none")
        self.note_input: ui.textarea | None = None
        self.refresh()
        if self.customer_id:
            self._compose()

    @property
    def shown_narrow(self) -> bool:
        """Whether the panel is laid over the ticket in a narrow window (the person button's state)."""
        return "sc-context-open" in self.classes

    def toggle(self) -> None:
        """In a narrow window, lay the panel over the ticket or fold it away again (no effect from 1000 px)."""
        self.classes(toggle="sc-context-open")

    def _shown(self) -> tuple[object, ...]:
        """What the panel draws from the profiles and the tickets (a note's own changes redraw it on their own
        event; the names of the notes' authors are here, since a renamed author changes no note)."""
        cache = self.engine.cache
        profiles = cache.profiles()
        profile = profiles.get(self.customer_id)
        tickets = cache.customer_tickets(self.customer_id)
        authors = {n.author_id for n in self.engine.workspace.customer_notes(self.customer_id)}
        return (
            (profile.display_name, profile.role) if profile else None,
            tuple(sorted((a, p.display_name if (p := profiles.get(a)) else "") for a in authors)),
            cache.first_seen(self.customer_id),
            tuple((t.id, t.status) for t in tickets),  # the counts
            tuple(
                (t.subject, fmt.ago(t.last_message_at), mentions_shown(t.last_message_preview))
                for t in tickets
                if t.id != self.ticket_id
            ),
        )

    def refresh(self) -> None:
        self._drawn = self._shown()
        self.body.clear()
        if not self.customer_id:
            return
        cache = self.engine.cache
        profile = cache.profiles().get(self.customer_id)
        name = profile.display_name if profile and profile.display_name else "Customer"
        tickets = cache.customer_tickets(self.customer_id)
        first = cache.first_seen(self.customer_id)
        with self.body:
            with ui.row(wrap=False).classes("items-center gap-3 no-wrap"):
                Avatar(name, self.customer_id, size="44px", image=self.engine.avatars.file(self.customer_id)).props(
                    'data-testid="context-avatar"'
                ).mark("context-avatar")
                with ui.column().classes("gap-0 min-w-0"):
                    ui.label(name).classes("text-base font-semibold ellipsis").props('data-testid="context-name"').mark(
                        "context-name"
                    )
                    ui.label((profile.role if profile else "customer").title()).classes("text-xs opacity-60")
            with ui.column().classes("gap-0 text-xs"):
                if first:
                    ui.label(f"First seen {first_seen(first)}").props('data-testid="context-first-seen"').mark(
                        "context-first-seen"
                    )
                open_count = sum(1 for t in tickets if t.status in ("open", "pending"))
                noun = "ticket" if len(tickets) == 1 else "tickets"
                ui.label(f"{len(tickets)} {noun} · {open_count} open").classes("opacity-70")
            self._tickets(tickets)
            self._notes()

    def on_event(self, event: events.Event) -> None:
        """Engine events (subscribed by the page): redraw when the customer's tickets or notes changed."""
        if self.is_deleted:
            return
        match event:
            case events.WorkspaceChanged(tables=tables) if "customer_notes" in tables:
                self.refresh()
            case events.TicketsChanged() | events.MessagesChanged():
                if self._shown() != self._drawn:
                    self.refresh()
            case events.AvatarsChanged(user_ids=ids) if self.customer_id in ids:
                self.refresh()

    def _tickets(self, tickets: list[Ticket]) -> None:
        others = [t for t in tickets if t.id != self.ticket_id]
        ui.label("Other tickets").classes("text-xs font-semibold uppercase opacity-60 q-mt-sm")
        if not others:
            ui.label("None").classes("text-xs opacity-60")
        with ui.list().props("dense").classes("w-full"):
            for t in others[:10]:
                with (
                    ui.item(on_click=lambda tid=t.id: self._on_open(tid))
                    .classes("rounded w-full px-1")
                    .props('data-testid="context-ticket"')
                    .mark("context-ticket")
                ):
                    with ui.item_section().classes("min-w-0"):
                        with ui.row(wrap=False).classes("w-full items-center gap-1 no-wrap"):
                            ui.label(t.subject).classes("text-sm ellipsis grow min-w-0")
                            ui.badge(t.status, color=STATUS_COLORS.get(t.status, "grey")).props("outline").classes(
                                "text-xs"
                            )
                        ui.label(f"{fmt.ago(t.last_message_at)} · {mentions_shown(t.last_message_preview)}").classes(
                            "text-xs opacity-60 ellipsis w-full"
                        )

    def _notes(self) -> None:
        workspace = self.engine.workspace
        notes = workspace.customer_notes(self.customer_id)
        profiles = self.engine.cache.profiles()
        with ui.row(wrap=False).classes("w-full items-center no-wrap q-mt-sm"):
            ui.label("Notes").classes("text-xs font-semibold uppercase opacity-60 grow")
            ui.icon("lock", size="14px").classes("opacity-50").tooltip("Only staff see these notes")
        for note in notes:
            author = profiles.get(note.author_id)
            with (
                ui.column()
                .classes("w-full gap-0 sc-note rounded p-2")
                .props('data-testid="context-note"')
                .mark("context-note")
            ):
                ui.label(note.body).classes("text-sm whitespace-pre-wrap")
                with ui.row(wrap=False).classes("w-full items-center gap-1 no-wrap text-xs opacity-60"):
                    who = author.display_name if author else "Staff"
                    ui.label(f"{who} · {fmt.ago(note.created_at)}").classes("grow")
                    if note.local_state != "sent":
                        ui.label("waiting to sync" if note.local_state == "pending" else note.error or "refused")
                    if note.author_id == self.user.id or self.user.role == "admin":
                        ui.button(icon="delete", on_click=lambda n=note.id: self._delete(n)).props(
                            'flat dense round size=xs data-testid="context-note-delete"'
                        ).mark("context-note-delete")

    def _compose(self) -> None:
        """The note input and its button, made once (see the module docstring)."""
        with self, ui.column().classes("w-full gap-3 p-0 no-wrap flex-none"):
            self.note_input = (
                ui.textarea(placeholder="Add a note about this customer…")
                .props('outlined dense autogrow rows=1 data-testid="context-note-input"')
                .mark("context-note-input")
                .classes("w-full text-sm")
            )
            ui.button("Add note", on_click=self._add).props(
                'unelevated dense no-caps size=sm data-testid="context-note-add"'
            ).mark("context-note-add").classes("self-end px-2")

    def _add(self) -> None:
        if self.note_input is None:
            return
        body = (self.note_input.value or "").strip()
        if not body:
            return
        try:
            self.engine.workspace.add_customer_note(self.customer_id, body)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "save the note"), type="negative")
            return
        self.note_input.value = ""
        self.refresh()

    def _delete(self, note_id: str) -> None:
        try:
            self.engine.workspace.delete_customer_note(note_id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "delete the note"), type="negative")
        self.refresh()
