"""The settings page's "Downloaded files" card: how much disk the downloaded attachments of this account use,
and the bound on it (the sync engine's LRU of downloaded files). Saved in the settings file for every account
of this app and applied at once to every open session: lowering it removes the least recently opened files
now. Files still waiting to upload are never removed; thumbnails (a few KB each) are not counted.
"""

from __future__ import annotations

from nicegui import ui

from supportchat_app import backend as backend_module
from supportchat_app import config, theme
from supportchat_app.components.attachments import size_text

MIB = 1024 * 1024


def used_bytes() -> int | None:
    """Bytes of downloaded and queued files of this browser session's account (None when signed out)."""
    current = backend_module.current()
    slot = current.slots.get(theme.browser_id())
    workspace = current.workspaces.get(slot) if slot is not None else None
    if workspace is None or workspace.engine.user is None:
        return None
    return workspace.engine.attachments.used_bytes()  # files and their thumbnails


async def apply(limit_mb: int) -> None:
    """Save the bound and apply it to every open session of this app (evicting beyond it now)."""
    current = backend_module.current()
    config.save_settings(current.root, attachment_cache_mb=limit_mb)
    for workspace in list(current.workspaces.values()):
        await workspace.engine.set_attachment_cache_bytes(limit_mb * MIB)


class CacheSetting(ui.column):
    def __init__(self) -> None:
        super().__init__()
        self.classes("w-full gap-2")
        root = backend_module.current().root
        with self:
            ui.label("Downloaded files").classes("text-lg font-semibold")
            ui.label(
                "Attachments you open are kept on this computer so they open at once and offline. "
                "Beyond this size, the least recently opened ones are removed (they download again when opened)."
            ).classes("text-sm opacity-70")
            with ui.row(align_items="center").classes("w-full gap-3 no-wrap"):
                self.limit = (
                    ui.number(
                        "Keep at most",
                        value=config.attachment_cache_mb(root),
                        min=config.MIN_ATTACHMENT_CACHE_MB,
                        max=config.MAX_ATTACHMENT_CACHE_MB,
                        step=64,
                        precision=0,
                        suffix="MB",
                    )
                    .props('outlined dense data-testid="cache-limit"')
                    .mark("cache-limit")
                    .classes("w-48")
                )
                ui.button("Apply", on_click=self._apply).props('unelevated no-caps data-testid="cache-apply"').mark(
                    "cache-apply"
                )
            self.usage = ui.label().classes("text-sm").props('data-testid="cache-usage"').mark("cache-usage")
        self._show_usage()

    def _show_usage(self, note: str = "") -> None:
        used = used_bytes()
        text = "" if used is None else f"This account's files use {size_text(used)} now."
        self.usage.classes(replace="text-sm")
        self.usage.set_text(f"{note} {text}".strip())

    async def _apply(self) -> None:
        value = self.limit.value
        if value is None or not config.MIN_ATTACHMENT_CACHE_MB <= value <= config.MAX_ATTACHMENT_CACHE_MB:
            self.usage.classes(replace="text-sm text-negative")
            self.usage.set_text(
                f"Choose between {config.MIN_ATTACHMENT_CACHE_MB} MB and {config.MAX_ATTACHMENT_CACHE_MB} MB."
            )
            return
        await apply(int(value))
        self._show_usage(f"Saved: at most {int(value)} MB.")
