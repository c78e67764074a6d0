"""``supportchat sync …``: a small headless front end to the engine, for scripting and support.

    supportchat sync sign-in --email E [--password P]   (or SUPPORTCHAT_PASSWORD, else a prompt)
    supportchat sync status                             who is signed in, SyncStatus (no network)
    supportchat sync push                               flush the outbox now
    supportchat sync pull                               catch up from the server now
    supportchat sync outbox                             list queued and failed entries
    supportchat sync sign-out                           stop, delete this user's cache and session

The server comes from ``--url``/``--anon-key`` or SUPABASE_URL/SUPABASE_ANON_KEY; the data dir from
``--data-dir`` or SUPPORTCHAT_DATA_DIR. ``--json`` prints one JSON object. Exit codes: 0 done,
1 the server could not be reached or refused, 2 bad usage, 3 sign-in needed.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from sync.engine import SyncEngine
from sync.errors import AuthError, SyncError
from sync.models import RemoteConfig, as_dict

COMMANDS = ("status", "push", "pull", "outbox", "sign-in", "sign-out")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``sync`` sub-command's arguments to ``parser``."""
    parser.add_argument("action", choices=COMMANDS, help="what to do")
    parser.add_argument("--url", default=os.environ.get("SUPABASE_URL"), help="Supabase project URL")
    parser.add_argument("--anon-key", default=os.environ.get("SUPABASE_ANON_KEY"), help="the project's anon key")
    parser.add_argument("--data-dir", type=Path, default=None, help="where caches and the session live")
    parser.add_argument("--email", help="for sign-in")
    parser.add_argument("--password", help="for sign-in (else SUPPORTCHAT_PASSWORD, else a prompt)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run the parsed ``sync`` command; returns the process exit code."""
    if not args.url or not args.anon_key:
        print("sync: set SUPABASE_URL and SUPABASE_ANON_KEY (or pass --url and --anon-key)", file=sys.stderr)
        return 2
    try:
        config = RemoteConfig(args.url, args.anon_key)
    except ValueError as exc:
        print(f"sync: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(config, args))


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, default=str) if args.json else text)


async def _run(config: RemoteConfig, args: argparse.Namespace) -> int:
    engine = await SyncEngine.open(config, args.data_dir)
    try:
        return await _dispatch(engine, args)
    except AuthError as exc:
        print(f"sync: {exc.reason()}", file=sys.stderr)
        return 3
    except SyncError as exc:
        print(f"sync: {exc.reason()}", file=sys.stderr)
        return 1
    finally:
        await engine.close()


async def _dispatch(engine: SyncEngine, args: argparse.Namespace) -> int:
    action = args.action
    if action == "sign-in":
        if not args.email:
            print("sync: sign-in needs --email", file=sys.stderr)
            return 2
        password = args.password or os.environ.get("SUPPORTCHAT_PASSWORD") or getpass.getpass("password: ")
        user = await engine.sign_in(args.email, password)
        _print(args, {"user": as_dict(user)}, f"signed in as {user.display_name} <{user.email}> ({user.role})")
        return 0
    if engine.user is None:
        print("sync: not signed in (run: supportchat sync sign-in --email …)", file=sys.stderr)
        return 3
    if action == "status":
        status = engine.status
        _print(
            args,
            {"user": as_dict(engine.user), "status": as_dict(status)},
            f"{engine.user.email} ({engine.user.role}): {status.pending} pending, {status.failed} failed"
            f"{'; last error: ' + status.last_error if status.last_error else ''}",
        )
        return 0
    if action == "push":
        sent = await engine.push()
        _print(
            args,
            {"sent": sent, "status": as_dict(engine.status)},
            f"sent {sent}; {engine.status.pending} pending, {engine.status.failed} failed",
        )
        return 0
    if action == "pull":
        rows = await engine.pull()
        _print(args, {"rows": rows, "status": as_dict(engine.status)}, f"pulled {rows} rows")
        return 0
    if action == "outbox":
        entries = engine.cache.outbox()
        lines = [
            f"{e['seq']:>6} {e['kind']:<14} {e['entity_id']} {e['state']}{'  ' + e['error'] if e['error'] else ''}"
            for e in entries
        ]
        _print(args, {"outbox": entries}, "\n".join(lines) if lines else "outbox empty")
        return 0
    await engine.sign_out()
    _print(args, {"signed_out": True}, "signed out; local cache deleted")
    return 0
