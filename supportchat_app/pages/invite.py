"""Invite a teammate (admins only): the address and the role they will have. The role is written to the
server's `invitations` table under the admin's own rights; the invitee accepts with the emailed code
on the sign-in page ("Have an invitation?")."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from supportchat_app import backend as backend_module
from supportchat_app import theme
from supportchat_app.account import Account, AccountError
from supportchat_app.backend import Workspace
from supportchat_app.pages import guard

ROLES = {"agent": "Agent — answers tickets", "admin": "Admin — everything, including roles"}


def create() -> None:
    @ui.page("/invite", title=f"Invite · {theme.APP_NAME}")
    async def invite_page() -> Any:
        workspace = await guard.enter("/invite", "admin")
        if not isinstance(workspace, Workspace):
            return workspace
        backend = backend_module.current()
        assert backend.remote is not None  # the guard let us in: the server is resolved
        account = Account(backend.remote.url, backend.remote.anon_key)

        async def send() -> None:
            address = (email.value or "").strip()
            if "@" not in address:
                message.classes(replace="text-sm text-negative")
                message.set_text("Enter the teammate's email address.")
                return
            button.props("loading")
            try:
                await account.invite(await workspace.engine.access_token(), address, role.value)
            except (AccountError, Exception) as exc:  # the engine's AuthError (signed out, offline) too
                message.classes(replace="text-sm text-negative")
                message.set_text(str(exc) or "The invitation could not be sent.")
                return
            finally:
                button.props(remove="loading")
            message.classes(replace="text-sm text-positive")
            message.set_text(
                f"Invitation sent to {address}. They choose “Have an invitation?” on the sign-in "
                "page and enter the emailed code."
            )
            email.set_value("")

        with theme.frame(f"Invite · {theme.APP_NAME}"), theme.centered_card():
            ui.label("Invite a teammate").classes("text-2xl font-semibold")
            email = (
                ui.input("Email")
                .props('outlined dense autofocus data-testid="invite-email"')
                .mark("invite-email")
                .classes("w-full")
            )
            role = (
                ui.select(ROLES, value="agent", label="Role")
                .props('outlined dense data-testid="invite-role"')
                .mark("invite-role")
                .classes("w-full")
            )
            message = ui.label("").classes("text-sm").props('data-testid="invite-message"').mark("invite-message")
            with ui.row().classes("w-full justify-between"):
                ui.button("Back", icon="arrow_back", on_click=lambda: ui.navigate.to("/")).props("flat no-caps")
                button = (
                    ui.button("Send invitation", on_click=send)
                    .props('unelevated no-caps data-testid="invite-send"')
                    .mark("invite-send")
                )
        return None
