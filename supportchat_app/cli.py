"""The `supportchat` command: the desktop app, and the `stack`, `db`, `sync` and `notify` tools.

`supportchat` opens the native window when a display exists, else serves the UI to the browser;
`supportchat --web [--port N]` always uses the browser; `supportchat open` opens the running app's UI in
the browser again. Imports are local to each command so that
`supportchat stack` (which the app itself runs as its demo server in a frozen build) never loads NiceGUI.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from types import ModuleType


def _sync_cli() -> ModuleType | None:
    try:
        from sync import cli as sync_cli
    except ImportError:  # the sync tools are optional for the app itself
        return None
    return sync_cli


def has_display() -> bool:
    if sys.platform != "linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="supportchat", description="SupportChat — local-first support chat")
    parser.add_argument("--web", action="store_true", help="open the UI in the browser instead of a window")
    parser.add_argument("--port", type=int, default=None, help="port of the web UI (default 8080 with --web)")
    parser.add_argument("--no-browser", action="store_true", help="with --web: do not open a browser tab")
    sub = parser.add_subparsers(dest="command")
    from localbase import cli as localbase_cli

    localbase_cli.add_stack_arguments(sub.add_parser("stack", help="run the local Supabase stack in the foreground"))
    localbase_cli.add_db_arguments(sub.add_parser("db", help="database tools"))
    from supportchat_app import doctor  # stdlib-only at import time, so --help stays fast

    doctor.add_arguments(sub.add_parser("doctor", help="check this installation and the server; --json for tools"))
    opener = sub.add_parser("open", help="open the running app's UI in the browser again (a new one-time link)")
    opener.add_argument("--port", type=int, default=None, help="the app's port, when several run on one data dir")
    opener.add_argument("--print", action="store_true", help="print the link instead of opening a browser")
    from notify import cli as notify_cli  # argparse only at import time

    notify_cli.add_arguments(sub.add_parser("notify", help=notify_cli.DESCRIPTION))
    sync_cli = _sync_cli()
    if sync_cli is not None:
        sync_cli.add_arguments(sub.add_parser("sync", help="sync engine tools (status, pull, push, ...)"))
    args = parser.parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int | None]] = {
        "doctor": doctor.main,
        "open": lambda a: open_ui(port=a.port, print_only=a.print),
        "stack": localbase_cli.run_stack,
        "db": localbase_cli.run_db,
        "notify": notify_cli.run,
    }
    if sync_cli is not None:
        commands["sync"] = sync_cli.run
    if args.command in commands:
        return int(commands[args.command](args) or 0)
    return run_app(web=args.web, port=args.port, open_browser=not args.no_browser)


def open_ui(*, port: int | None, print_only: bool) -> int:
    """Ask the running app (through its key file in the data dir) for a new one-time link and open it."""
    import webbrowser

    import httpx

    from supportchat_app import config, launch

    try:
        url = launch.fresh_url(config.data_dir(), port)
    except (LookupError, httpx.HTTPError) as exc:
        print(f"Cannot reach a running SupportChat: {exc}. Start it with `supportchat --web`.", file=sys.stderr)
        return 1
    if print_only or not webbrowser.open(url):
        print(url)
    return 0


def run_app(*, web: bool, port: int | None, open_browser: bool = True) -> int:
    from supportchat_app import main as app_main

    native = not web and has_display()
    if not native and not web:
        print("No display found; serving SupportChat to the browser instead.", file=sys.stderr)
    # SIGTERM takes Ctrl+C's path: uvicorn would otherwise re-raise it and the interpreter would die by the
    # signal, skipping the exit handlers that end the native window's process and the demo server
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        app_main.run(
            native=native,
            port=port if port is not None else (None if native else 8080),
            show=open_browser and not native,
        )
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
