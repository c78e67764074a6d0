"""A person's avatar: their picture when this device has it (downloaded beside the cache, so it shows
offline too; sync/avatars.py), else initials with a colour derived from the person's id, so everyone
keeps their colour. ``follow`` keeps an avatar on a user's current picture as it changes (AvatarsChanged)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nicegui import ui

from supportchat_app import fmt
from supportchat_app.pictures import picture_url

if TYPE_CHECKING:  # sync loads with the first workspace, not at start
    from supportchat_app.backend import Workspace
    from sync import events


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
                # served by the app's picture route, by its bytes (supportchat_app/pictures.py)
                ui.image(picture_url(image)).classes("w-full h-full rounded-full").props(
                    'fit=cover no-spinner no-transition data-testid="avatar-image"'
                ).mark("avatar-image")
            else:
                ui.label(fmt.initials(self.name)).classes("sc-initials")


def follow(avatar: Avatar, workspace: Workspace, user_id: str) -> Avatar:
    """Redraw ``avatar`` whenever ``user_id``'s picture arrives, changes or goes (in the page's context: the
    subscription ends with the page)."""

    from sync.events import AvatarsChanged  # a workspace exists, so sync is loaded already

    def on_event(event: events.Event) -> None:
        if isinstance(event, AvatarsChanged) and user_id in event.user_ids and not avatar.is_deleted:
            avatar.set_image(workspace.engine.avatars.file(user_id))

    workspace.events.subscribe(on_event)
    return avatar
