"""The `supportchat` command: the desktop app, and the `stack`, `db` and `sync` tools."""

from __future__ import annotations

import argparse
import multiprocessing
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="supportchat", description="SupportChat — local-first support chat")
    sub = parser.add_subparsers(dest="command")
    from localbase import cli as localbase_cli

    localbase_cli.add_stack_arguments(sub.add_parser("stack", help="run the local Supabase stack in the foreground"))
    localbase_cli.add_db_arguments(sub.add_parser("db", help="database tools"))
    args = parser.parse_args(argv)
    if args.command == "stack":
        return localbase_cli.run_stack(args)
    if args.command == "db":
        return localbase_cli.run_db(args)
    # the app itself lands with the desktop-app issue; until then start the demo stack
    return localbase_cli.main(["stack", "--demo"])


if __name__ == "__main__":
    multiprocessing.freeze_support()
    raise SystemExit(main())
