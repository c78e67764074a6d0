"""The message composer: Reply / Internal note toggle (agents only), Enter sends, Shift+Enter is a new
line, Ctrl+Enter sends and resolves; the text is saved as the ticket's draft as it is typed. "Typing" signals
go out from the first keystroke and stop on a send, a blur or IDLE_STOP seconds without a keystroke."""

from __future__ import annotations

import time
from collections.abc import Callable

from nicegui import events, ui

from supportchat_app.state import ComposerState

# Enter is decided in the browser so the newline never reaches the textarea; the value travels with
# the event so a send never races the textarea's own value sync. The browser also draws the message at
# once (an "echo" bubble in the thread's echo slot) so the keypress shows on the next frame; the
# server's real bubble, with its pending/sent state, replaces it a round trip later. An Enter that an input method
# takes (isComposing; WebKit's composition-ending Enter has only keyCode 229) sends nothing.
_KEYDOWN_JS = """(e) => {
  if (e.key !== 'Enter' || e.shiftKey || e.isComposing || e.keyCode === 229) return;
  e.preventDefault();
  const value = e.target.value;
  const files = e.target.closest('.sc-composer').querySelector('[data-testid=pending-file]');
  if (!value.trim() && !files) return;
  emit({value: value, resolve: e.ctrlKey || e.metaKey});
  if (!value.trim()) return;
  const slot = document.getElementById('c%(echo)s');
  if (!slot) return;
  const row = document.createElement('div'), bubble = document.createElement('div');
  row.className = 'sc-echo'; row.setAttribute('data-message-id', 'echo');
  bubble.className = 'sc-bubble sc-own px-3 py-2 rounded-2xl whitespace-pre-wrap';
  bubble.textContent = value;
  row.appendChild(bubble); slot.appendChild(row);
}"""
IDLE_STOP = 3.0  # seconds without a keystroke after which the others stop seeing "typing"
DRAFT_AFTER = 1.0  # the draft is saved once the text has rested this long (or on blur), not per keystroke


class Composer(ui.column):
    def __init__(
        self,
        state: ComposerState,
        *,
        agent: bool,
        draft: str,
        on_send: Callable[[str, bool], bool],
        on_draft: Callable[[str], None],
        on_typing: Callable[[bool], None],
        echo_slot: ui.element | None = None,
    ) -> None:
        super().__init__()
        self.state, self.agent = state, agent
        self._on_send, self._on_draft, self._on_typing = on_send, on_draft, on_typing
        self._typed_at = 0.0
        self._typing = False  # whether the others were told we are typing (and not told we stopped)
        self._saved = draft  # the draft as last saved; a send clears it in the same transaction as the message
        self.has_files: Callable[[], bool] = lambda: False  # whether files wait to go with the next send
        self.classes("sc-composer w-full gap-1 px-4 pb-3 pt-2")
        with self:
            if agent:
                self.mode = (
                    ui.toggle(
                        {"reply": "Reply", "note": "Internal note"},
                        value=state.mode,
                        on_change=lambda e: state.set_mode(e.value),
                    )
                    .props("dense no-caps unelevated rounded toggle-color=primary padding='2px 12px'")
                    .classes("text-sm sc-mode-toggle")
                    .props('data-testid="composer-mode"')
                    .mark("composer-mode")
                )
            self.tray_slot = ui.column().classes("w-full gap-0")  # pending attachments (components/attachments.py)
            with ui.row(wrap=False).classes("w-full items-end gap-2 no-wrap"):
                self.tools_slot = ui.row().classes("gap-0 self-center")
                self.input = (
                    ui.textarea(value=draft, placeholder=self._placeholder(), on_change=self._changed)
                    .props('outlined autogrow dense rows=1 data-testid="composer"')
                    .mark("composer")
                    .classes("grow sc-input")
                )
                self.input.on("blur", self._blur)
                self.input.on(
                    "keydown", self._enter, js_handler=_KEYDOWN_JS % {"echo": echo_slot.id if echo_slot else "none"}
                )
                self.send_button = (
                    ui.button(icon="send", on_click=self._click)
                    .props('round unelevated color=primary data-testid="send"')
                    .mark("send")
                    .tooltip("Send (Enter)")
                )
            hint = "Enter to send · Shift+Enter new line" + (" · Ctrl+Enter send and resolve" if agent else "")
            ui.label(hint).classes("text-xs opacity-50 px-1")
        state.text = draft
        self._style_mode()
        with self:
            ui.timer(0.5, self._idle)

    def _placeholder(self) -> str:
        return "Write an internal note (only agents see it)…" if self.state.internal else "Write a reply…"

    def _style_mode(self) -> None:
        self.input.props(f'placeholder="{self._placeholder()}"')
        if self.agent:
            self.mode.props(f"toggle-color={'amber-9' if self.state.internal else 'primary'}")
        if self.state.internal:
            self.input.classes(add="sc-note-input")
        else:
            self.input.classes(remove="sc-note-input")

    def mode_changed(self) -> None:
        self._style_mode()

    def _changed(self, e: events.ValueChangeEventArguments[str | None]) -> None:
        text = e.value or ""
        self.state.text = text
        self._typed_at = time.monotonic()
        if not text:
            self._stop_typing()
            return
        self._typing = True
        self._on_typing(True)  # the engine throttles the broadcasts

    def _idle(self) -> None:
        idle = time.monotonic() - self._typed_at
        if idle >= DRAFT_AFTER:
            self._save_draft()
        if self._typing and idle > IDLE_STOP:
            self._stop_typing()

    def _blur(self) -> None:
        self._save_draft()
        self._stop_typing()

    def _save_draft(self) -> None:
        if self.state.text != self._saved:
            self._saved = self.state.text
            self._on_draft(self._saved)

    def _stop_typing(self) -> None:
        """Typing stops on send, on blur and after IDLE_STOP seconds without a keystroke."""
        if self._typing:
            self._typing = False
            self._on_typing(False)

    async def _enter(self, e: events.GenericEventArguments) -> None:
        args = e.args if isinstance(e.args, dict) else {}
        await self._submit(str(args.get("value", self.input.value or "")), bool(args.get("resolve")))

    async def _click(self) -> None:
        await self._submit(self.input.value or "", False)

    async def _submit(self, text: str, resolve: bool) -> None:
        if not text.strip() and not self.has_files():
            return
        if self._on_send(text, resolve and self.agent) is not False:
            self.sent()

    def sent(self) -> None:
        """The text went out (also after a confirmation dialog): empty the box."""
        self._stop_typing()
        self._saved = ""  # the send cleared the draft with the message
        self.input.value = ""
        self.state.text = ""

    def take_draft(self, draft: str) -> None:
        """The cache's draft grew behind the composer (an edit the server did not take came back there): show it,
        keeping anything typed since that is not in it."""
        current = self.state.text
        text = draft if not current.strip() or current in draft else f"{current.rstrip()}\n\n{draft}"
        self.input.value = self.state.text = text
        self._saved = draft

    def focus(self) -> None:
        self.input.run_method("focus")
