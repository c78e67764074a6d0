"""Mentions (issue 14, item 8): ``@agent`` in an internal note, the agent told, and their Mentions view.

- Writing: in "Internal note" mode, typing ``@`` and the start of a name offers the staff whose name matches;
  ↑/↓ move through them, Enter or Tab picks, Esc (or ✕) closes the offer until the next ``@`` — keys decided in
  the browser, in the capture phase around the composer, so Enter picks instead of sending; the mouse works too.
  Picking one writes ``@[Name](<user id>)`` — the syntax the server parses (the messages trigger,
  ``messages_after_insert_rules`` since migration 20261210000100, fills ``public.mentions`` and queues the email the
  notify worker sends). Bubbles show it as ``@Name`` (``display``).
- Being mentioned: ``MentionsButton`` in the header counts unseen mentions; a new one (pulled or live) gives
  a toast and a desktop notification (throttled per ticket and colleague, supportchat_app/notifier.py: what is
  held back comes as one summary that opens the Mentions view); the button opens the Mentions view — newest first,
  unseen marked — and opening one opens its ticket and marks it seen (through the outbox, so offline too).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from nicegui import background_tasks, ui
from nicegui.events import GenericEventArguments

from supportchat_app import fmt
from supportchat_app.notifier import Throttle, notifier, raise_window
from sync import events
from sync.models import LocalUser, Profile, mentions_shown

if TYPE_CHECKING:
    from sync.engine import SyncEngine

# "@" and the start of a name (names have spaces), right before the caret
TYPED = re.compile(r"(?:^|\s)@([^\n@\[\]()]{0,40})$")
# the picker's keys while it is shown, caught before the composer's own (Enter would send): arrows move the
# highlight in the page, Enter/Tab send the highlighted person's id, Esc sends '' (close)
_KEYS_JS = """(e) => {
  if (e.isComposing || e.keyCode === 229 || !e.target.matches('textarea')) return;
  const picker = document.getElementById('c%(picker)s');
  if (!picker || picker.offsetParent === null) return;
  const options = [...picker.querySelectorAll('[data-testid=mention-option]')];
  if (!options.length) return;
  let at = Math.max(0, options.findIndex((o) => o.classList.contains('sc-mention-active')));
  const plain = !e.shiftKey && !e.ctrlKey && !e.metaKey && !e.altKey;
  if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && plain) {
    at = (at + (e.key === 'ArrowDown' ? 1 : options.length - 1)) %% options.length;
    options.forEach((o, i) => o.classList.toggle('sc-mention-active', i === at));
  } else if ((e.key === 'Enter' || e.key === 'Tab') && plain) emit(options[at].dataset.userId);
  else if (e.key === 'Escape') emit('');
  else return;
  e.preventDefault(); e.stopPropagation();
}"""
ui.add_css(
    ".sc-mention-active { outline: 2px solid currentColor; outline-offset: 1px; font-weight: 600; }", shared=True
)


display = mentions_shown


def token(profile: Profile) -> str:
    name = profile.display_name.replace("]", "").replace("\n", " ")[:200] or "agent"
    return f"@[{name}]({profile.id}) "


def suggestions(text: str, staff: list[Profile], me: str, limit: int = 6) -> tuple[str, list[Profile]] | None:
    """When the text ends in ``@pre``, the typed prefix and the staff (not me) whose name contains it."""
    found = TYPED.search(text)
    if found is None:
        return None
    prefix = found.group(1).lower()
    matches = [p for p in staff if p.id != me and prefix in p.display_name.lower()]
    return found.group(1), sorted(
        matches, key=lambda p: (not p.display_name.lower().startswith(prefix), p.display_name.lower())
    )[:limit]


class MentionPicker(ui.row):
    """Chips under the composer offering staff to mention while an internal note ends in ``@name``."""

    def __init__(self, engine: SyncEngine, user: LocalUser, textarea: ui.textarea, is_note: Callable[[], bool]) -> None:
        super().__init__(wrap=True)
        self.engine, self.user, self.textarea, self.is_note = engine, user, textarea, is_note
        self.typed = ""
        self.people: list[Profile] = []
        self.dismissed: int | None = None  # where the "@" is whose offer Esc closed
        self.classes("w-full gap-1 px-4 items-center").props('data-testid="mention-picker"').mark("mention-picker")
        textarea.on_value_change(lambda e: self.update_for(str(e.value or "")))
        host = textarea.parent_slot.parent if textarea.parent_slot else textarea  # an element around the textarea
        host.on("keydown.capture", self._key, js_handler=_KEYS_JS % {"picker": self.id})
        self.set_visibility(False)

    def update_for(self, text: str) -> None:
        found = suggestions(text, self.engine.cache.agents(), self.user.id) if self.is_note() else None
        at = len(text) - len(found[0]) - 1 if found else None
        if at != self.dismissed:
            self.dismissed = None
        shown = bool(found and found[1]) and self.dismissed is None
        people = found[1] if found and shown else []
        same = shown and self.visible and [p.id for p in people] == [p.id for p in self.people]
        self.typed, self.people = (found[0] if found and shown else ""), people
        if same:  # more of the name typed, the same people: keep the chips (and the highlight the keys moved)
            return
        self.clear()
        self.set_visibility(shown)
        if not shown:
            return
        with self:
            ui.label("Mention:").classes("text-xs opacity-60")
            for i, person in enumerate(self.people):
                ui.chip(
                    person.display_name, icon="alternate_email", on_click=lambda p=person: self.pick(self.typed, p)
                ).props(
                    f'dense clickable outline color=amber-9 data-testid="mention-option" data-user-id="{person.id}"'
                ).mark("mention-option", f"mention-option-{i}").classes("sc-mention-active" if i == 0 else "")
            ui.button(icon="close", on_click=self.close).props(
                'flat round dense size=xs data-testid="mention-close"'
            ).mark("mention-close").tooltip("Close (Esc)")

    def _key(self, e: GenericEventArguments) -> None:
        """Enter/Tab picked someone (their id), or Esc closed the offer ('')."""
        chosen = next((p for p in self.people if p.id == e.args), None)
        if chosen is not None:
            self.pick(self.typed, chosen)
        elif e.args == "":
            self.close()

    def close(self) -> None:
        """Hide the offer until another ``@`` is typed."""
        text = str(self.textarea.value or "")
        self.dismissed = len(text) - len(self.typed) - 1 if self.people else None
        self.typed, self.people = "", []
        self.clear()
        self.set_visibility(False)
        self.textarea.run_method("focus")

    def pick(self, typed: str, person: Profile) -> None:
        text = str(self.textarea.value or "")
        cut = len(text) - len(typed) - 1  # drop "@" + what was typed of the name
        self.textarea.value = text[:cut] + token(person)
        self.textarea.run_method("focus")


class MentionsButton(ui.button):
    """Header button: unseen mentions count; opens the Mentions view; notifies of new ones."""

    def __init__(self, engine: SyncEngine, on_open: Callable[[str], None]) -> None:
        super().__init__(icon="alternate_email", on_click=self.open_view)
        self.engine, self._on_open = engine, on_open
        self.props('flat round dense data-testid="mentions"').mark("mentions").tooltip("Mentions")
        with self:
            self.badge = (
                ui.badge("", color="negative")
                .props('floating rounded data-testid="mentions-count"')
                .mark("mentions-count")
            )
        self.known = {m.id for m in engine.workspace.mentions()}  # only mentions arriving from now on notify
        self.told = Throttle()  # a colleague mentioning fast: one desktop notification per quiet period, and a summary
        self.dialog = ui.dialog()
        ui.timer(1.0, self._tell_held)
        self.show_count()

    def show_count(self) -> None:
        unseen = len(self.engine.workspace.mentions(unseen_only=True))
        self.badge.set_text(str(unseen))
        self.badge.set_visibility(unseen > 0)

    def on_event(self, event: events.Event) -> None:
        """Engine events (subscribed by the page): mentions pulled or streamed in."""
        if self.is_deleted or not (isinstance(event, events.WorkspaceChanged) and "mentions" in event.tables):
            return
        mentions = self.engine.workspace.mentions()
        fresh = [m for m in mentions if m.id not in self.known and m.seen_at is None]
        self.known |= {m.id for m in mentions}
        self.show_count()
        if self.dialog.value:
            self._draw()
        for index, mention in enumerate(fresh):
            told = self.told.allow(mention.ticket_id, mention.author_id)  # else held: told in the summary
            if index >= 3 and not told:
                continue
            title, body = self._describe(mention.author_id, mention.ticket_id, mention.message_id)
            if index < 3:
                ui.notify(f"{title}: {body}", type="info", multi_line=True)
            if told:
                background_tasks.create(notifier.notify(title, body), name="mention notification")

    def _tell_held(self) -> None:
        """The mentions the throttle held back, as one notification once its quiet period ended."""
        if (held := self.told.summary()) is not None:
            told = notifier.notify(held.text("mention"), "Click to see them.", on_clicked=self._opened_from_summary)
            background_tasks.create(told, name="mention notification")

    def _opened_from_summary(self) -> None:
        raise_window()
        if not self.is_deleted:
            with self:
                self.open_view()

    def _describe(self, author_id: str, ticket_id: str, message_id: str) -> tuple[str, str]:
        profile = self.engine.cache.profiles().get(author_id)
        ticket = self.engine.cache.ticket(ticket_id)
        message = self.engine.cache.message(message_id)
        title = f"{profile.display_name if profile else 'Someone'} mentioned you"
        body = display(message.content)[:140] if message else (ticket.subject if ticket else "in a ticket")
        return title, body

    def open_view(self) -> None:
        self._draw()
        self.dialog.open()

    def _draw(self) -> None:
        self.dialog.clear()
        mentions = self.engine.workspace.mentions()
        with self.dialog, ui.card().classes("w-[560px] max-w-full").props('data-testid="mentions-view"'):
            ui.label("Mentions").classes("text-lg font-medium")
            if not mentions:
                ui.label("Nobody mentioned you yet.").classes("text-sm opacity-60")
            with ui.list().classes("w-full").props("dense"):
                for mention in mentions[:50]:
                    title, body = self._describe(mention.author_id, mention.ticket_id, mention.message_id)
                    ticket = self.engine.cache.ticket(mention.ticket_id)
                    with (
                        ui.item(on_click=lambda m=mention: self._open(m.id, m.ticket_id))
                        .classes("rounded w-full" + ("" if mention.seen_at else " sc-selected"))
                        .props('data-testid="mention-row"')
                        .mark("mention-row", *(["mention-unseen"] if not mention.seen_at else []))
                    ):
                        with ui.item_section():
                            ui.label(f"{title} · {ticket.subject if ticket else 'a ticket'}").classes(
                                "text-sm font-medium"
                            )
                            ui.label(body).classes("text-xs opacity-70 ellipsis-2-lines")
                        with ui.item_section().props("side"):
                            ui.label(fmt.ago(mention.created_at)).classes("text-xs opacity-60")

    def _open(self, mention_id: str, ticket_id: str) -> None:
        self.dialog.close()
        try:
            self.engine.workspace.mark_mention_seen(mention_id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "mark the mention seen"), type="warning")
        self.show_count()
        self._on_open(ticket_id)
