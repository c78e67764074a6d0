"""Tags (issue 14): coloured chips for inbox rows and the ticket header, and the ticket's tag editor —
chips with ✕ to remove, a select with type-to-filter to add (``t`` focuses it, Enter adds the highlighted or
else the first match, Backspace in an empty box removes the last). Admins define the tags and their colours
(pages/desk_settings.py). Changes go through the outbox (``engine.workspace``): they show at once and sync when online.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from nicegui import events, ui

from supportchat_app import fmt
from sync.workspace_rows import Tag

if TYPE_CHECKING:
    from sync.engine import SyncEngine


def text_color(background: str) -> str:
    """Black or white, whichever reads better on ``#rrggbb`` (WCAG relative luminance)."""
    try:
        r, g, b = (int(background[i : i + 2], 16) / 255 for i in (1, 3, 5))
    except ValueError:
        return "#ffffff"

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    luminance = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    return "#111827" if luminance > 0.4 else "#ffffff"


def tag_chip(tag: Tag, *, dense: bool = True) -> ui.label:
    chip = (
        ui.label(tag.name)
        .classes("sc-tag rounded-full px-2 whitespace-nowrap " + ("text-[11px]" if dense else "text-xs py-[1px]"))
        .style(f"background:{tag.color};color:{text_color(tag.color)}")
        .props('data-testid="tag"')
        .mark("tag", f"tag-{tag.name}")
    )
    chip.props["data-tag"] = tag.name  # set, not parsed: a quote in a name must not add props (JS expressions)
    if tag.local_state == "failed":
        chip.tooltip(f"Not saved: {tag.error}").classes("opacity-50 line-through")
    return chip


def tag_chips(tags: Sequence[Tag], limit: int = 3) -> None:
    """At most ``limit`` chips and a "+n" for the rest (inbox rows are narrow)."""
    for tag in tags[:limit]:
        tag_chip(tag)
    if len(tags) > limit:
        ui.label(f"+{len(tags) - limit}").classes("text-[11px] opacity-60")


# Enter after typing takes the first match of the typed text: Quasar's select takes only an option highlighted with
# the arrow keys. The match is computed from the text itself (the list on screen may still be an older filter's), and
# chosen here, before Quasar's own Enter handler (this one listens in the capture phase), which then never sees it.
FIRST_MATCH_JS = """(e) => {
  const el = e.key === 'Enter' && e.target.value ? getElement(ID) : null;
  const select = el?.$refs.qRef;
  if (!select || select.getOptionIndex() !== -1) return;
  const first = el.findFilteredOptions()[0];
  if (first === undefined) return;
  e.preventDefault();
  e.stopPropagation();
  select.toggleOption(first);
}"""


class TagEditor(ui.row):
    def __init__(self, engine: SyncEngine, ticket_id: str) -> None:
        super().__init__(wrap=True)
        self.engine, self.ticket_id = engine, ticket_id
        self._drawn: tuple[tuple[Tag, ...], tuple[Tag, ...]] | None = None
        self.classes("items-center gap-1").props('data-testid="tag-editor"').mark("tag-editor")
        self.refresh()

    def refresh(self) -> None:
        """Draw the chips and the select again, unless neither the ticket's tags nor the choice changed: the
        workspace's change event fires for every synced row, and a redraw would drop what the agent is typing."""
        ws = self.engine.workspace
        current = ws.tags_of([self.ticket_id]).get(self.ticket_id, [])
        chosen = {t.id for t in current}
        choice = [t for t in ws.tags() if t.id not in chosen]
        drawn = (tuple(current), tuple(choice))
        if drawn == self._drawn:
            return
        self._drawn = drawn
        self.clear()
        with self:
            for tag in current:
                with ui.row(wrap=False).classes("items-center gap-0 no-wrap"):
                    tag_chip(tag, dense=False)
                    ui.button(icon="close", on_click=lambda t=tag: self.untag(t.id)).props(
                        f'flat round dense size=xs data-testid="untag" data-tag="{tag.name}"'
                    ).mark("untag", f"untag-{tag.name}")
            options = {t.id: t.name for t in choice}
            self.select = (
                ui.select(options, with_input=True, on_change=self._chosen)
                .props('dense borderless options-dense hide-dropdown-icon placeholder="+ tag" data-testid="add-tag"')
                .mark("add-tag")
                .classes("w-24 text-xs")
            )
            self.select.on(
                "keydown",
                self._backspace,
                js_handler="(e) => { if (e.key === 'Backspace' && !e.target.value) emit(); }",
            )
            self.select.on("keydown.capture", js_handler=FIRST_MATCH_JS.replace("ID", str(self.select.id)))

    def _chosen(self, e: events.ValueChangeEventArguments[str | None]) -> None:
        if e.value:
            self.add_tag(str(e.value))

    def add_tag(self, tag_id: str) -> None:
        try:
            self.engine.workspace.add_tag(self.ticket_id, tag_id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "tag the ticket"), type="negative")
        if not self.is_deleted:  # the header may have been redrawn by the change already
            self._drawn = None  # the select shows the choice, even one the cache refused: draw it empty again
            self.refresh()
            self.focus()

    def untag(self, tag_id: str) -> None:
        try:
            self.engine.workspace.remove_tag(self.ticket_id, tag_id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "remove the tag"), type="negative")
        if not self.is_deleted:
            self._drawn = None
            self.refresh()

    def _backspace(self) -> None:
        current = self._drawn[0] if self._drawn else ()  # the chips shown
        if current:
            self.untag(current[-1].id)
            self.focus()

    def focus(self) -> None:
        self.select.run_method("focus")
