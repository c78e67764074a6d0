"""The open ticket: header with subject, customer, who else is viewing and (agents) status, priority,
take / release / assign; the thread; typing and "seen" line; the composer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nicegui import background_tasks, ui

from supportchat_app import fmt
from supportchat_app.canned import context_for
from supportchat_app.components.attachments import AttachmentTray, caption
from supportchat_app.components.avatar import Avatar
from supportchat_app.components.canned_files import stage_files
from supportchat_app.components.canned_picker import CannedPicker, picker_button
from supportchat_app.components.collision import CollisionDialog, SendGuard, crossed_text
from supportchat_app.components.composer import Composer
from supportchat_app.components.context_panel import NARROW
from supportchat_app.components.isolated import Isolated
from supportchat_app.components.mentions import MentionPicker
from supportchat_app.components.pane_keys import HeaderKey, footer_key, header_key, staff_header_key
from supportchat_app.components.sla_badge import calendar_of, sla_badge
from supportchat_app.components.snooze import SnoozeButton
from supportchat_app.components.tags import TagEditor
from supportchat_app.components.thread import ThreadView
from supportchat_app.state import PRIORITIES, STATUSES, ComposerState, TypingState
from sync import hops
from sync.decisions import canonical_ts
from sync.models import LocalUser, Ticket

if TYPE_CHECKING:
    from sync.engine import SyncEngine

# in a narrow window (the customer panel folded away) the header's controls are a little narrower, so the customer line,
# status, priority, assignee and Take / Release fit on one line of a 600 px pane instead of wrapping onto two
CSS = f"""
@media {NARROW} {{
  .sc-narrow-select {{ width: 7rem; }}
  .sc-narrow-assignee {{ width: 9rem; }}
}}
"""
ui.add_css(CSS, shared=True)


class TicketPane(ui.column):
    def __init__(
        self,
        engine: SyncEngine,
        user: LocalUser,
        ticket_id: str,
        *,
        page_size: int | None = None,
        on_customer: Callable[[], None] | None = None,
        on_open: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.engine, self.ticket_id = engine, ticket_id
        self.on_customer = on_customer  # the header's person button: the customer panel in a narrow window
        self.on_open = on_open  # opens another ticket: the one "Send as a new ticket" made
        self.user = user
        self.staff = user.is_staff
        self.ticket = engine.cache.ticket(ticket_id)
        self.profiles = engine.cache.profiles()
        self.viewers: tuple[str, ...] = ()
        self._header_key: HeaderKey = None  # what the header and footer show (components/pane_keys.py)
        self._footer_key: tuple[object, ...] | None = None
        self.typing = TypingState(on_change=self._show_footer)
        self.composer_state = ComposerState(on_change=self._mode_changed)
        self.guard = SendGuard(user.id)  # asks before a reply that crosses someone else's (collision.py)
        self.classes("h-full w-full grow gap-0 no-wrap min-w-0")
        self.props(f'data-testid="ticket-pane" data-ticket-id="{ticket_id}"').mark("ticket-pane")
        with self:
            self.header = ui.column().classes("sc-panel sc-line-b w-full gap-1 px-5 py-3")
            kwargs = {"page_size": page_size} if page_size else {}
            self.thread = ThreadView(engine, ticket_id, me=self.user.id, name_of=self.name_of, **kwargs)
            with Isolated():  # "seen" and "typing" redrawn (at every message) re-render only the footer (isolated.py)
                self.footer = ui.row().classes("w-full px-5 gap-3 text-xs opacity-70 min-h-[20px] items-center")
                self.footer.props('data-testid="ticket-footer"')
            self.composer_slot = ui.column().classes("sc-panel sc-line-t w-full gap-0")
        self.refresh_header()
        self._build_composer()
        self._show_footer()
        ui.timer(1.0, self._expire_typing)

    # names ---------------------------------------------------------------------------------------------
    def name_of(self, user_id: str) -> str:
        if user_id == self.user.id:
            return str(self.user.display_name)
        profile = self.profiles.get(user_id)
        if profile is None:
            self.profiles = self.engine.cache.profiles()
            profile = self.profiles.get(user_id)
        return str(profile.display_name) if profile else "Unknown user"

    # header --------------------------------------------------------------------------------------------
    def refresh_header(self) -> None:
        self.ticket = self.engine.cache.ticket(self.ticket_id) or self.ticket
        ticket = self.ticket
        if self.staff:
            key = staff_header_key(ticket, self.engine, me=self.user.id, name_of=self.name_of)
        else:
            key = header_key(ticket, staff=False, name_of=self.name_of)
        if key is not None and key == self._header_key:
            return  # drawn already, identical
        self._header_key = key
        self.header.clear()
        if ticket is None:
            with self.header:
                ui.label("This ticket is no longer available to you.").classes("text-lg")
            return
        with self.header:
            with ui.row(wrap=False).classes("w-full items-center no-wrap gap-3"):
                ui.label(str(ticket.subject)).classes("text-lg font-semibold ellipsis grow").props(
                    'data-testid="ticket-subject"'
                ).mark("ticket-subject")
                self.viewers_row = ui.row(wrap=False).classes("items-center gap-1 no-wrap")
                self._show_viewers()
                if self.on_customer is not None:  # shown below 1000 px only (components/context_panel.py CSS)
                    ui.button(icon="person", on_click=self.on_customer).props(
                        'flat round dense aria-label="Customer details" data-testid="context-toggle"'
                    ).classes("sc-context-toggle").mark("context-toggle").tooltip("Customer details")
            # wraps in a narrow window: the controls go below the line instead of past the pane's edge
            with ui.row().classes("w-full items-center gap-2 text-sm"):
                customer = ticket.customer_name or self.name_of(ticket.customer_id)
                ui.label(f"{customer} · {fmt.opened(ticket.created_at)} · #{str(ticket.id)[:8]}").classes(
                    "opacity-70 ellipsis grow basis-16"
                )
                if ticket.local_state == "pending":
                    ui.label("changes waiting to sync").classes("text-xs text-warning")
                elif self.engine.commands.not_created(ticket):
                    self._not_created()
                elif ticket.local_state == "failed":
                    ui.label(f"Your last change was not accepted: {ticket.error or 'refused by the server'}").classes(
                        "text-xs text-negative"
                    ).props('data-testid="ticket-error"').mark("ticket-error")
                if self.staff:
                    self._controls(ticket)
                else:
                    ui.badge(ticket.status, color="primary").props("outline")
            if self.staff:  # the agent workspace (issue 14): SLA, tags, snooze
                # wraps in a narrow window: "Snoozed until tomorrow 09:00" goes under the tags, never squeezed
                with ui.row().classes("w-full items-center gap-2").mark("staff-line"):
                    ws = self.engine.workspace
                    sla_badge(ws.sla_of([self.ticket_id]).get(self.ticket_id), long=True, calendar=calendar_of(ws))
                    self.tag_editor = TagEditor(self.engine, self.ticket_id)
                    ui.space()
                    SnoozeButton(self.engine, self.ticket_id, on_done=self.redraw_header)

    def _not_created(self) -> None:
        """A new ticket the server refused for its id (another's ticket holds it): said plainly, with the way to
        keep what was written (sync/commands.py ``send_as_new_ticket``)."""
        ui.label("Not created: the server holds another ticket under this ticket's id.").classes(
            "text-xs text-negative"
        ).props('data-testid="ticket-error"').mark("ticket-error")
        ui.button("Send as a new ticket", on_click=self._send_as_new_ticket).props(
            'flat dense size=sm color=primary no-caps data-testid="send-as-new-ticket"'
        ).mark("send-as-new-ticket")

    def _send_as_new_ticket(self) -> None:
        try:
            ticket = self.engine.commands.send_as_new_ticket(self.ticket_id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "send it as a new ticket"), type="warning")
            self.redraw_header()
            return
        if self.on_open is not None:
            self.on_open(str(ticket.id))

    def redraw_header(self) -> None:
        """Draw the header again even if its key is unchanged: after the agent used one of its controls, whose
        element may show a choice the cache did not take."""
        self._header_key = None
        self.refresh_header()

    def _controls(self, ticket: Ticket) -> None:
        ui.select(
            {s: s.title() for s in STATUSES},
            value=ticket.status,
            label="Status",
            on_change=lambda e: self._update(status=e.value),
        ).props('dense outlined options-dense data-testid="ticket-status"').mark("ticket-status").classes(
            "w-32 sc-narrow-select"
        )
        ui.select(
            {p: p.title() for p in PRIORITIES},
            value=ticket.priority,
            label="Priority",
            on_change=lambda e: self._update(priority=e.value),
        ).props('dense outlined options-dense data-testid="ticket-priority"').mark("ticket-priority").classes(
            "w-32 sc-narrow-select"
        )
        agents = {str(a.id): a.display_name for a in self.engine.cache.agents()}
        options = {"": "Unassigned", **agents}
        ui.select(
            options,
            value=ticket.assignee_id or "",
            label="Assignee",
            on_change=lambda e: self._update(assignee_id=e.value or None),
        ).props('dense outlined options-dense data-testid="ticket-assignee"').mark("ticket-assignee").classes(
            "w-40 sc-narrow-assignee"
        )
        if ticket.assignee_id == self.user.id:
            ui.button("Release", on_click=lambda: self._act(self.engine.commands.release)).props(
                'flat no-caps dense data-testid="release"'
            ).mark("release")
        else:
            ui.button("Take", on_click=lambda: self._act(self.engine.commands.take)).props(
                'unelevated no-caps dense data-testid="take"'
            ).mark("take").classes("px-3")

    def _update(self, **changes: Any) -> None:
        current = self.ticket
        if current is not None and all(getattr(current, k) == v for k, v in changes.items()):
            return  # the select echoed our own refresh
        try:
            self.engine.commands.update_ticket(self.ticket_id, **changes)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "change the ticket"), type="negative")
        self.redraw_header()

    def _act(self, action: Callable[[str], Ticket]) -> None:
        try:
            action(self.ticket_id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "change the assignee"), type="negative")
        self.redraw_header()

    def show_viewers(self, viewers: tuple[str, ...]) -> None:
        self.viewers = tuple(viewers)
        self._show_viewers()

    def _show_viewers(self) -> None:
        if not hasattr(self, "viewers_row"):
            return
        self.viewers_row.clear()
        with self.viewers_row:
            if self.viewers:
                ui.icon("visibility", size="16px").classes("opacity-60")
                by_name = {p.display_name: str(p.id) for p in self.profiles.values()}
                for name in self.viewers[:4]:  # presence carries names; the cached profiles know their pictures
                    uid = by_name.get(name)
                    Avatar(name, uid, size="24px", image=self.engine.avatars.file(uid) if uid else None)
                ui.label("also viewing").classes("text-xs opacity-60").props('data-testid="viewers"').mark("viewers")

    # footer: typing and seen ------------------------------------------------------------------------------
    def on_typing(self, user_id: str, name: str, at: str | None = None, after_at: str | None = None) -> None:
        if user_id != self.user.id:
            self.typing.typing(user_id, name, time.monotonic(), at=at, after_at=after_at)

    def _expire_typing(self) -> None:
        if self.typing.expires and not self.typing.names(time.monotonic()):
            self._show_footer()

    def _show_footer(self) -> None:
        names = self.typing.names(time.monotonic())
        seen_of = self.ticket if self.staff else None  # staff see the customer's read marker
        marker = self.engine.cache.read_marker(self.ticket_id, seen_of.customer_id) if seen_of else None
        key = footer_key(names, marker, seen_of)
        if key == self._footer_key:
            return  # drawn already, identical
        self._footer_key = key
        self.footer.clear()
        with self.footer:
            if names:
                ui.spinner("dots", size="16px")
                verb = "is" if len(names) == 1 else "are"
                ui.label(f"{', '.join(names)} {verb} typing…").props('data-testid="typing"').mark("typing")
            ui.space()
            if seen_of is not None:
                customer = seen_of.customer_name or "The customer"
                read_at, last = fmt.as_datetime(marker), fmt.as_datetime(seen_of.last_message_at)
                if read_at is not None and last is not None and read_at >= last:
                    ui.icon("done_all", size="14px", color="primary")
                    ui.label(f"Seen by {customer} · {fmt.clock(marker)}").props('data-testid="seen"').mark("seen")
                elif marker:
                    ui.label(f"{customer} last read at {fmt.clock(marker)}").props('data-testid="seen"').mark("seen")

    # composer -------------------------------------------------------------------------------------------
    def take_draft(self) -> None:
        """An edit the server did not take was put back into this ticket's draft: show it in the composer."""
        if self.composer is not None:
            self.composer.take_draft(self.engine.cache.draft(self.ticket_id))

    def _build_composer(self) -> None:
        self.composer_slot.clear()
        ticket = self.ticket
        with self.composer_slot:
            if ticket is not None and ticket.status == "closed" and not self.staff:
                ui.label("This ticket is closed. Open a new ticket if you need more help.").classes(
                    "text-sm opacity-70 p-4"
                )
                self.composer = None
                return
            draft = self.engine.cache.draft(self.ticket_id)
            self.composer = Composer(
                self.composer_state,
                agent=self.staff,
                draft=draft,
                on_send=self.send,
                on_draft=self._save_draft,
                on_typing=self._typing,
                echo_slot=self.thread.echo,
            )
            self.tray = AttachmentTray.into(self.composer, self, self.engine.cache.files_dir, self.ticket_id)
            if self.staff:  # '/' opens the canned replies (components/canned_picker.py)
                self.canned = CannedPicker(self.engine, self.composer, self._canned_context)
                self.canned.on_picked = lambda reply: stage_files(self.engine, self.tray, reply)
                with self.composer.send_button.parent_slot.parent:  # type: ignore[union-attr]
                    picker_button(self.canned).move(target_index=1)
            if self.staff:  # @agent in internal notes (components/mentions.py)
                self.mention_picker = MentionPicker(
                    self.engine, self.user, self.composer.input, lambda: self.composer_state.internal
                )

    def _canned_context(self) -> dict[str, str]:
        ticket = self.ticket
        if ticket is None:
            return context_for("", self.user.display_name, self.ticket_id, "")
        customer = ticket.customer_name or self.name_of(ticket.customer_id)
        return context_for(customer, self.user.display_name, str(ticket.id), str(ticket.subject))

    def _mode_changed(self) -> None:
        if self.composer is not None:
            self.composer.mode_changed()
            if self.staff:
                self.mention_picker.update_for(self.composer_state.text)

    def _save_draft(self, text: str) -> None:
        background_tasks.create(self.engine.commands.asave_draft(self.ticket_id, text), name="save draft")

    def _typing(self, active: bool) -> None:
        if active and not self.guard.started:
            self.guard.start(self.engine.cache.thread(self.ticket_id, limit=20))
        # an internal note is for staff: the customer, on the same ticket channel, must not see "typing"
        if active and not (self.staff and self.composer_state.internal):
            background_tasks.create(self.engine.presence.send_typing(self.ticket_id), name="typing")
        else:
            self.engine.presence.stop_typing(self.ticket_id)

    def send(self, text: str, resolve: bool, *, anyway: bool = False) -> bool:
        handled = time.time()  # the hop trace's "handler" stamp (sync/hops.py)
        newer = [] if anyway else self.guard.newer(self.engine.cache.thread(self.ticket_id, limit=20))
        if newer:
            self.thread.clear_echo()
            CollisionDialog(
                crossed_text(newer, self.name_of),
                on_send=lambda: self._send_anyway(text, resolve),
                on_review=self._review,
            )
            return False
        try:
            internal = self.staff and self.composer_state.internal
            files = self.tray.files()
            text = text if text.strip() or not files else caption([f.name for f in files])
            message = self.engine.commands.send_message(
                self.ticket_id, text, internal=internal, files=[f.path for f in files]
            )
        except ValueError as exc:
            self.thread.clear_echo()
            ui.notify(fmt.plain_error(exc, "send the message"), type="negative")
            return False
        hops.mark("handler", str(message.id), at=handled)
        self.guard.reset()
        self.tray.sent(files)
        self.thread.append(message)
        self.thread.clear_echo()
        ui.run_javascript(f"getHtmlElement({self.thread.id}).scrollTop = 0")
        if resolve:
            self._update(status="resolved")
        return True

    def _send_anyway(self, text: str, resolve: bool) -> None:
        if self.send(text, resolve, anyway=True) and self.composer is not None:
            self.composer.sent()

    def _review(self) -> None:
        self.guard.start(self.engine.cache.thread(self.ticket_id, limit=20))  # what is on screen now counts as seen
        ui.run_javascript(f"getHtmlElement({self.thread.id}).scrollTop = 0")
        if self.composer is not None:
            self.composer.focus()

    def on_messages(self, message_ids: frozenset[str]) -> None:
        self.thread.refresh(message_ids)
        for message_id in message_ids:  # whoever just wrote has stopped typing, whatever got lost on the way
            message = self.engine.cache.message(message_id)
            if message is not None:
                self.typing.stopped(message.sender_id, canonical_ts(message.created_at))
        self._show_footer()

    def on_avatars(self, user_ids: frozenset[str]) -> None:
        self.profiles = self.engine.cache.profiles()
        self.thread.refresh_avatars(user_ids)
        self._show_viewers()

    def on_ticket_changed(self) -> None:
        before = self.ticket.status if self.ticket else None
        self.thread.catch_up()  # the first sync's move names tickets, not their messages
        self.thread.refresh_receipts()
        self.refresh_header()
        self._show_footer()
        if self.ticket is not None and self.ticket.status != before and not self.staff:
            self._build_composer()
