"""A person's avatar: their picture when this device has it (downloaded beside the cache, so it shows
offline too; sync/avatars.py), else initials with a colour derived from the person's id, so everyone
keeps their colour."""

from __future__ import annotations

from pathlib import Path

from nicegui import ui

from supportchat_app import fmt


class Avatar(ui.avatar):
    def __init__(self, name: str | None, key: str | None = None, size: str = "32px", image: Path | None = None) -> None:
        # QAvatar's `icon` would draw the letters with the icon font; they go in the default slot instead
        super().__init__(None, color=fmt.avatar_color(key or name), text_color="white", size=size, font_size="13px")
        self.name = name
        self.image: Path | None = None
        self.set_image(image)
        self.tooltip(name or "Unknown")

    def set_image(self, image: Path | None) -> None:
        """Show this picture (None: the initials)."""
        if image == self.image and self.default_slot.children:
            return
        self.image = image
        self.clear()
        with self:
            if image is not None:
                # the local file is served by NiceGUI under a route of its own, behind the launch guard
                ui.image(image).classes("w-full h-full rounded-full").props(
                    'fit=cover no-spinner no-transition data-testid="avatar-image"'
                ).mark("avatar-image")
            else:
                ui.label(fmt.initials(self.name)).classes("sc-initials")
