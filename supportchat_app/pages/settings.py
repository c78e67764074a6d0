"""Settings: connect to a real Supabase project (URL + anon key) or go back to the demo server; for a
signed-in user, two-step sign-in (components/two_factor.py).

The key is checked by `sync.RemoteConfig`, which refuses a service_role key: that key bypasses every
row-level security rule and must never sit on an agent's computer.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from nicegui import ui

from supportchat_app import backend as backend_module
from supportchat_app import config, theme
from supportchat_app.components.cache_setting import CacheSetting
from supportchat_app.components.partial_sync import SyncScopeCard
from supportchat_app.components.two_factor import TwoFactorCard


def _loopback(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server(url: str, anon_key: str) -> str | None:
    """None when the pair is usable, else a sentence saying what to fix."""
    from sync import RemoteConfig

    url, anon_key = url.strip(), anon_key.strip()
    if not url.startswith(("http://", "https://")):
        return "The project URL must start with https:// (for example https://abcd.supabase.co)."
    if url.startswith("http://") and not _loopback(url):
        # plain http would send the password and every token in the clear to anyone on the path
        return (
            "The project URL must use https:// (for example https://abcd.supabase.co); plain http:// is only "
            "accepted for a server on this computer (127.0.0.1 or localhost)."
        )
    if not anon_key:
        return "Paste the project's anon (public) key from Supabase → Project Settings → API."
    try:
        RemoteConfig(url=url.rstrip("/"), anon_key=anon_key)
    except ValueError as exc:
        return f"{exc} Use the anon (public) key instead."
    return None


def create() -> None:
    @ui.page("/settings", title=f"Settings · {theme.APP_NAME}")
    async def settings_page() -> None:
        backend = backend_module.current()
        workspace = await backend.workspace(theme.browser_id(), ui.context.client) if backend.phase == "ready" else None
        root = config.data_dir()
        saved = config.load_settings(root)
        user = workspace.engine.user if workspace is not None else None
        # signed in: the account button as on every other page (Settings is also reachable signed out)
        account = (user.display_name, user.role) if user is not None else None
        with (
            theme.frame(f"Settings · {theme.APP_NAME}", account=account, workspace=workspace),
            theme.centered_card().classes("w-[560px]"),
        ):
            ui.label("Server").classes("text-2xl font-semibold")
            if backend.choice.source == "env":
                ui.label(
                    "SUPABASE_URL and SUPABASE_ANON_KEY are set in the environment, so they win over "
                    "what is saved here."
                ).classes("text-sm text-warning")
            current = "the demo server on this computer" if backend.is_demo else backend.choice.url
            ui.label(f"Connected to {current}.").classes("text-sm opacity-70").props(
                'data-testid="current-server"'
            ).mark("current-server")
            url = (
                ui.input(
                    "Supabase project URL", value=saved.get("url", ""), placeholder="https://your-project.supabase.co"
                )
                .props('outlined dense data-testid="url"')
                .mark("url")
                .classes("w-full")
            )
            key = (
                ui.input(
                    "Anon (public) key", value=saved.get("anon_key", ""), password=True, password_toggle_button=True
                )
                .props('outlined dense data-testid="anon-key"')
                .mark("anon-key")
                .classes("w-full")
            )
            ui.label("Never paste the service_role key here: it bypasses every access rule.").classes(
                "text-xs opacity-60"
            )
            message = ui.label("").classes("text-sm").props('data-testid="settings-message"').mark("settings-message")

            async def connect() -> None:
                problem = check_server(url.value or "", key.value or "")
                if problem:
                    message.classes(replace="text-sm text-negative")
                    message.set_text(problem)
                    return
                config.save_settings(
                    root, url=(url.value or "").strip().rstrip("/"), anon_key=(key.value or "").strip()
                )
                message.classes(replace="text-sm text-positive")
                message.set_text("Saved. Connecting…")
                await backend.switch(config.server_choice(root))
                ui.navigate.to("/signin")

            async def use_demo() -> None:
                config.save_settings(root, url=None, anon_key=None)
                message.classes(replace="text-sm")
                message.set_text("Starting the demo server…")
                await backend.switch(config.server_choice(root))
                ui.navigate.to("/signin")

            with ui.row().classes("w-full justify-between"):
                ui.button("Back", icon="arrow_back", on_click=lambda: ui.navigate.to("/")).props("flat no-caps")
                with ui.row():
                    if not backend.is_demo:
                        ui.button("Use the demo server", on_click=use_demo).props("flat no-caps")
                    ui.button("Save and connect", on_click=connect).props(
                        'unelevated no-caps data-testid="connect"'
                    ).mark("connect")
            if workspace is not None and user is not None:
                ui.separator()
                TwoFactorCard(workspace.engine)
                ui.separator()
                SyncScopeCard(workspace.engine)
            ui.separator()
            CacheSetting()
            ui.separator()
            ui.label(f"Data folder: {root}").classes("text-xs opacity-60")
