"""Desk settings (issue 14): the tags agents put on tickets (name and colour; admins define them) and the
SLA targets per priority (first and next response, in business minutes) with the time zone business
hours are counted in, and the business hours and holidays themselves (components/sla_calendar.py). Agents
see them read-only. Changes go through the outbox; the server recomputes
every open ticket's due times when a target changes, and those arrive like any other row.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from supportchat_app import fmt, theme
from supportchat_app.backend import Workspace
from supportchat_app.components.sla_calendar import SlaCalendarSettings
from supportchat_app.components.tags import tag_chip
from supportchat_app.pages import guard
from sync.engine import SyncEngine
from sync.models import LocalUser
from sync.workspace_rows import Tag

DEFAULT_COLOR = "#2563eb"


class TagSettings(ui.column):
    def __init__(self, engine: SyncEngine, admin: bool) -> None:
        super().__init__()
        self.engine, self.admin = engine, admin
        self._drawn: object = None
        self.classes("w-full gap-2")
        with self:
            ui.label("Tags").classes("text-xl font-semibold")
            if admin:
                with ui.row(wrap=False).classes("w-full items-center gap-2 no-wrap"):
                    self.name = ui.input("New tag").props("dense outlined").mark("tag-name").classes("grow")
                    self.color = ui.color_input("Colour", value=DEFAULT_COLOR).props("dense outlined").classes("w-40")
                    self.color.mark("tag-color")
                    add = ui.button("Add", icon="add", on_click=self.add)
                    add.props('unelevated no-caps data-testid="tag-add"').mark("tag-add")
                    self.name.on("keydown.enter", self.add)
            self.rows = ui.row().classes("w-full gap-2")
        self.refresh()
        ui.timer(1.0, self.refresh)  # the outbox drains and realtime brings others' changes: follow both

    def refresh(self) -> None:
        tags = self.engine.workspace.tags()
        if tuple(tags) == self._drawn:
            return
        self._drawn = tuple(tags)
        self.rows.clear()
        with self.rows:
            if not tags:
                ui.label("No tags yet." + ("" if self.admin else " Admins define them.")).classes("opacity-60")
            for tag in tags:
                self._row(tag)

    def _row(self, tag: Tag) -> None:
        with ui.row(wrap=False).classes("items-center gap-1 no-wrap"):
            tag_chip(tag, dense=False)
            if tag.local_state == "pending":
                ui.icon("sync", size="14px").classes("opacity-60").tooltip("waiting to sync").mark("tag-pending")
            if self.admin:
                remove = ui.button(icon="close", on_click=lambda t=tag: self.delete_tag(t))
                remove.props("flat round dense size=xs").mark(f"tag-delete-{tag.name}")

    def add(self) -> None:
        try:
            self.engine.workspace.create_tag(str(self.name.value or ""), str(self.color.value or DEFAULT_COLOR))
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "add the tag"), type="negative")
            return
        self.name.value = ""
        self.refresh()

    def delete_tag(self, tag: Tag) -> None:
        try:
            self.engine.workspace.delete_tag(tag.id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "remove the tag"), type="negative")
        self.refresh()


class SlaSettings(ui.column):
    def __init__(self, engine: SyncEngine, admin: bool) -> None:
        super().__init__()
        self.engine, self.admin = engine, admin
        self.classes("w-full gap-2")
        ws = engine.workspace
        self.fields: dict[str, tuple[ui.number, ui.number]] = {}
        with self:
            ui.label("SLA targets").classes("text-xl font-semibold")
            ui.label(
                "Minutes of business time for the first response and for each next response, per priority; "
                "empty means no target. Internal notes never count as responses."
            ).classes("text-sm opacity-70")
            targets = ws.sla_targets()
            if not targets:
                ui.label("The targets have not arrived from the server yet.").classes("opacity-60")
            for target in targets:
                with ui.row(wrap=False).classes("items-center gap-2 no-wrap"):
                    ui.label(target.priority.title()).classes("w-20 font-medium")
                    first = ui.number("First response", value=target.first_response_minutes, min=1, precision=0)
                    nxt = ui.number("Next response", value=target.next_response_minutes, min=1, precision=0)
                    for box in (first, nxt):
                        box.props("dense outlined clearable suffix=min").classes("w-44").set_enabled(admin)
                    first.mark(f"sla-first-{target.priority}")
                    nxt.mark(f"sla-next-{target.priority}")
                    self.fields[target.priority] = (first, nxt)
            self.timezone = ui.input("Business hours time zone", value=ws.sla_timezone()).props("dense outlined")
            self.timezone.classes("w-72").mark("sla-timezone").set_enabled(admin)
            if admin:
                ui.button("Save targets", on_click=self.save).props('unelevated no-caps data-testid="sla-save"').mark(
                    "sla-save"
                )

    def save(self) -> None:
        ws = self.engine.workspace
        current = {t.priority: t for t in ws.sla_targets()}
        try:
            for priority, (first, nxt) in self.fields.items():
                values = tuple(None if b.value in (None, "") else int(b.value) for b in (first, nxt))
                was = current.get(priority)
                if was is None or (was.first_response_minutes, was.next_response_minutes) != values:
                    ws.set_sla_target(priority, values[0], values[1])
            zone = str(self.timezone.value or "").strip()
            if zone and zone != ws.sla_timezone():
                ws.set_sla_timezone(zone)
        except (TypeError, ValueError) as exc:
            ui.notify(fmt.plain_error(exc, "save the targets"), type="negative")
            return
        ui.notify("Saved; every open ticket's due times follow once the server has it.")


def create() -> None:
    @ui.page("/desk-settings", title=f"Tags and SLA · {theme.APP_NAME}")
    async def desk_settings_page() -> Any:
        workspace = await guard.enter("/desk-settings", "signed-in")
        if not isinstance(workspace, Workspace):
            return workspace
        user: LocalUser | None = workspace.engine.user
        if user is None:
            return None
        with (
            theme.frame(
                f"Tags and SLA · {theme.APP_NAME}", account=(user.display_name, user.role), workspace=workspace
            ),
            theme.centered_card().classes("w-[760px]"),
        ):
            if not user.is_staff:
                ui.label("Tags and SLA targets are for agents.")
                return None
            TagSettings(workspace.engine, user.role == "admin")
            ui.separator()
            SlaSettings(workspace.engine, user.role == "admin")
            ui.separator()
            SlaCalendarSettings(workspace.engine, user.role == "admin")
            ui.button("Back", icon="arrow_back", on_click=lambda: ui.navigate.to("/")).props("flat no-caps")
        return None
