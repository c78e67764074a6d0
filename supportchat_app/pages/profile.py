"""Your profile: your picture, and when you get email about replies left unread (never / unread after N
minutes / always).

The picture goes to Storage at once (online only, see sync/avatars.py for why) and is kept on this device,
so it shows offline; the page says why a picture was refused (too large, not an image, no connection).

The choice is saved offline-first like every other write (sync/preferences.py): it is kept on this device
and queued at once, goes to the server when there is a connection, and the page says which of
"waiting to sync", "saved" or "not accepted: <the server's reason>" is true. The notify worker reads the
same server row (notify/README.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from nicegui import events, ui

from supportchat_app import fmt, theme
from supportchat_app.backend import Workspace
from supportchat_app.components.avatar import Avatar
from supportchat_app.pages import guard
from sync import SyncError
from sync.avatars import MAX_BYTES
from sync.preferences import MAX_MINUTES, Preferences

# Quasar's uploader header says "0.0B / 0.00%" before any file is chosen; a picture is one small file that
# goes up at once (auto_upload), so the running total says nothing: the header keeps only its label
CSS = ".sc-picture-upload .q-uploader__subtitle { display: none; }"

EMAIL_CHOICES = {
    "unread": "When a reply stays unread",
    "always": "For every reply, at once",
    "never": "Never",
}


class AvatarForm:
    """Your picture: choose one (PNG, JPEG, WebP or GIF, at most 1 MB) or go back to initials."""

    def __init__(self, workspace: Workspace) -> None:
        self.engine = workspace.engine
        user = self.engine.user
        assert user is not None
        self.user_id = user.id
        ui.add_css(CSS)
        with ui.row().classes("items-center gap-4 no-wrap"):
            self.avatar = Avatar(user.display_name, user.id, size="72px", image=self.engine.avatars.file(user.id))
            self.avatar.props('data-testid="own-avatar"').mark("own-avatar")
            with ui.column().classes("gap-1"):
                self.upload = (
                    ui.upload(
                        label="Choose a picture",
                        auto_upload=True,
                        max_file_size=8 * MAX_BYTES,  # the browser refuses the absurd; the engine says why
                        on_upload=self._uploaded,
                        on_rejected=lambda: self._say(
                            "That file is far too large for a picture (1 MB at most).", False
                        ),
                    )
                    .props(
                        'accept="image/png,image/jpeg,image/webp,image/gif" flat bordered data-testid="avatar-upload"'
                    )
                    .mark("avatar-upload")
                    .classes("w-64 sc-picture-upload")
                )
                self.remove = (
                    ui.button("Remove picture", on_click=self._remove)
                    .props('flat dense no-caps data-testid="avatar-remove"')
                    .mark("avatar-remove")
                )
                self.remove.set_visibility(self.engine.avatars.file(user.id) is not None)  # nothing to remove
                self.message = (
                    ui.label("").classes("text-sm").props('data-testid="avatar-message"').mark("avatar-message")
                )

    def _say(self, text: str, ok: bool) -> None:
        self.message.classes(replace="text-sm " + ("text-positive" if ok else "text-negative"))
        self.message.set_text(text)

    async def _uploaded(self, e: events.UploadEventArguments) -> None:
        with tempfile.TemporaryDirectory(prefix="supportchat-avatar-") as folder:
            path = Path(folder) / "picture"
            await e.file.save(path)
            await self._set(path)
        self.upload.reset()

    async def _remove(self) -> None:
        await self._set(None)

    async def _set(self, path: Path | None) -> None:
        try:
            await self.engine.avatars.set(path)
        except ValueError as exc:
            self._say(f"This picture cannot be used: {exc}.", False)
            return
        except SyncError as exc:
            self._say(f"Your picture was not saved: {exc.reason()}. Try again when you are online.", False)
            return
        self.avatar.set_image(self.engine.avatars.file(self.user_id))
        self.remove.set_visibility(self.engine.avatars.file(self.user_id) is not None)
        self._say("Picture saved." if path is not None else "Picture removed; your initials show instead.", True)


class NotificationForm:
    """The email notification section; `show_state` follows the outbox (queued → saved / refused)."""

    def __init__(self, workspace: Workspace) -> None:
        self.engine = workspace.engine
        self.saved_here = False
        current = self.engine.cache.preferences()
        ui.label("Email notifications").classes("text-lg font-semibold")
        ui.label(
            "SupportChat can email you about replies you have not read in the app. One email covers every "
            "new reply of a ticket."
        ).classes("text-sm opacity-70")
        self.email = (
            ui.radio(EMAIL_CHOICES, value=current.email, on_change=self._mode_changed)
            .props('data-testid="notify-email"')
            .mark("notify-email")
        )
        self.minutes = (
            ui.number(
                "Unread for (minutes)",
                value=current.unread_after_minutes,
                min=0,
                max=MAX_MINUTES,
                step=1,
                precision=0,
                placeholder="the server's default (5)",
            )
            .props('outlined dense clearable data-testid="notify-minutes"')
            .mark("notify-minutes")
            .classes("w-60")
        )
        with ui.row().classes("items-center gap-3"):
            ui.button("Save", on_click=self.save).props('unelevated no-caps data-testid="notify-save"').mark(
                "notify-save"
            )
            self.state = ui.label("").classes("text-sm").props('data-testid="notify-state"').mark("notify-state")
        self._mode_changed()
        self.show_state()
        ui.timer(1.0, self.show_state)  # the outbox drains in the background: follow it

    def _mode_changed(self, _: Any = None) -> None:
        self.minutes.set_enabled(self.email.value == "unread")

    def save(self) -> None:
        raw = self.minutes.value
        try:
            minutes = None if raw in (None, "") else int(raw)
            if raw not in (None, "") and float(raw) != minutes:
                raise ValueError("the delay must be a whole number of minutes")
            self.engine.commands.set_notification_preferences(str(self.email.value), minutes)
            self.saved_here = True
        except (TypeError, ValueError) as exc:
            self.state.classes(replace="text-sm text-negative")
            self.state.set_text(fmt.plain_error(exc, "save your choice"))
            return
        self.show_state()

    def show_state(self) -> None:
        prefs: Preferences = self.engine.cache.preferences()
        if prefs.error:
            self.state.classes(replace="text-sm text-negative")
            self.state.set_text(f"Not accepted by the server: {prefs.error}")
        elif prefs.pending:
            self.state.classes(replace="text-sm text-warning")
            self.state.set_text("Saved on this device; it reaches the server when you are online.")
        elif self.saved_here:
            self.state.classes(replace="text-sm text-positive")
            self.state.set_text("Saved.")


def create() -> None:
    @ui.page("/profile", title=f"Profile · {theme.APP_NAME}")
    async def profile_page() -> Any:
        workspace = await guard.enter("/profile", "signed-in")
        if not isinstance(workspace, Workspace):
            return workspace
        user = workspace.engine.user
        if user is None:
            return None
        with (
            theme.frame(f"Profile · {theme.APP_NAME}", account=(user.display_name, user.role), workspace=workspace),
            theme.centered_card().classes("w-[560px]"),
        ):
            ui.label(user.display_name).classes("text-2xl font-semibold")
            ui.label(f"{user.email} · {user.role}").classes("text-sm opacity-70")
            ui.separator()
            AvatarForm(workspace)
            ui.separator()
            NotificationForm(workspace)
            ui.separator()
            ui.button("Back", icon="arrow_back", on_click=lambda: ui.navigate.to("/")).props("flat no-caps")
        return None
