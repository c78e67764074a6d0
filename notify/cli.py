"""`supportchat notify`: arguments, logging and signal handling around `worker.Worker`.

Secrets can come from the environment instead of the command line (where `ps` shows them):
SUPPORTCHAT_DB_URL and SUPPORTCHAT_SMTP_URL; the service role key for the orphan purge only from there
(SUPPORTCHAT_SERVICE_KEY).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notify.orphans import StorageAdmin

DESCRIPTION = "mail replies that stay unread (drains the server's notifications outbox into SMTP)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--db-url",
        default=env("SUPPORTCHAT_DB_URL"),
        help="direct PostgreSQL URL of the project (env SUPPORTCHAT_DB_URL)",
    )
    parser.add_argument(
        "--smtp-url",
        default=env("SUPPORTCHAT_SMTP_URL"),
        help="smtp://[user:pass@]host[:port] (STARTTLS when offered; ?starttls=require) or "
        "smtps://... (env SUPPORTCHAT_SMTP_URL)",
    )
    parser.add_argument(
        "--from",
        dest="from_address",
        default="support@localhost",
        help="sender address; the display name is the message author's (default %(default)s)",
    )
    parser.add_argument(
        "--app-url",
        default="http://127.0.0.1:8080",
        help="where the app's web UI is reached; mails link to <app-url>/?t=<ticket>",
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=300.0,
        help="seconds a message must stay unread before it is mailed (default %(default)s; "
        "a user's preference overrides it)",
    )
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between looks at an idle queue")
    parser.add_argument("--batch", type=int, default=100, help="mails (recipient+ticket groups) claimed at once")
    parser.add_argument(
        "--lease",
        type=float,
        default=600.0,
        help="seconds a claim holds before another worker may take over a hung worker's rows",
    )
    parser.add_argument(
        "--retry-base",
        type=float,
        default=30.0,
        help="first retry after an SMTP error, in seconds (doubles, capped at an hour)",
    )
    parser.add_argument("--max-attempts", type=int, default=8, help="give up on a mail after this many tries")
    parser.add_argument(
        "--connections",
        type=int,
        default=8,
        help="mails per wave, one per SMTP connection; the worker keeps three such sets of connections"
        " (default %(default)s)",
    )
    parser.add_argument(
        "--api-url",
        default=env("SUPABASE_URL"),
        help="the project's API URL; with SUPPORTCHAT_SERVICE_KEY in the environment, orphan attachment objects"
        " and avatar pictures no profile names are purged every 10 minutes",
    )
    parser.add_argument(
        "--orphan-grace-hours",
        type=float,
        default=168.0,
        help="hours an uploaded attachment may wait for its row, or an avatar picture no profile names may stay,"
        " before it counts as an orphan (default a week)",
    )
    parser.add_argument("--once", action="store_true", help="send what is due now, then exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every mail")


def run(args: argparse.Namespace) -> int:
    from notify.worker import Settings, Worker

    if not args.db_url or not args.smtp_url:
        print(
            "supportchat notify needs --db-url and --smtp-url (or SUPPORTCHAT_DB_URL / SUPPORTCHAT_SMTP_URL)",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s notify %(levelname)s %(message)s"
    )
    settings = Settings(
        db_url=args.db_url,
        smtp_url=args.smtp_url,
        from_address=args.from_address,
        app_url=args.app_url,
        delay=args.delay,
        poll=args.poll,
        batch=args.batch,
        lease=args.lease,
        retry_base=args.retry_base,
        max_attempts=args.max_attempts,
        connections=args.connections,
        storage=_storage(args),
        orphan_grace=args.orphan_grace_hours * 3600,
    )
    try:
        worker = Worker(settings)
    except ValueError as exc:
        print(f"supportchat notify: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"notify: draining the outbox into {worker.target.redacted()}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        stats = worker.run(stop, once=args.once)
    finally:
        worker.close()
    print(
        f"notify: {stats.mails} mails in {time.perf_counter() - started:.3f} s, {stats.skipped} groups skipped, "
        f"{stats.retried} retried, {stats.failed} failed",
        file=sys.stderr,
    )
    return 0


def _storage(args: argparse.Namespace) -> StorageAdmin | None:
    """The Storage API for the orphan purge: the service key only from the environment (never argv)."""
    from notify.orphans import StorageAdmin

    key = os.environ.get("SUPPORTCHAT_SERVICE_KEY", "")
    return StorageAdmin(args.api_url, key) if args.api_url and key else None
