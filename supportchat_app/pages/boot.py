"""What a page shows while the server is not usable yet: the demo stack starting, or why it failed."""

from __future__ import annotations

from nicegui import ui

from supportchat_app import theme
from supportchat_app.backend import Backend


def error_page(exc: Exception) -> None:
    """Any page that fails shows this plain sentence and a way on, never a traceback (it is in the log)."""
    with theme.centered_card():
        ui.label("Something went wrong on this page").classes("text-lg font-medium")
        ui.label(
            "SupportChat ran into a problem it did not expect. Your messages are safe in this device's "
            "cache. Reload the page; if it happens again, restart SupportChat."
        ).classes("text-sm")
        ui.label(f"({exc.__class__.__name__})").classes("text-xs opacity-50")
        with ui.row():
            ui.button("Reload", on_click=ui.navigate.reload).props("unelevated")
            ui.button("Inbox", on_click=lambda: ui.navigate.to("/")).props("flat")


def render(backend: Backend, path: str) -> None:
    """A waiting card that reloads `path` once the backend is ready, or the boot error with a next step."""
    with theme.frame(theme.APP_NAME), theme.centered_card():
        if backend.phase == "starting":
            with ui.row().classes("items-center gap-3"):
                ui.spinner(size="lg")
                ui.label("Starting the demo server…").classes("text-lg")
            ui.label("The first start sets up a local database with demo tickets; this takes a few seconds.").classes(
                "text-sm opacity-70"
            )
            # runs in this page's context and is dropped with the page (nicegui.Event)
            backend.phase_changed.subscribe(lambda: ui.navigate.to(path))
        else:
            ui.label("SupportChat cannot reach its server").classes("text-lg font-medium")
            ui.label(backend.error or "The server is not available.").classes("text-sm").props(
                'data-testid="boot-error"'
            ).mark("boot-error")
            ui.button("Open Settings", on_click=lambda: ui.navigate.to("/settings")).props(
                'unelevated data-testid="boot-settings"'
            ).mark("boot-settings")
