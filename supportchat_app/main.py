"""Wires the app together: the backend, the pages, startup and shutdown, and `ui.run`.

Also the NiceGUI main file for the `user` fixture tests: run as `__main__` by the test harness, where
`ui.run` only prepares the simulated app.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

from nicegui import app, ui

from supportchat_app import (
    backend,
    blobs,
    config,
    fonts,
    foreground,
    launch,
    pagehide,
    pictures,
    speedups,
    styles,
    theme,
)
from supportchat_app.account import abandon_all_resets
from supportchat_app.components import inbox_shell
from supportchat_app.pages import boot, canned, desk_settings, invite, macros, profile, settings, signin, workspace

speedups.install()  # NiceGUI's per-element no-ops cut (supportchat_app/speedups.py)

WINDOW_SIZE = (1280, 820)
STATIC = Path(__file__).resolve().parent / "static"


def icon() -> Path:
    """The app icon as favicon and (Windows) window icon; resolves inside a frozen bundle too."""
    return STATIC / ("supportchat.ico" if sys.platform == "win32" else "supportchat.png")


def storage_secret() -> str:
    """Signs the browser-session cookie; kept per data dir so a restart keeps the same session."""
    root = config.data_dir()
    secret = config.load_settings(root).get("storage_secret")
    if not isinstance(secret, str) or len(secret) < 32:
        secret = secrets.token_hex(32)
        config.save_settings(root, storage_secret=secret)
    return secret


def build() -> backend.Backend:
    """Install a fresh backend and register every page (called once per app process or test run)."""
    current = backend.Backend(config.data_dir())
    backend.install(current)
    # every button keeps the case it is written in (Quasar's default is capitals): "Sign in", not "SIGN IN"
    ui.button.default_props("no-caps")
    signin.create()
    settings.create()
    invite.create()
    profile.create()
    canned.create()
    macros.create()
    desk_settings.create()
    workspace.create()
    inbox_shell.create()
    pagehide.install()
    styles.install()
    fonts.install()
    blobs.create()
    pictures.create()
    app.on_page_exception(boot.error_page)
    app.on_startup(current.boot)
    app.on_startup(speedups.freeze_heap)
    app.on_shutdown(current.shutdown)
    app.on_shutdown(abandon_all_resets)  # a password reset's recovery session never outlives the app
    return current


def drop_process_pool() -> None:
    """Close NiceGUI's process pool: the app never runs work in it (I/O goes to threads).

    Without a pool, NiceGUI's two shutdown paths on SIGTERM in native mode (the signal in the main thread and the
    thread that watches the window process) cannot race over tearing it down; that race printed an
    AssertionError traceback from `nicegui.run._kill_processes` now and then.
    """
    from nicegui import run as nicegui_run

    if nicegui_run.process_pool is not None:
        nicegui_run.process_pool.shutdown(wait=False, cancel_futures=True)
        nicegui_run.process_pool = None


# How long the server keeps a page whose socket went quiet. NiceGUI's default (3 s) also sets the socket's ping
# timeout to 2 s, so a machine busy for two seconds (a first sync, a build, a sleeping laptop) dropped the
# page: NiceGUI then reloads it and whatever was in flight (an open inline edit, a click, keystrokes) is lost.
# The app and its page are on the same machine; 30 s (ping every 24 s, 12 s to answer) only costs keeping a
# closed tab's elements a little longer.
RECONNECT_TIMEOUT = 30.0


def guard(target: Any, *, port: int, key: str, token: str) -> None:
    """The launch guard in front of everything, and page loads first (foreground.py) inside it: Starlette makes the
    middleware added last the outermost, so a request the guard refuses never counts as a page load. The simulated
    `user` fixture runs unguarded, without either."""
    target.add_middleware(foreground.PageLoads)
    target.add_middleware(launch.LaunchGuard, port=port, key=key, tokens=(token,))


def run(*, native: bool, port: int | None = None, show: bool = True, guarded: bool = True) -> None:
    """Serve the app; `guarded` puts the launch guard in front of everything (`launch.LaunchGuard`): the
    printed (or opened) URL carries a one-time token, the key file in the data dir lets `supportchat open`
    ask for more."""
    build()
    app.on_startup(drop_process_pool)
    opens: bool | str = show and not native
    if guarded:
        port = port or launch.free_port()
        token, key, root = launch.new_secret(), launch.new_secret(), config.data_dir()
        guard(app, port=port, key=key, token=token)
        launch.write_key_file(root, port, key)
        app.on_shutdown(lambda: launch.remove_key_file(root, port))
        url = f"http://127.0.0.1:{port}{launch.launch_path(token)}"
        if native:
            app.native.window_args["url"] = url
            # downloads stay off: pywebview's Qt handler quits the app on Qt 6; Save asks the window itself
            # (components/native_files.py)
        elif opens:
            opens = launch.launch_path(token)
        print(f"SupportChat is at {url}", flush=True)
        print("(each link works once; `supportchat open` gives a new one)", flush=True)
    ui.run(
        title=theme.APP_NAME,
        native=native,
        host="127.0.0.1",
        port=port,
        reload=False,
        show=opens,
        storage_secret=storage_secret(),
        show_welcome_message=False,
        favicon=icon(),
        dark=None,
        window_size=WINDOW_SIZE if native else None,
        reconnect_timeout=RECONNECT_TIMEOUT,
        tailwind=False,  # the app's Tailwind classes come built ahead (styles.py), not compiled in the page
        # uncompressed: the app listens on 127.0.0.1 only, where compression saves no time on the wire and costs CPU
        # on both ends: NiceGUI's GZipMiddleware (level 9) took ~6.5 ms of the one event loop per workspace load on
        # the bench's desk, mostly the page's second chunk while the browser paints the first (bench/README, desk,
        # twelfth pass), which the browser then inflated again
        gzip_middleware_factory=None,
    )


if __name__ == "__main__":
    # the NiceGUI test harness runs this file as __main__ (ui.run is simulated, its client needs no launch
    # secret); users start `supportchat`, which always runs guarded
    run(native=False, show=False, guarded=False)
