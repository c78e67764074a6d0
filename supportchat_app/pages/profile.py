"""Your profile: when you get email about replies left unread (never / unread after N minutes / always).

The choice is saved offline-first like every other write (sync/preferences.py): it is kept on this device
and queued at once, goes to the server when there is a connection, and the page says which of
"waiting to sync", "saved" or "not accepted: <the server's reason>" is true. The notify worker reads the
same server row (notify/README.md).
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from supportchat_app import fmt, theme
from supportchat_app.backend import Workspace
from supportchat_app.pages import guard
from sync.preferences import MAX_MINUTES, Preferences

EMAIL_CHOICES = {
    "unread": "When a reply stays unread",
    "always": "For every reply, at once",
    "never": "Never",
}


class NotificationForm:
    """The email notification section; `show_state` follows the outbox (queued → saved / refused)."""

    def __init__(self, workspace: Workspace) -> None:
        self.engine = workspace.engine
        self.saved_here = False
        current = self.engine.notification_preferences()
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
            self.engine.set_notification_preferences(str(self.email.value), minutes)
            self.saved_here = True
        except (TypeError, ValueError) as exc:
            self.state.classes(replace="text-sm text-negative")
            self.state.set_text(fmt.plain_error(exc, "save your choice"))
            return
        self.show_state()

    def show_state(self) -> None:
        prefs: Preferences = self.engine.notification_preferences()
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
            theme.frame(f"Profile · {theme.APP_NAME}", account=(user.display_name, user.role)),
            theme.centered_card().classes("w-[560px]"),
        ):
            ui.label(user.display_name).classes("text-2xl font-semibold")
            ui.label(f"{user.email} · {user.role}").classes("text-sm opacity-70")
            ui.separator()
            NotificationForm(workspace)
            ui.separator()
            ui.button("Back", icon="arrow_back", on_click=lambda: ui.navigate.to("/")).props("flat no-caps")
        return None
