"""The team (admins only): invite a teammate — the address and the role they will have, written to the server's
`invitations` table under the admin's own rights; the invitee accepts with the emailed code on the sign-in page
("Have an invitation?") — and change a teammate's role (agent, admin, or off the team), which the server decides
and the teammate's app follows at once (it rebuilds its cache for the new role: sync/engine.py `_follow_role`).
The list is the cache's staff profiles; an admin cannot change their own role here (that would lock them out)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from supportchat_app import backend as backend_module
from supportchat_app import theme
from supportchat_app.account import Account, AccountError, Role
from supportchat_app.backend import Workspace
from supportchat_app.pages import guard
from sync.models import Profile

ROLES = {"agent": "Agent — answers tickets", "admin": "Admin — everything, including roles"}
TEAM_ROLES: dict[str, str] = {"agent": "Agent", "admin": "Admin", "customer": "Not on the team"}


class TeamRow:
    """One teammate and their role; a change goes to the server at once and is put back if it refuses."""

    def __init__(self, workspace: Workspace, account: Account, profile: Profile, message: ui.label) -> None:
        self.workspace, self.account, self.profile, self.message = workspace, account, profile, message
        self.role: str = profile.role
        me = workspace.engine.user is not None and workspace.engine.user.id == profile.id
        with ui.row(wrap=False).classes("w-full items-center no-wrap gap-3"):
            name = ui.label(profile.display_name or profile.id).classes("grow truncate")
            name.props(f'data-testid="team-name-{profile.id}"')
            if me:
                name.set_text(f"{name.text} (you)")
            self.select = (
                ui.select(TEAM_ROLES, value=profile.role, on_change=self._changed)
                .props(f'outlined dense options-dense data-testid="team-role-{profile.id}"')
                .mark(f"team-role-{profile.id}")
                .classes("w-44")
            )
            self.select.set_enabled(not me)

    async def _changed(self, event: Any) -> None:
        wanted = event.value
        if wanted == self.role or wanted not in TEAM_ROLES:
            return
        role: Role = "admin" if wanted == "admin" else "agent" if wanted == "agent" else "customer"
        self.select.props("loading")
        try:
            await self.account.set_role(await self.workspace.engine.access_token(), self.profile.id, role)
        except (AccountError, Exception) as exc:  # the engine's AuthError (signed out, offline) too
            self.message.classes(replace="text-sm text-negative")
            self.message.set_text(str(exc) or "The role could not be changed.")
            self.select.set_value(self.role)  # put back: the server did not change it
            return
        finally:
            self.select.props(remove="loading")
        self.role = wanted
        self.message.classes(replace="text-sm text-positive")
        self.message.set_text(f"{self.profile.display_name} is now: {TEAM_ROLES[wanted]}.")


def create() -> None:
    @ui.page("/invite", title=f"Team · {theme.APP_NAME}")
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

        user = workspace.engine.user
        account_button = (user.display_name, user.role) if user is not None else None
        with theme.frame(f"Team · {theme.APP_NAME}", account=account_button, workspace=workspace):
            with theme.centered_card():
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
            with theme.centered_card().classes("mt-6 mb-16", remove="mt-16"):
                ui.label("Team").classes("text-2xl font-semibold")
                team_message = ui.label("").classes("text-sm").props('data-testid="team-message"').mark("team-message")
                with ui.column().classes("w-full gap-2").props('data-testid="team-list"'):
                    for profile in workspace.engine.cache.agents():
                        TeamRow(workspace, account, profile, team_message)
        return None
