"""Initials avatar with a colour derived from the person's id, so everyone keeps their colour."""

from __future__ import annotations

from nicegui import ui

from supportchat_app import fmt


class Avatar(ui.avatar):
    def __init__(self, name: str | None, key: str | None = None, size: str = "32px") -> None:
        super().__init__(fmt.initials(name), color=fmt.avatar_color(key or name), text_color="white", size=size,
                         font_size="13px")
        self.tooltip(name or "Unknown")
