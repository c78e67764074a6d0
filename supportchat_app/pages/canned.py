"""Canned replies (issue 14): the agent's own replies and the shared ones (admins manage those), with
their titles, shortcuts and texts; variables and fill-in fields are explained beside the editor. Saved
offline-first through the outbox like everything else; a reply the server refused says why. A reply's
files (components/canned_files.py) are attached online once the reply is on the server.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from supportchat_app import fmt, theme
from supportchat_app.backend import Workspace
from supportchat_app.canned import KNOWN
from supportchat_app.components.canned_files import CannedFilesRow
from supportchat_app.pages import guard
from sync.engine import SyncEngine
from sync.models import LocalUser
from sync.workspace_rows import CannedReply

HELP = (
    "Variables: " + ", ".join("{{" + k + "}}" for k in KNOWN) + ". A fallback follows a bar: {{customer.name|there}}."
    " Any other {{name}} is a field you fill in when you insert the reply, e.g. {{order number}}."
)


class CannedList(ui.column):
    def __init__(self, engine: SyncEngine, user: LocalUser) -> None:
        super().__init__()
        self.engine, self.user = engine, user
        self.classes("w-full gap-2")
        self.dialog = ui.dialog()
        with self:
            with ui.row().classes("w-full items-center"):
                ui.label("Canned replies").classes("text-2xl font-semibold grow")
                ui.button("New reply", icon="add", on_click=lambda: self.edit(None)).props(
                    'unelevated no-caps data-testid="canned-new"'
                ).mark("canned-new")
            ui.label("Type / in the composer to insert one.").classes("text-sm opacity-70")
            self.rows = ui.column().classes("w-full gap-1")
        self.refresh()
        ui.timer(1.0, self.refresh)  # the outbox drains in the background: follow it

    def refresh(self) -> None:
        replies = self.engine.workspace.canned_replies()
        drawn = (tuple(replies), tuple(self.engine.cache.workspace.canned_files()))
        if getattr(self, "_drawn", None) == drawn:
            return
        self._drawn = drawn
        self.rows.clear()
        with self.rows:
            if not replies:
                ui.label("No canned replies yet.").classes("opacity-60 py-4")
            for reply in replies:
                self._row(reply)

    def _may_edit(self, reply: CannedReply) -> bool:
        return reply.owner_id == self.user.id or (reply.shared and self.user.role == "admin")

    def _row(self, reply: CannedReply) -> None:
        with (
            ui.card()
            .classes("sc-panel w-full p-3 gap-1")
            .props(f'flat bordered data-testid="canned-row" data-reply-id="{reply.id}"')
            .mark("canned-row", f"canned-row-{reply.title}")
        ):
            with ui.row(wrap=False).classes("w-full items-center gap-2 no-wrap"):
                ui.label(reply.title).classes("font-medium ellipsis")
                if reply.shortcut:
                    ui.label(f"/{reply.shortcut}").classes("text-xs opacity-60")
                ui.badge("shared" if reply.shared else "personal", color="grey-6").props("outline")
                if reply.local_state == "pending":
                    ui.label("waiting to sync").classes("text-xs text-warning")
                elif reply.local_state == "failed":
                    ui.label(f"not accepted: {reply.error}").classes("text-xs text-negative").mark("canned-error")
                ui.space()
                if self._may_edit(reply):
                    ui.button(icon="edit", on_click=lambda r=reply: self.edit(r)).props("flat round dense").mark(
                        f"edit-{reply.title}"
                    )
                    remove = ui.button(icon="delete", on_click=lambda r=reply: self.delete_reply(r))
                    remove.props("flat round dense").mark(f"delete-{reply.title}")
            ui.label(reply.body).classes("text-sm opacity-80 whitespace-pre-wrap")
            CannedFilesRow(self.engine, reply, self._may_edit(reply) and reply.local_state == "sent")

    def delete_reply(self, reply: CannedReply) -> None:
        try:
            if reply.local_state == "failed":  # refused when created: it exists only here
                try:
                    self.engine.workspace.discard_failed("canned_replies", {"id": reply.id})
                    self.refresh()
                    return
                except ValueError:
                    pass  # refused when changed: it is on the server, remove it there
            self.engine.workspace.delete_canned_reply(reply.id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "delete the reply"), type="negative")
        self.refresh()

    def edit(self, reply: CannedReply | None) -> None:
        self.dialog.clear()
        admin = self.user.role == "admin"
        with self.dialog, ui.card().classes("sc-panel w-[620px] max-w-[94vw] gap-2"):
            ui.label("Edit canned reply" if reply else "New canned reply").classes("text-lg font-medium")
            title = ui.input("Title", value=reply.title if reply else "").props("dense outlined").mark("canned-title")
            shortcut = (
                ui.input("Shortcut (optional)", value=(reply.shortcut or "") if reply else "")
                .props("dense outlined prefix=/")
                .mark("canned-shortcut")
            )
            body = (
                ui.textarea("Text", value=reply.body if reply else "")
                .props("outlined autogrow")
                .classes("w-full")
                .mark("canned-body")
            )
            ui.label(HELP).classes("text-xs opacity-70")
            shared = ui.checkbox("Shared with every agent", value=bool(reply and reply.shared)).mark("canned-shared")
            shared.set_enabled(admin and reply is None)

            def save() -> None:
                try:
                    self.engine.workspace.save_canned_reply(
                        str(title.value or ""),
                        str(body.value or ""),
                        shortcut=str(shortcut.value or "").strip().lower() or None,
                        shared=bool(shared.value) if reply is None else False,
                        reply_id=reply.id if reply else None,
                    )
                except ValueError as exc:
                    ui.notify(fmt.plain_error(exc, "save the reply"), type="negative")
                    return
                self.dialog.close()
                self.refresh()

            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=self.dialog.close).props("flat no-caps")
                ui.button("Save", on_click=save).props('unelevated no-caps data-testid="canned-save"').mark(
                    "canned-save"
                )
        self.dialog.open()


def create() -> None:
    @ui.page("/canned", title=f"Canned replies · {theme.APP_NAME}")
    async def canned_page() -> Any:
        workspace = await guard.enter("/canned", "signed-in")
        if not isinstance(workspace, Workspace):
            return workspace
        user = workspace.engine.user
        if user is None:
            return None
        with (
            theme.frame(
                f"Canned replies · {theme.APP_NAME}", account=(user.display_name, user.role), workspace=workspace
            ),
            theme.centered_card().classes("w-[760px]"),
        ):
            if not user.is_staff:
                ui.label("Canned replies are for agents.")
                return None
            CannedList(workspace.engine, user)
            ui.button("Back", icon="arrow_back", on_click=lambda: ui.navigate.to("/")).props("flat no-caps")
        return None
