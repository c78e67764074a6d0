"""One chat message: own messages on the right with their delivery and read state, others on the left with avatar
and name; internal notes drawn as amber notes with a lock so nobody mistakes them for a reply; an edited
message says "edited", a deleted one shows only "Message deleted" (the server cleared its text)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nicegui import ui

from supportchat_app import fmt
from supportchat_app.components import mentions
from supportchat_app.components.avatar import Avatar
from supportchat_app.components.message_actions import MessageActions
from supportchat_app.components.receipts import ReceiptLine, ThreadReceipts
from sync.models import Message

if TYPE_CHECKING:
    from supportchat_app.components.attachment_view import AttachmentView


class DayHeader(ui.row):
    def __init__(self, label: str) -> None:
        super().__init__(align_items="center")
        self.classes("w-full my-2 gap-2 no-wrap")
        with self:
            ui.element("div").classes("grow h-px bg-current opacity-15")
            ui.label(label).classes("text-xs font-medium opacity-60 whitespace-nowrap").props('data-testid="day"').mark(
                "day"
            )
            ui.element("div").classes("grow h-px bg-current opacity-15")


class MessageBubble(ui.row):
    """Renders `message`; `show(message)` updates the state line in place (pending → sent / failed)."""

    def __init__(
        self,
        message: Message,
        *,
        own: bool,
        sender_name: str,
        on_retry: Callable[[str], None],
        on_discard: Callable[[str], None],
        on_resend: Callable[[str], None],
        receipts: ThreadReceipts,
        name_of: Callable[[str], str],
        actions: MessageActions,
        avatar: Path | None = None,
    ) -> None:
        super().__init__(wrap=False)
        self.receipts, self.name_of, self.actions, self.sender_name = receipts, name_of, actions, sender_name
        self.avatar_image = avatar
        self.message_id = str(message.id)
        self.own = own
        self._on_retry, self._on_discard, self._on_resend = on_retry, on_discard, on_resend
        self.classes("w-full gap-2 no-wrap items-end " + ("justify-end" if own else "justify-start"))
        self.props(f'data-message-id="{self.message_id}"').mark("bubble", f"msg-{self.message_id}")
        self.files: AttachmentView | None = None  # its files: attachment_view.attach_files sets draw_files
        self.draw_files: Callable[[Message], None] | None = None
        self._build(message)

    def _build(self, message: Message) -> None:
        own, sender_name, internal = self.own, self.sender_name, message.is_internal
        self.state = ""
        self.message = message
        self.body: ui.label | None = None
        with self:
            if not own:
                self.avatar = Avatar(sender_name, str(message.sender_id), image=self.avatar_image)
            self.column = ui.column().classes("gap-0 max-w-[72%] " + ("items-end" if own else "items-start"))
            with self.column:
                with ui.row(align_items="center").classes("gap-1 text-xs opacity-70 no-wrap px-1"):
                    if internal:
                        ui.icon("lock", size="14px").classes("text-amber-9")
                        ui.label("Internal note").classes("font-medium text-amber-9")
                        ui.label("·")
                    ui.label("You" if own else sender_name).classes("font-medium")
                    ui.label(fmt.clock(message.created_at))
                    # "edited" (staff open the revisions) and the Edit/Delete menu (components/message_actions.py)
                    self.actions.header(message, lambda: self.body)
                if message.deleted_at:
                    # the server cleared the text; the bubble keeps who and when, never the content
                    ui.label("Message deleted").classes(
                        "sc-bubble px-3 py-2 rounded-2xl italic opacity-60 border border-current"
                    ).props('data-testid="deleted"').mark("deleted")
                    self.state_row = ui.row()
                    return
                body = self.body = ui.label(mentions.display(str(message.content))).classes(
                    "sc-bubble px-3 py-2 rounded-2xl whitespace-pre-wrap"
                )
                if internal:
                    body.classes("sc-note").mark("note")
                elif own:
                    body.classes("sc-own")
                else:
                    body.classes("sc-other")
                self.files, self.files_slot = None, ui.column().classes("gap-0")
                if self.draw_files is not None:
                    self.draw_files(message)
                self.state_row = ui.row(align_items="center").classes("gap-1 text-xs no-wrap px-1")
                self.receipt_line = ReceiptLine()
        self.show(message)

    def tell_left_out(self, names: Sequence[str]) -> None:
        """Say under the bubble which files it went without (``send_as_new``: no longer on this device)."""
        with self.column:
            ui.label(f"Sent without {', '.join(names)}: no longer on this device").classes(
                "text-xs text-warning px-1"
            ).props('data-testid="left-out"').mark("left-out")

    def _keep_editor(self, message: Message) -> bool:
        """An edit box open in this bubble is not drawn again under the agent (the browser's newest keystrokes,
        not yet at the server, would go with the old box): the message's new text goes into the hidden label, and
        the bubble is drawn again once the box closes. A deleted message takes the box away."""
        editor = self.actions.open_editor(self.message_id)
        if editor is None or editor.body is not self.body or self.body is None or message.deleted_at:
            return False
        self.body.set_text(mentions.display(str(message.content)))
        editor.after_close = self._redraw_from_cache
        return True

    def _redraw_from_cache(self) -> None:
        if (current := self.actions.engine.cache.message(self.message_id)) is not None and not self.is_deleted:
            self.show(current)

    def show(self, message: Message) -> None:
        if (message.content, message.edited_at, message.deleted_at) != (
            self.message.content,
            self.message.edited_at,
            self.message.deleted_at,
        ):  # edited or deleted since it was drawn: draw it again
            if self._keep_editor(message):
                return
            self.clear()
            self._build(message)
            return
        self.message = message
        if message.deleted_at:
            return
        if self.files is not None:
            self.files.show(message)
        # queued / sent / read on own messages, "read by" on others' for staff (components/receipts.py)
        self.receipt_line.show(self.receipts.of(message), staff=self.receipts.staff, name_of=self.name_of)
        if not self.own:
            return
        state, error = message.local_state, message.error
        if state == self.state and state != "failed":
            return
        self.state = state
        self.state_row.clear()
        with self.state_row:
            if state == "failed":
                self._failed(message, error)

    def _failed(self, message: Message, error: str | None) -> None:
        """The failed state's line: why, and what is left to do (send as new, retry, discard)."""
        ui.icon("error", size="14px", color="negative")
        commands = self.actions.engine.commands
        resend = commands.refused_for_its_id(message)  # the same id is refused again
        with_ticket = commands.held_with_its_ticket(message)  # goes with its ticket ("Send as a new ticket")
        reason = "the server holds another message under its id" if resend else str(error or "refused")
        if with_ticket:
            reason = "its ticket was not created (see above)"
        ui.label(f"Not sent: {reason}").classes("text-negative").props('data-testid="state-failed"').mark(
            "state-failed"
        )
        if resend:
            ui.button("Send as a new message", on_click=lambda: self._on_resend(self.message_id)).props(
                'flat dense size=sm color=primary no-caps data-testid="send-as-new"'
            ).mark("send-as-new")
        elif not with_ticket:
            ui.button("Retry", on_click=lambda: self._on_retry(self.message_id)).props(
                'flat dense size=sm color=primary no-caps data-testid="retry"'
            ).mark("retry")
        ui.button("Discard", on_click=lambda: self._on_discard(self.message_id)).props(
            'flat dense size=sm color=negative no-caps data-testid="discard"'
        ).mark("discard")
