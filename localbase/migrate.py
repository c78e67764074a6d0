"""Apply the SQL in `sql/` to a PostgreSQL database, once each, recorded like the Supabase CLI does.

Two kinds of files, each with its own applied-once history:
- `sql/local/<NNNN>_<concern>.sql` — what a Supabase project has before any migration runs (roles,
  `auth`, grants, role settings, ...), for localbase and plain PostgreSQL only; recorded in
  `localbase.local_sql`, so a local file added later still reaches a data dir made before it. Applied by
  a superuser (localbase's `supabase_admin`); never applied to a real Supabase project.
- `sql/migrations/<version>_<name>.sql` — the project's schema, applied in version order, each in one
  transaction together with its row in `supabase_migrations.schema_migrations`, so a migration is either
  applied and recorded or not applied at all. localbase runs them as the non-superuser `postgres`, as
  `supabase db push` does on a project.

A session advisory lock serializes concurrent migrators. A transaction pooler (Supabase's port 6543,
PgBouncer in transaction mode) hands each transaction to any server connection, so that lock cannot
hold: `PoolerError` is raised before anything is applied.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9_]+)\.sql$")
LOCAL_NAME = re.compile(r"^\d{4}_[A-Za-z0-9_]+\.sql$")
LOCK_KEY = 7323001
TRANSACTION_POOLER_PORT = 6543  # Supabase's Supavisor in transaction mode


class PoolerError(RuntimeError):
    """The URL reaches a transaction pooler, where migrations cannot run safely."""


def sql_dir() -> Path:
    """The project's `sql/` folder, in a checkout or inside a frozen bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "sql"
    return Path(__file__).resolve().parent.parent / "sql"


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path


def migrations(folder: Path | None = None) -> list[Migration]:
    """The migration files in version order; a misnamed file is an error, not a silent skip."""
    folder = folder or sql_dir() / "migrations"
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if match is None:
            raise ValueError(f"{path.name}: migration files are named <YYYYMMDDHHMMSS>_<name>.sql")
        found.append(Migration(match["version"], match["name"], path))
    return found


def local_files(folder: Path | None = None) -> list[Path]:
    """The `sql/local` files in order; a misnamed file is an error, not a silent skip."""
    folder = folder or sql_dir() / "local"
    found = sorted(folder.glob("*.sql"))
    for path in found:
        if not LOCAL_NAME.match(path.name):
            raise ValueError(f"{path.name}: sql/local files are named <NNNN>_<concern>.sql")
    return found


CREATE_HISTORY = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text primary key, statements text[], name text
);
"""

CREATE_LOCAL_HISTORY = """
create schema if not exists localbase;
revoke all on schema localbase from public;
create table if not exists localbase.local_sql (
  name text primary key, applied_at timestamptz not null default now()
);
"""


def _wants_local(conn: psycopg.Connection, bootstrap: bool | None) -> bool:
    """Whether to apply `sql/local` first: on plain PostgreSQL, and on localbase when we are its superuser."""
    if bootstrap is not None:
        return bootstrap
    row = conn.execute(
        # plain PostgreSQL, or one bootstrapped before a sql/local file existed (the last object each creates)
        "select to_regclass('auth.users') is null or to_regrole('authenticator') is null"
        " or to_regclass('auth.mfa_amr_claims') is null or to_regclass('realtime.messages') is null"
        " or to_regclass('storage.objects') is null,"
        " exists(select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        "        where n.nspname = 'localbase' and c.relname = 'local_sql'),"
        " (select rolsuper from pg_roles where rolname = current_user)"
    ).fetchone()
    if row is None:
        return False
    plain, has_local_history, superuser = row
    return bool(plain or (has_local_history and superuser))


def check_not_transaction_pooler(db_url: str) -> None:
    """Refuse a URL on the transaction pooler's port before connecting (the lock would not hold there)."""
    try:
        port = urlsplit(db_url).port
    except ValueError:
        port = None
    if port == TRANSACTION_POOLER_PORT:
        raise PoolerError(
            f"This URL uses port {TRANSACTION_POOLER_PORT}, Supabase's transaction pooler, where migrations cannot"
            " hold their lock and could be half-applied. Use the direct connection (port 5432) or the session"
            " pooler (port 5432 on the pooler host) instead."
        )


def _lock(conn: psycopg.Connection) -> None:
    """Take the migration lock and prove it is still ours on a later statement (no transaction pooler)."""
    # each statement in autocommit is its own transaction: a pooler may hand each to another backend
    pids = {conn.execute("select pg_backend_pid()").fetchone() for _ in range(3)}
    conn.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
    row = conn.execute(
        "select pg_backend_pid(), exists(select 1 from pg_locks where locktype = 'advisory' and granted"
        " and pid = pg_backend_pid() and objid = %s)",
        (LOCK_KEY,),
    ).fetchone()
    if row is None or len(pids) != 1 or pids != {(row[0],)} or not row[1]:
        raise PoolerError(
            "The connection does not keep its session between statements (a transaction pooler such as"
            " PgBouncer in transaction mode or Supabase's port 6543), so the migration lock cannot hold and"
            " nothing was applied. Use a direct or session-mode connection."
        )


def _unlock(conn: psycopg.Connection) -> None:
    if not conn.closed:
        conn.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))


def _apply_local(conn: psycopg.Connection) -> list[str]:
    conn.execute(CREATE_LOCAL_HISTORY)
    done = {row[0] for row in conn.execute("select name from localbase.local_sql")}
    applied: list[str] = []
    for path in local_files():
        if path.name in done:
            continue
        with conn.transaction():
            conn.execute(path.read_text())
            conn.execute("insert into localbase.local_sql (name) values (%s)", (path.name,))
        applied.append(path.name)
    return applied


def apply_local(superuser_url: str) -> list[str]:
    """Apply the `sql/local` files not yet applied (as a superuser); return their names."""
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        _lock(conn)
        try:
            return _apply_local(conn)
        finally:
            _unlock(conn)


def apply_all(db_url: str, *, bootstrap: bool | None = None) -> list[str]:
    """Bring the database up to date; return the migration versions applied now (empty when up to date).

    `bootstrap=None` applies `sql/local/` first only where the database is localbase or plain PostgreSQL
    (never on a Supabase project, which has all of it already); the URL's user then needs superuser rights.
    """
    check_not_transaction_pooler(db_url)
    applied_now: list[str] = []
    with psycopg.connect(db_url, autocommit=True, prepare_threshold=None) as conn:
        _lock(conn)
        try:
            if _wants_local(conn, bootstrap):
                _apply_local(conn)
            conn.execute(CREATE_HISTORY)
            done = {row[0] for row in conn.execute("select version from supabase_migrations.schema_migrations")}
            for migration in migrations():
                if migration.version in done:
                    continue
                text = migration.path.read_text()
                with conn.transaction():
                    # belt and braces: even where the session lock could not hold, a migration is applied
                    # once, whole, by one migrator (the second one waits here, then sees it recorded)
                    conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY + 1,))
                    if conn.execute(
                        "select 1 from supabase_migrations.schema_migrations where version = %s", (migration.version,)
                    ).fetchone():
                        continue
                    conn.execute(text)
                    conn.execute(
                        "insert into supabase_migrations.schema_migrations (version, statements, name)"
                        " values (%s, %s, %s)",
                        (migration.version, [text], migration.name),
                    )
                applied_now.append(migration.version)
        finally:
            _unlock(conn)
    return applied_now
