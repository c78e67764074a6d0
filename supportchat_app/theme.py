"""The shared look: colours, CSS for bubbles and notes (light and dark), and `frame()`, the header
every page sits in (brand, search, sync status, dark-mode switch, account menu)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from nicegui import app, ui

from supportchat_app import config
from supportchat_app.components.avatar import Avatar, follow

if TYPE_CHECKING:
    from supportchat_app.backend import Workspace

APP_NAME = "SupportChat"

CSS = """
:root { --sc-own: #2563eb; --sc-other: #f1f5f9; --sc-note: #fff7e0; --sc-note-border: #f2b233;
        --sc-panel: #ffffff; --sc-bg: #f6f7fb; --sc-line: #e5e7eb; --sc-selected: #e8efff; }
.body--dark { --sc-other: #2a2f3a; --sc-note: #3b3220; --sc-note-border: #b8860b; --sc-panel: #1b1f27;
              --sc-bg: #12151b; --sc-line: #2c313c; --sc-selected: #23304d; }
body { background: var(--sc-bg); }
.sc-panel { background: var(--sc-panel); }
.sc-line-r { border-right: 1px solid var(--sc-line); }
.sc-line-b { border-bottom: 1px solid var(--sc-line); }
.sc-line-t { border-top: 1px solid var(--sc-line); }
.sc-bubble { line-height: 1.45; font-size: 14px; overflow-wrap: anywhere; }
.sc-own { background: var(--sc-own); color: #fff; border-bottom-right-radius: 6px; }
.sc-other { background: var(--sc-other); border-bottom-left-radius: 6px; }
.sc-note { background: var(--sc-note); border: 1px dashed var(--sc-note-border); border-radius: 10px; }
.sc-note-input .q-field__control { background: var(--sc-note) !important; }
.sc-mode-toggle { background: var(--sc-other); }
.sc-initials { font-weight: 600; letter-spacing: 0.02em; }
.sc-echo { display: flex; justify-content: flex-end; width: 100%; padding-top: 30px; }
.sc-echo > div { max-width: 72%; }
.sc-ticket-row { cursor: pointer; }
.sc-ticket-row:hover { background: var(--sc-selected); }
.sc-selected { background: var(--sc-selected); box-shadow: inset 3px 0 0 var(--sc-own); }
.sc-kbd { background: var(--sc-other); }
.sc-thread { display: flex; flex-direction: column-reverse; overflow-y: auto; overflow-x: hidden; min-height: 0; }
.q-header { background: var(--sc-panel) !important; color: inherit !important; }
/* Quasar's warning amber is 1.6:1 as text on white; amber-700 reads (5:1). Quasar's rule is an !important in a
   cascade layer, which an unlayered rule cannot beat, so the colour it reads is changed on the element */
body:not(.body--dark) .text-warning { --q-warning: #b45309; }
"""

# tells the server when the window gains or loses focus, for notifications only when nobody is looking
FOCUS_JS = """
window.addEventListener('focus', () => emitEvent('scfocus', true));
window.addEventListener('blur', () => emitEvent('scfocus', false));
emitEvent('scfocus', document.hasFocus());
"""


@dataclass
class Frame:
    """Handles to the header's live parts for the page to fill in."""

    header: ui.header
    actions: ui.row
    status_slot: ui.row
    account_avatar: Avatar | None = None  # the signed-in user's, in the account button (components/avatar.follow)


def apply_dark_mode() -> ui.dark_mode:
    saved = config.load_settings(config.data_dir()).get("dark")
    return ui.dark_mode(value=saved if isinstance(saved, bool) else None)


def _toggle_dark(dark: ui.dark_mode, button: ui.button) -> None:
    dark.value = not bool(dark.value)
    config.save_settings(config.data_dir(), dark=dark.value)
    button.props(f"icon={'light_mode' if dark.value else 'dark_mode'}")


@contextmanager
def frame(
    title: str,
    *,
    on_search: Callable[[], Any] | None = None,
    account: tuple[str, str] | None = None,
    on_sign_out: Callable[[], Any] | None = None,
    on_help: Callable[[], Any] | None = None,
    workspace: Workspace | None = None,
) -> Iterator[Frame]:
    """The page shell. `account` is (display name, role) when someone is signed in; with their `workspace` the
    account button shows their picture (initials without one) and follows its changes."""
    ui.add_css(CSS)
    ui.page_title(title)
    if workspace is not None:
        workspace.events.subscribe(_redraw_for_a_new_role)
        if on_sign_out is None:  # every signed-in page's account menu signs out, not only the workspace's
            on_sign_out = partial(_sign_out, workspace)
    ui.colors(primary="#2563eb")
    dark = apply_dark_mode()
    with ui.header(elevated=False).classes("sc-line-b items-center gap-3 px-4 py-2") as header:
        with ui.link(target="/").classes("no-underline text-inherit flex items-center gap-2"):
            ui.icon("forum", size="26px", color="primary")
            ui.label(APP_NAME).classes("text-lg font-semibold tracking-tight")
        if on_search is not None:
            ui.button("Search", icon="search", on_click=on_search).props(
                'flat no-caps dense color=grey-8 data-testid="open-search"'
            ).mark("open-search").classes("ml-4").tooltip("Ctrl+K")
        ui.space()
        status_slot = ui.row().classes("items-center")
        actions = ui.row().classes("items-center gap-1")
        dark_button = (
            ui.button(icon="light_mode" if dark.value else "dark_mode")
            .props('flat round dense data-testid="dark-toggle"')
            .mark("dark-toggle")
        )
        dark_button.on_click(lambda: _toggle_dark(dark, dark_button))
        dark_button.tooltip("Light / dark")
        if on_help is not None:
            ui.button(icon="keyboard", on_click=on_help).props("flat round dense").tooltip("Shortcuts (?)")
        ui.button(icon="settings", on_click=lambda: ui.navigate.to("/settings")).props("flat round dense").tooltip(
            "Settings"
        )
        account_avatar = None
        if account is not None:
            name, role = account
            with ui.button().props('flat no-caps dense data-testid="account"').mark("account"):
                user = workspace.engine.user if workspace is not None else None
                # coloured by the user's id, as their avatar everywhere else (bubbles, rows, profile)
                account_avatar = Avatar(name, user.id if user is not None else None, size="28px")
                if workspace is not None and user is not None:
                    account_avatar.set_image(workspace.engine.avatars.file(user.id))
                    follow(account_avatar, workspace, user.id)
                with ui.column().classes("gap-0 items-start ml-2"):
                    ui.label(name).classes("text-sm leading-tight")
                    ui.label(role).classes("text-xs opacity-60 leading-tight")
                with ui.menu():
                    ui.menu_item("Profile and notifications", on_click=lambda: ui.navigate.to("/profile")).props(
                        'data-testid="profile"'
                    ).mark("profile")
                    if role in ("agent", "admin"):  # the agent workspace (issue 14)
                        ui.menu_item("Canned replies", on_click=lambda: ui.navigate.to("/canned")).mark("menu-canned")
                        ui.menu_item("Macros", on_click=lambda: ui.navigate.to("/macros")).mark("menu-macros")
                        ui.menu_item("Tags and SLA", on_click=lambda: ui.navigate.to("/desk-settings")).mark(
                            "menu-desk-settings"
                        )
                    if role == "admin":
                        ui.menu_item("Team and invitations", on_click=lambda: ui.navigate.to("/invite")).props(
                            'data-testid="invite"'
                        ).mark("invite")
                    if on_sign_out is not None:
                        ui.menu_item("Sign out", on_click=on_sign_out).props('data-testid="sign-out"').mark("sign-out")
    yield Frame(header=header, actions=actions, status_slot=status_slot, account_avatar=account_avatar)


async def _sign_out(workspace: Workspace) -> None:
    await workspace.sign_out()
    ui.navigate.to("/signin")


def _redraw_for_a_new_role(event: Any) -> None:
    """The server gave the user another role (sync's ``RoleChanged``): every signed-in page is drawn anew, so what
    it shows and offers (and its access guard) follows the new role."""
    from sync.events import RoleChanged  # a workspace exists, so sync is loaded already

    if isinstance(event, RoleChanged):
        dropped = (
            f" {event.dropped_unsent} unsent changes it may not make were dropped." if event.dropped_unsent else ""
        )
        ui.notify(f"Your role is now {event.role}; this device's copy was rebuilt for it.{dropped}", type="info")
        ui.navigate.reload()


def browser_id() -> str:
    return str(app.storage.browser["id"])


def centered_card() -> ui.card:
    return ui.card().classes("sc-panel w-[440px] max-w-[92vw] mx-auto mt-16 p-6 gap-3")
