"""Macros (issue 14, item 7): the page where they are made and changed. A macro is reply text and/or ticket
changes — status, priority, assignee (me, nobody or a teammate), tags to add and to remove — applied in one
step from the ticket, the palette or the inbox's bulk bar (sync/macros.py). Admins manage the shared ones;
every agent has personal ones (the server's RLS decides as well). Saved offline-first through the outbox;
a macro the server refused says why.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from supportchat_app import fmt, theme
from supportchat_app.backend import Workspace
from supportchat_app.pages import guard
from sync.engine import SyncEngine
from sync.models import LocalUser
from sync.workspace_rows import Macro

KEEP = ""  # the selects' "no change"
STATUS = {KEEP: "No change", "open": "Open", "pending": "Pending", "resolved": "Resolved", "closed": "Closed"}
PRIORITY = {KEEP: "No change", "low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"}


def describe(macro: Macro, tag_names: dict[str, str], people: dict[str, str]) -> str:
    """What a macro does, in one line: "Reply · status → resolved · assign to me · + VIP · - Waiting"."""
    a = macro.actions
    parts = ["Reply"] if macro.reply else []
    if "status" in a:
        parts.append(f"status → {a['status']}")
    if "priority" in a:
        parts.append(f"priority → {a['priority']}")
    if "assignee" in a:
        who = {"me": "me", "none": "nobody"}.get(str(a["assignee"])) or people.get(str(a["assignee"]), "a teammate")
        parts.append(f"assign to {who}")
    parts += [f"+ {tag_names.get(t, 'a removed tag')}" for t in a.get("add_tags") or []]
    parts += [f"- {tag_names.get(t, 'a removed tag')}" for t in a.get("remove_tags") or []]
    return " · ".join(parts) or "Does nothing"


class MacroList(ui.column):
    def __init__(self, engine: SyncEngine, user: LocalUser) -> None:
        super().__init__()
        self.engine, self.user = engine, user
        self.classes("w-full gap-2")
        self.dialog = ui.dialog()
        self._drawn: object = None
        with self:
            with ui.row().classes("w-full items-center"):
                ui.label("Macros").classes("text-2xl font-semibold grow")
                ui.button("New macro", icon="add", on_click=lambda: self.edit(None)).props(
                    'unelevated no-caps data-testid="macro-new"'
                ).mark("macro-new")
            ui.label(
                "Apply one to the open ticket with Ctrl+K, or to many tickets with Select. A reply's variables"
                " ({{customer.first_name}}, {{agent.name}}, …) are filled as in canned replies."
            ).classes("text-sm opacity-70")
            self.rows = ui.column().classes("w-full gap-1")
        self.refresh()
        ui.timer(1.0, self.refresh)  # the outbox drains in the background: follow it

    def refresh(self) -> None:
        macros = self.engine.workspace.macros()
        tags = {t.id: t.name for t in self.engine.workspace.tags()}
        drawn = (tuple(macros), tuple(sorted(tags.items())))
        if drawn == self._drawn:
            return
        self._drawn = drawn
        people = {p.id: p.display_name for p in self.engine.cache.agents()}
        self.rows.clear()
        with self.rows:
            if not macros:
                ui.label("No macros yet.").classes("opacity-60 py-4")
            for macro in macros:
                self._row(macro, tags, people)

    def _may_edit(self, macro: Macro) -> bool:
        return macro.owner_id == self.user.id or (macro.owner_id is None and self.user.role == "admin")

    def _row(self, macro: Macro, tags: dict[str, str], people: dict[str, str]) -> None:
        with (
            ui.card()
            .classes("sc-panel w-full p-3 gap-1")
            .props(f'flat bordered data-testid="macro-row" data-macro-id="{macro.id}"')
            .mark("macro-row", f"macro-row-{macro.id}")
        ):
            with ui.row(wrap=False).classes("w-full items-center gap-2 no-wrap"):
                ui.label(macro.name).classes("font-medium ellipsis")
                ui.badge("shared" if macro.owner_id is None else "personal", color="grey-6").props("outline")
                if macro.local_state == "pending":
                    ui.label("waiting to sync").classes("text-xs text-warning")
                elif macro.local_state == "failed":
                    ui.label(f"not accepted: {macro.error}").classes("text-xs text-negative").mark("macro-error")
                ui.space()
                if self._may_edit(macro):
                    ui.button(icon="edit", on_click=lambda m=macro: self.edit(m)).props("flat round dense").mark(
                        f"macro-edit-{macro.id}"
                    )
                    ui.button(icon="delete", on_click=lambda m=macro: self.delete_macro(m)).props(
                        "flat round dense"
                    ).mark(f"macro-delete-{macro.id}")
            ui.label(describe(macro, tags, people)).classes("text-xs opacity-70").mark("macro-does")
            if macro.reply:
                ui.label(macro.reply).classes("text-sm opacity-80 whitespace-pre-wrap")

    def delete_macro(self, macro: Macro) -> None:
        try:
            if macro.local_state == "failed":  # refused when created: it exists only here
                try:
                    self.engine.workspace.discard_failed("macros", {"id": macro.id})
                    self.refresh()
                    return
                except ValueError:
                    pass  # refused when changed: it is on the server, remove it there
            self.engine.workspace.delete_macro(macro.id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "delete the macro"), type="negative")
        self.refresh()

    def edit(self, macro: Macro | None) -> None:
        self.dialog.clear()
        a = dict(macro.actions) if macro else {}
        tags = {t.id: t.name for t in self.engine.workspace.tags()}
        assignees = {KEEP: "No change", "me": "Me (who applies it)", "none": "Nobody"}
        assignees |= {p.id: p.display_name for p in self.engine.cache.agents()}
        with self.dialog, ui.card().classes("sc-panel w-[620px] max-w-[94vw] gap-2"):
            ui.label("Edit macro" if macro else "New macro").classes("text-lg font-medium")
            name = ui.input("Name", value=macro.name if macro else "").props("dense outlined").mark("macro-name")
            reply = (
                ui.textarea("Reply (optional)", value=(macro.reply or "") if macro else "")
                .props("outlined autogrow")
                .classes("w-full")
                .mark("macro-reply")
            )
            with ui.row(wrap=False).classes("w-full gap-2 no-wrap"):
                status = ui.select(STATUS, value=a.get("status", KEEP), label="Status").mark("macro-status")
                priority = ui.select(PRIORITY, value=a.get("priority", KEEP), label="Priority").mark("macro-priority")
                assignee = ui.select(assignees, value=a.get("assignee", KEEP), label="Assignee").mark("macro-assignee")
                for select in (status, priority, assignee):
                    select.props("dense outlined options-dense").classes("w-1/3")
            add = ui.select(tags, multiple=True, value=[t for t in a.get("add_tags") or [] if t in tags])
            add.props("dense outlined use-chips options-dense label='Add tags'").classes("w-full").mark(
                "macro-add-tags"
            )
            remove = ui.select(tags, multiple=True, value=[t for t in a.get("remove_tags") or [] if t in tags])
            remove.props("dense outlined use-chips options-dense label='Remove tags'").classes("w-full")
            remove.mark("macro-remove-tags")
            shared = ui.checkbox("Shared with every agent", value=bool(macro and macro.owner_id is None))
            shared.mark("macro-shared").set_enabled(self.user.role == "admin" and macro is None)

            def save() -> None:
                actions: dict[str, Any] = {
                    key: widget.value
                    for key, widget in (("status", status), ("priority", priority), ("assignee", assignee))
                    if widget.value
                }
                for key, widget in (("add_tags", add), ("remove_tags", remove)):
                    if widget.value:
                        actions[key] = list(widget.value)
                try:
                    self.engine.workspace.save_macro(
                        str(name.value or ""),
                        str(reply.value or ""),
                        actions,
                        shared=bool(shared.value) if macro is None else False,
                        macro_id=macro.id if macro else None,
                    )
                except ValueError as exc:
                    ui.notify(fmt.plain_error(exc, "save the macro"), type="negative")
                    return
                self.dialog.close()
                self.refresh()

            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=self.dialog.close).props("flat no-caps")
                ui.button("Save", on_click=save).props('unelevated no-caps data-testid="macro-save"').mark("macro-save")
        self.dialog.open()


def create() -> None:
    @ui.page("/macros", title=f"Macros · {theme.APP_NAME}")
    async def macros_page() -> Any:
        workspace = await guard.enter("/macros", "signed-in")
        if not isinstance(workspace, Workspace):
            return workspace
        user = workspace.engine.user
        if user is None:
            return None
        with (
            theme.frame(f"Macros · {theme.APP_NAME}", account=(user.display_name, user.role), workspace=workspace),
            theme.centered_card().classes("w-[760px]"),
        ):
            if not user.is_staff:
                ui.label("Macros are for agents.")
                return None
            MacroList(workspace.engine, user)
            ui.button("Back", icon="arrow_back", on_click=lambda: ui.navigate.to("/")).props("flat no-caps")
        return None
