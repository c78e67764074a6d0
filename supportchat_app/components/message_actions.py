"""Edits and deletes on the thread's bubbles (issue 13, issue 10 item 4): the "edited" mark (staff click it for
the revisions), the message menu on bubbles the user may still change (Edit in place with Save/Cancel, Esc
cancels; Delete after a confirmation), and the revisions dialog. The editor's text is kept in the cache as it is
typed (``cache.edit_drafts``, sync/cache/edit_drafts.py) and the editor reopens with it when the thread is drawn
again (a crash, a restart, another ticket in between); Save or Cancel drops it, and a message that can no
longer be edited drops it too. Everything goes through
``engine.history`` (sync/history.py): the menu is offered only while the server would allow it (own message,
ticket not closed, within the project's edit window; an admin deletes any message), and is checked again
when opened, since the window closes while the thread stays open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nicegui import background_tasks, events, ui

from supportchat_app import fmt
from sync.models import Message

if TYPE_CHECKING:
    from sync.engine import SyncEngine

DRAFT_EVERY = 0.5  # seconds between looks at the editor's text for the cache (kept only when it changed)

# the bubble's open editor takes the focus (MID: the message's id)
_FOCUS_EDITOR_JS = (
    """() => document.querySelector('[data-message-id="MID"] textarea[data-testid=edit-input]')?.focus()"""
)
# as in the composer: Enter saves (with Ctrl/Cmd too), Shift+Enter is a new line, Esc cancels; decided in the
# browser so the saving Enter never reaches the text box. While an input method composes (isComposing; WebKit's
# composition-ending keys have only keyCode 229) Enter and Esc are the input method's: neither saves nor cancels
_KEYS_JS = """(e) => {
  if (e.isComposing || e.keyCode === 229) return;
  if (e.key === 'Escape') emit('Escape');
  else if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); emit('Enter'); }
}"""
EDIT_HINT = "Enter to save · Shift+Enter new line · Esc to cancel"


class MessageActions:
    """The thread's edit/delete/revisions behaviour, one per thread, handed to every bubble."""

    def __init__(self, engine: SyncEngine, name_of: Callable[[str], str]) -> None:
        self.engine, self.name_of = engine, name_of
        user = engine.user
        self.staff = user is not None and user.is_staff
        self._drafts: dict[str, str] | None = None  # unsaved edits of this thread's ticket, read once
        # open editors by message: a bubble drawn anew while one is open (the server's copy of the message
        # arrived, another edit landed) gets it back with the text typed so far
        self._editing: dict[str, InlineEditor] = {}

    def _draft_of(self, message: Message) -> str | None:
        if self._drafts is None:
            self._drafts = self.engine.cache.edit_drafts.of_ticket(message.ticket_id)
        return self._drafts.pop(message.id, None)

    # the header: "edited" and the menu -------------------------------------------------------------------
    def header(self, message: Message, body: Callable[[], ui.label | None]) -> None:
        """Inside a bubble's header row: the "edited" mark and, where allowed, the message menu. ``body`` gives
        the bubble's text label (the inline editor takes its place)."""
        if message.edited_at and not message.deleted_at:
            ui.label("·")
            mark = ui.label("edited").props('data-testid="edited"').mark("edited")
            mark.tooltip(
                f"edited at {fmt.clock(message.edited_at)}" + (" · show earlier versions" if self.staff else "")
            )
            if self.staff:
                mark.classes("cursor-pointer underline decoration-dotted").on(
                    "click", lambda: self.show_revisions(message)
                )
        draft = self._draft_of(message)
        editor = self._editing.get(message.id)
        if editor is not None and editor.is_deleted:  # the bubble was drawn anew under an open editor
            del self._editing[message.id]
            if not editor.closing:
                draft = editor.text
        if draft is not None:  # an edit left unsaved: reopen it once the bubble is built, or let it go
            if not message.deleted_at and self._may_edit(message):
                ui.timer(0, lambda: self.start_edit(message.id, body(), draft), once=True)
            else:
                self._forget(message.id)
        if message.deleted_at or not (self._may_edit(message) or self._may_delete(message)):
            return
        with (
            ui.button(icon="more_horiz")
            .props('flat round dense size=xs aria-label="Message actions" data-testid="message-menu"')
            .mark("message-menu") as button
        ):
            menu = ui.menu().props("auto-close")
            # the editor's autofocus loses to the menu, which keeps the focus until its closing ends: then Edit's
            # text box takes it (Esc, Enter and typing work without a click into it)
            menu.on("hide", js_handler=_FOCUS_EDITOR_JS.replace("MID", str(message.id)))
        self._fill(menu, message.id, body)
        button.on_click(lambda: self._fill(menu, message.id, body))  # again on opening: the window may have closed

    def open_editor(self, message_id: str) -> InlineEditor | None:
        """The edit box open on this message (not being closed by Save or Cancel), if any."""
        editor = self._editing.get(message_id)
        return editor if editor is not None and not editor.is_deleted and not editor.closing else None

    def _may_edit(self, message: Message) -> bool:
        return self.engine.history.may_edit(message)

    def _may_delete(self, message: Message) -> bool:
        return self.engine.history.may_delete(message)

    def _fill(self, menu: ui.menu, message_id: str, body: Callable[[], ui.label | None]) -> None:
        """Build the menu as the server would allow it now (the edit window may have closed since rendering)."""
        menu.clear()
        message = self.engine.cache.message(message_id)
        with menu:
            if message is not None and self._may_edit(message):
                ui.menu_item("Edit", on_click=lambda: self.start_edit(message_id, body())).props(
                    'data-testid="menu-edit"'
                ).mark("menu-edit")
            if message is not None and self._may_delete(message):
                ui.menu_item("Delete", on_click=lambda: self.confirm_delete(message_id)).props(
                    'data-testid="menu-delete"'
                ).mark("menu-delete").classes("text-negative")
            if message is None or not (self._may_edit(message) or self._may_delete(message)):
                ui.menu_item("This message can no longer be changed").props("disable")

    # edit in place -----------------------------------------------------------------------------------------
    def start_edit(self, message_id: str, body: ui.label | None, text: str | None = None) -> None:
        """Open the editor in place of the bubble's text, with ``text`` (an unsaved edit) or the message's."""
        message = self.engine.cache.message(message_id)
        if body is None or message is None or body.parent_slot is None or body.parent_slot.parent.is_deleted:
            return
        open_now = self._editing.get(message_id)
        if open_now is not None and not open_now.is_deleted and open_now.body is body:
            return  # already open in this bubble: Edit chosen again, or a redraw's reopening racing the agent's click
        self._editing[message_id] = InlineEditor(
            message, body, on_save=self._save, on_draft=self._keep, on_close=self._forget, text=text
        )

    def _save(self, message_id: str, text: str) -> bool:
        try:
            self.engine.history.edit_message(message_id, text)
        except ValueError as exc:
            ui.notify(f"Not saved: {exc}.", type="warning")
            return False
        return True

    def _keep(self, message: Message, text: str) -> None:
        background_tasks.create(
            self.engine.cache.edit_drafts.asave(message.id, message.ticket_id, text), name="save edit draft"
        )

    def _forget(self, message_id: str) -> None:
        self._editing.pop(message_id, None)
        background_tasks.create(self.engine.cache.edit_drafts.aclear(message_id), name="clear edit draft")

    # delete ------------------------------------------------------------------------------------------------
    def confirm_delete(self, message_id: str) -> None:
        with ui.dialog() as dialog, ui.card().classes("min-w-[320px]").props('data-testid="delete-dialog"'):
            ui.label("Delete this message?").classes("text-base font-medium")
            ui.label("It is removed for everyone; the thread shows that a message was deleted.").classes(
                "text-sm opacity-70"
            )
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Cancel", on_click=dialog.close).props("flat no-caps")
                ui.button("Delete", on_click=lambda: self._delete(message_id, dialog)).props(
                    'unelevated no-caps color=negative data-testid="confirm-delete"'
                ).mark("confirm-delete")
        dialog.on("hide", dialog.delete)
        dialog.open()

    def _delete(self, message_id: str, dialog: ui.dialog) -> None:
        dialog.close()
        try:
            self.engine.history.delete_message(message_id)
        except ValueError as exc:
            ui.notify(f"Not deleted: {exc}.", type="warning")

    # revisions ----------------------------------------------------------------------------------------------
    def show_revisions(self, message: Message) -> None:
        """Staff: every earlier text of the message, oldest first, each with when it was replaced and by whom."""
        revisions = self.engine.history.revisions(message.id)
        current = self.engine.cache.message(message.id) or message
        with (
            ui.dialog() as dialog,
            ui.card().classes("min-w-[360px] max-w-[560px]").props('data-testid="revisions"').mark("revisions"),
        ):
            ui.label("Earlier versions").classes("text-base font-medium")
            ui.label(f"Sent by {self.name_of(message.sender_id)} at {fmt.clock(message.created_at)}").classes(
                "text-xs opacity-60"
            )
            with ui.column().classes("w-full gap-2 max-h-[60vh] overflow-auto"):
                if not revisions:
                    ui.label("The earlier versions have not reached this device yet.").classes("text-sm opacity-70")
                for revision in revisions:
                    with ui.column().classes("w-full gap-0").props('data-testid="revision"').mark("revision"):
                        who = self.name_of(revision.edited_by) if revision.edited_by else "the sender"
                        ui.label(f"replaced at {fmt.clock(revision.replaced_at)} by {who}").classes(
                            "text-xs opacity-60"
                        )
                        ui.label(revision.content).classes(
                            "sc-bubble sc-other px-3 py-2 rounded-2xl whitespace-pre-wrap line-through decoration-1"
                            " decoration-current/40"
                        )
                with ui.column().classes("w-full gap-0"):
                    ui.label(f"now (edited at {fmt.clock(current.edited_at)})").classes("text-xs opacity-60")
                    ui.label(current.content).classes("sc-bubble sc-other px-3 py-2 rounded-2xl whitespace-pre-wrap")
            with ui.row().classes("w-full justify-end"):
                ui.button("Close", on_click=dialog.close).props('flat no-caps data-testid="close-revisions"')
        dialog.on("hide", dialog.delete)
        dialog.open()


class InlineEditor(ui.column):
    """The bubble's text replaced by a text box with Save/Cancel, in place; Enter saves, Shift+Enter is a new line,
    Esc cancels (said under the box). The text is handed to ``on_draft`` once it rests (DRAFT_EVERY), and
    ``on_close`` runs when Save or Cancel ends it."""

    def __init__(
        self,
        message: Message,
        body: ui.label,
        on_save: Callable[[str, str], bool],
        *,
        on_draft: Callable[[Message, str], None] = lambda _m, _t: None,
        on_close: Callable[[str], None] = lambda _m: None,
        text: str | None = None,
    ) -> None:
        parent = body.parent_slot.parent if body.parent_slot is not None else None
        assert parent is not None
        with parent:
            super().__init__()
        self.body, self.message, self.message_id, self._on_save = body, message, message.id, on_save
        self._on_draft, self._on_close = on_draft, on_close
        self.closing = False  # Save or Cancel is ending it (a redraw meanwhile must not open it again)
        self.after_close: Callable[[], None] = lambda: None  # the bubble, kept as it was while the box was open
        self._kept = message.content if text is None else text
        self.classes("gap-1 min-w-[280px] w-full items-end").props('data-testid="inline-editor"').mark("inline-editor")
        self.move(parent, target_index=list(parent).index(body) + 1)
        body.set_visibility(False)
        with self:
            self.input = (
                ui.textarea(value=self._kept)
                .props('outlined autogrow dense autofocus data-testid="edit-input"')
                .mark("edit-input")
                .classes("w-full sc-input")
            )
            self.input.on("keydown", self._key, js_handler=_KEYS_JS)
            with ui.row().classes("w-full items-center gap-1 no-wrap"):
                ui.label(EDIT_HINT).classes("text-xs opacity-60 grow").props('data-testid="edit-hint"').mark(
                    "edit-hint"
                )
                ui.button("Cancel", on_click=self.cancel).props('flat dense no-caps data-testid="edit-cancel"').mark(
                    "edit-cancel"
                )
                ui.button("Save", on_click=self.save).props(
                    'unelevated dense no-caps color=primary data-testid="edit-save"'
                ).mark("edit-save")
            ui.timer(DRAFT_EVERY, self._keep_draft)

    def _key(self, e: events.GenericEventArguments) -> None:
        if e.args == "Escape":
            self.cancel()
        else:
            self.save()

    def _keep_draft(self) -> None:
        text = str(self.input.value or "")
        if text != self._kept:
            self._kept = text
            self._on_draft(self.message, text)

    @property
    def text(self) -> str:
        """What the box holds now (still readable after the bubble was drawn anew around it)."""
        return str(self.input.value or "")

    def cancel(self) -> None:
        self.closing = True
        self._on_close(self.message_id)
        if self.is_deleted:  # the bubble was drawn anew meanwhile (a saved edit redraws it): nothing left to close
            return
        self.body.set_visibility(True)
        self.delete()
        self.after_close()

    def save(self) -> None:
        text = str(self.input.value or "")
        if not text.strip():
            ui.notify("A message cannot be empty; delete it instead.", type="warning")
            return
        self.closing = True  # the save redraws the bubble at once: the editor stays closed
        if not self._on_save(self.message_id, text):
            self.closing = False  # refused (said why): still editing
            return
        if not self.body.is_deleted:
            self.body.set_text(text)
        self.cancel()
