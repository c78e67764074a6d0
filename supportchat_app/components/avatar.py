"""Initials avatar with a colour derived from the person's id, so everyone keeps their colour."""

from __future__ import annotations

from nicegui import ui

from supportchat_app import fmt


class Avatar(ui.avatar):
    def __init__(self, name: str | None, key: str | None = None, size: str = "32px") -> None:
        # QAvatar's `icon` would draw the letters with the icon font; they go in the default slot instead
        super().__init__(None, color=fmt.avatar_color(key or name), text_color="white", size=size, font_size="13px")
        with self:
            ui.label(fmt.initials(name)).classes("sc-initials")
        self.tooltip(name or "Unknown")
