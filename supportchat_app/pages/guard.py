"""The one page guard: every page enters through `enter`, which waits for the server to be resolved
(else the boot page), finds this browser's workspace and checks who may see the page. Which browser
may reach the app at all is decided before any page, by the launch secret (supportchat_app/launch.py)."""

from __future__ import annotations

from typing import Literal

from nicegui import ui
from starlette.responses import RedirectResponse

from supportchat_app import backend as backend_module
from supportchat_app import theme
from supportchat_app.backend import Workspace
from supportchat_app.pages import boot

Access = Literal["signed-in", "signed-out", "admin"]


async def enter(path: str, access: Access) -> Workspace | RedirectResponse | None:
    """This browser's workspace if the page may show; otherwise a redirect, or None when the boot page
    (starting, or the server's error with a next step) was rendered instead."""
    backend = backend_module.current()
    workspace = await backend.workspace(theme.browser_id(), ui.context.client) if backend.phase == "ready" else None
    if workspace is None:
        boot.render(backend, path)
        return None
    engine = workspace.engine
    user = engine.user
    if access == "signed-out":
        # the sign-in page also serves a user whose session the server no longer accepts
        if user is not None and engine.status.state != "needs-sign-in":
            return RedirectResponse("/")
        return workspace
    if user is None:
        return RedirectResponse("/signin")
    if access == "admin" and user.role != "admin":
        return RedirectResponse("/")
    return workspace
