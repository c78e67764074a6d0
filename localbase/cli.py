"""Command line of the local stack: `stack` (run it), `db migrate` (apply sql/ anywhere) and `db check`
(what a live database lacks for the app).

`supportchat stack ...` and `supportchat db ...` hand their arguments to `main` here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import platformdirs

DEFAULT_PORT = 54321


def default_data_dir() -> Path:
    """`SUPPORTCHAT_DATA_DIR`/localbase, else the platform's user data dir."""
    import os

    base = os.environ.get("SUPPORTCHAT_DATA_DIR")
    root = Path(base) if base else Path(platformdirs.user_data_dir("supportchat", appauthor=False))
    return root / "localbase"


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="API port (0 = any free port)")
    parser.add_argument("--db-port", type=int, default=None, help="PostgreSQL port (default: any free port)")
    parser.add_argument("--data", type=Path, default=None, help="data directory (default: platform data dir)")
    parser.add_argument("--demo", action="store_true", help="seed demo accounts and tickets, use the demo keys")
    parser.add_argument("--json", action="store_true", help="print one JSON line with the connection details")
    parser.add_argument(
        "--smtp-url",
        default=None,
        metavar="URL",
        help="send auth emails through this SMTP server (smtp://user:pass@host:port, smtps://...);"
        " without it they wait in the local inbox at /inbox/api/v1",
    )


def add_db_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", required=True)
    mig = sub.add_parser("migrate", help="apply sql/migrations to a PostgreSQL database")
    mig.add_argument("--db-url", required=True, help="postgresql://... (a Supabase project's direct URL works)")
    mig.add_argument(
        "--bootstrap",
        choices=["auto", "yes", "no"],
        default="auto",
        help="apply sql/local (what Supabase already has) first: auto = only on plain PostgreSQL",
    )
    check = sub.add_parser(
        "check", help="report what a live database lacks for the app (after db migrate or supabase db push)"
    )
    check.add_argument("--db-url", required=True, help="postgresql://... (a Supabase project's URL works)")
    check.add_argument("--json", action="store_true", help="one JSON object: ok, checks, problems, summary")


def run_stack(args: argparse.Namespace) -> int:
    import os

    from localbase.mail import SmtpTarget
    from localbase.server import run_foreground

    if getattr(args, "smtp_url", None):
        try:
            SmtpTarget.parse(args.smtp_url)
        except ValueError as exc:
            print(f"--smtp-url: {exc}", file=sys.stderr)
            return 2
        os.environ["LOCALBASE_SMTP_URL"] = args.smtp_url  # the auth service reads its mail settings from here

    data_dir = args.data or default_data_dir()
    return run_foreground(data_dir, args.port, args.demo, args.json, db_port=args.db_port)


def run_db(args: argparse.Namespace) -> int:
    import psycopg

    from localbase import migrate

    if args.db_command == "check":
        return run_check(args)
    bootstrap = {"auto": None, "yes": True, "no": False}[args.bootstrap]
    try:
        applied = migrate.apply_all(args.db_url, bootstrap=bootstrap)
    except migrate.PoolerError as exc:
        print(f"Migration refused: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        print(f"Migration failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"applied": applied}) if applied else "Database is up to date.")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """`db check`: exit 0 when nothing is missing, 1 on a problem, 2 when the database cannot be read."""
    import psycopg

    from localbase import check

    try:
        checks = check.run(args.db_url)
    except psycopg.Error as exc:
        message = f"Cannot check the database: {str(exc).strip()}"
        print(
            json.dumps({"ok": False, "checks": [], "problems": [message], "summary": message})
            if args.json
            else message,
            file=sys.stdout if args.json else sys.stderr,
        )
        return 2
    print(check.report(checks, args.json))
    return 0 if all(c.ok for c in checks) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localbase", description="Supabase-compatible local stack")
    sub = parser.add_subparsers(dest="command")
    add_stack_arguments(sub.add_parser("stack", help="run the stack in the foreground"))
    add_db_arguments(sub.add_parser("db", help="database tools"))
    args = parser.parse_args(argv)
    if args.command == "db":
        return run_db(args)
    if args.command is None:
        args = parser.parse_args(["stack", *(argv if argv is not None else sys.argv[1:])])
    return run_stack(args)
