"""The ``/`` picker of canned replies in the composer (issue 14).

``/`` typed into an empty composer (or at the start of a line) opens it — decided in the browser, so the
slash never lands in the text; the bolt button beside the composer opens it too. Typing filters fuzzily
over titles and bodies (supportchat_app/canned.py), Up/Down move, Enter picks, Esc closes. A reply with
fill-in fields asks for them first; then the filled text goes into the composer at the cursor's line,
ready to edit and send. Everything comes from the cache: it works offline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nicegui import events, ui

from supportchat_app.canned import CannedIndex, Field, fields, render
from sync.workspace_rows import CannedReply

if TYPE_CHECKING:
    from supportchat_app.components.composer import Composer
    from sync.engine import SyncEngine

# '/' at the start of the text or of a line opens the picker instead of typing a slash
_SLASH_JS = """(e) => {
  if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || e.isComposing || e.keyCode === 229) return;
  const before = e.target.value.slice(0, e.target.selectionStart);
  if (before !== '' && !before.endsWith('\\n')) return;
  e.preventDefault();
  emit();
}"""
# the picker's own keys: arrows move, Enter picks (Esc is the dialog's); none while an input method composes
_NAV_JS = """(e) => {
  if (e.isComposing || e.keyCode === 229) return;
  if (['ArrowDown', 'ArrowUp', 'Enter'].includes(e.key)) { e.preventDefault(); emit(e.key); }
}"""
SHOWN = 8


class CannedPicker(ui.dialog):
    def __init__(self, engine: SyncEngine, composer: Composer, context: Callable[[], dict[str, str]]) -> None:
        super().__init__()
        self.engine, self.composer, self.context = engine, composer, context
        self.index = CannedIndex([])
        self.results: list[CannedReply] = []
        self.active = 0
        self.chosen: CannedReply | None = None
        self.picked: CannedReply | None = None  # the reply being inserted (with or without fields to fill)
        self.on_picked: Callable[[CannedReply], None] = lambda reply: None  # after its text is in the composer
        self.answers: dict[str, ui.input] = {}
        self.props('data-testid="canned-picker"').mark("canned-picker")
        with self, ui.card().classes("sc-panel w-[560px] max-w-[94vw] p-0 gap-0"):
            with ui.column().classes("w-full p-3 gap-1 sc-line-b"):
                self.query = (
                    ui.input(placeholder="Search canned replies…", on_change=self._typed)
                    .props('dense outlined autofocus clearable data-testid="canned-query"')
                    .mark("canned-query")
                    .classes("w-full")
                )
                self.query.on("keydown", self._key, js_handler=_NAV_JS)
            self.body = ui.column().classes("w-full gap-0 p-2 max-h-[60vh] overflow-y-auto overflow-x-hidden")
            with ui.row().classes("w-full px-3 py-2 text-xs opacity-60 sc-line-t"):
                ui.label("↑↓ choose · Enter insert · Esc close")
                ui.space()
                ui.link("Manage…", "/canned").classes("text-xs")
        composer.input.on("keydown", self.show, js_handler=_SLASH_JS)

    def show(self) -> None:
        self.index = CannedIndex(self.engine.workspace.canned_replies())
        self.chosen = None
        self.query.value = ""
        self._draw_results()
        self.open()

    def _typed(self, e: events.ValueChangeEventArguments[str | None]) -> None:
        if self.chosen is None:
            self.active = 0
            self._draw_results()

    def _key(self, e: events.GenericEventArguments) -> None:
        if self.chosen is not None:
            return
        if e.args == "ArrowDown":
            self.active = min(self.active + 1, max(len(self.results) - 1, 0))
            self._draw_results(search=False)
        elif e.args == "ArrowUp":
            self.active = max(self.active - 1, 0)
            self._draw_results(search=False)
        elif e.args == "Enter" and self.results:
            self.pick(self.results[self.active])

    def _draw_results(self, *, search: bool = True) -> None:
        if search:
            self.results = self.index.search(self.query.value or "", SHOWN)
        self.body.clear()
        with self.body:
            if not self.index.replies:
                ui.label("No canned replies yet.").classes("text-sm opacity-70 p-2")
                ui.link("Write the first one", "/canned").classes("text-sm px-2")
                return
            if not self.results:
                ui.label("Nothing matches.").classes("text-sm opacity-70 p-2")
            for i, reply in enumerate(self.results):
                with (
                    ui.item(on_click=lambda r=reply: self.pick(r))
                    .classes("rounded-lg w-full" + (" sc-selected" if i == self.active else ""))
                    .props(f'data-testid="canned-item" data-reply-id="{reply.id}"')
                    .mark("canned-item", f"canned-{reply.title}")
                ):
                    with ui.item_section().classes("min-w-0"):
                        with ui.row(wrap=False).classes("w-full items-center gap-2 no-wrap"):
                            ui.label(reply.title).classes("text-sm font-medium ellipsis min-w-0")
                            if reply.shortcut:
                                ui.label(f"/{reply.shortcut}").classes("text-xs opacity-60")
                            ui.space()
                            ui.label("shared" if reply.shared else "personal").classes("text-xs opacity-50")
                        ui.label(reply.body[:140]).classes("text-xs opacity-70 ellipsis w-full")

    def pick(self, reply: CannedReply) -> None:
        self.picked = reply
        asks = fields(reply.body)
        if not asks:
            self._insert(render(reply.body, self.context()))
            return
        self.chosen = reply
        self._ask(reply, asks)

    def _ask(self, reply: CannedReply, asks: list[Field]) -> None:
        self.body.clear()
        self.answers = {}
        with self.body, ui.column().classes("w-full gap-2 p-2"):
            ui.label(f"“{reply.title}” needs:").classes("text-sm font-medium")
            for field in asks:
                box = (
                    ui.input(field.name.capitalize(), value=field.default)
                    .props('dense outlined data-testid="canned-field"')
                    .mark("canned-field", f"field-{field.name}")
                    .classes("w-full")
                )
                box.props["data-field"] = field.name  # set, not parsed (an agent's own reply names its fields)
                box.on("keydown.enter", self._fill)
                self.answers[field.name] = box
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Back", on_click=self._back).props("flat no-caps")
                ui.button("Insert", on_click=self._fill).props('unelevated no-caps data-testid="canned-insert"').mark(
                    "canned-insert"
                )
        if asks:
            self.answers[asks[0].name].run_method("focus")

    def _back(self) -> None:
        self.chosen = None
        self._draw_results()

    def _fill(self) -> None:
        if self.chosen is None:
            return
        answers = {name: str(box.value or "") for name, box in self.answers.items()}
        self._insert(render(self.chosen.body, self.context(), answers))

    def _insert(self, text: str) -> None:
        current = self.composer.input.value or ""
        joined = current + ("" if not current or current.endswith("\n") else "\n") + text if current else text
        self.composer.input.value = joined
        self.chosen = None
        self.close()
        if self.picked is not None:  # its files go with the reply (components/canned_files.py)
            self.on_picked(self.picked)
            self.picked = None
        self.composer.focus()


def picker_button(picker: CannedPicker) -> ui.button:
    """The bolt beside the composer: the picker for those who do not type ``/``."""
    return (
        ui.button(icon="bolt", on_click=picker.show)
        .props('flat round dense color=grey-7 data-testid="canned-open"')
        .mark("canned-open")
        .tooltip("Canned replies (/)")
    )
