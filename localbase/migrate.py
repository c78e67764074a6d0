"""Apply the SQL in `sql/` to a PostgreSQL database, once each, recorded like the Supabase CLI does.

`sql/local/*.sql` (what Supabase already has) is applied only where the database lacks it, i.e. on
plain PostgreSQL; `sql/migrations/<version>_<name>.sql` are applied in version order, each in one
transaction together with its row in `supabase_migrations.schema_migrations`, so a migration is
either applied and recorded or not applied at all, and running again applies only what is new.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9_]+)\.sql$")


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


CREATE_HISTORY = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text primary key, statements text[], name text
);
"""


def _needs_bootstrap(conn: psycopg.Connection) -> bool:
    # the last object each sql/local file creates: a data dir made before a file existed gets it too
    row = conn.execute("select to_regclass('auth.users') is null or to_regrole('authenticator') is null"
                       " or to_regclass('auth.mfa_amr_claims') is null"
                       " or to_regclass('realtime.messages') is null"
                       " or not exists (select 1 from pg_event_trigger where evtname = 'localbase_storage_sql_drop')"
                       ).fetchone()
    return bool(row and row[0])


def apply_all(db_url: str, *, bootstrap: bool | None = None) -> list[str]:
    """Bring the database up to date; return the versions applied now (empty when up to date).

    `bootstrap=None` applies `sql/local/` only when the database is plain PostgreSQL.
    """
    applied_now: list[str] = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        # serialize concurrent migrators (two stacks, a CLI run beside a stack)
        conn.execute("select pg_advisory_lock(7323001)")
        try:
            if bootstrap or (bootstrap is None and _needs_bootstrap(conn)):
                for path in sorted((sql_dir() / "local").glob("*.sql")):
                    with conn.transaction():
                        conn.execute(path.read_text())
            conn.execute(CREATE_HISTORY)
            done = {row[0] for row in conn.execute("select version from supabase_migrations.schema_migrations")}
            for migration in migrations():
                if migration.version in done:
                    continue
                text = migration.path.read_text()
                with conn.transaction():
                    conn.execute(text)
                    conn.execute(
                        "insert into supabase_migrations.schema_migrations (version, statements, name)"
                        " values (%s, %s, %s)",
                        (migration.version, [text], migration.name),
                    )
                applied_now.append(migration.version)
        finally:
            conn.execute("select pg_advisory_unlock(7323001)")
    return applied_now
