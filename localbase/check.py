"""`supportchat db check`: does a live database (a Supabase project or localbase) have what the app needs?

Run after `db migrate` or `supabase db push`. It only reads the catalogs, as whatever role the URL
names (a project's `postgres` works, so does the session or transaction pooler), and reports one plain
sentence per problem:
- migrations: every file of `sql/migrations` recorded in `supabase_migrations.schema_migrations`;
- grants: each API role has exactly the door the app uses (authenticated reads and writes the four
  tables and executes the `sync_*` pulls; anon has nothing; no API role may truncate, reference or
  trigger them) — on today's Supabase nothing is granted by default, so a missing grant is a 42501;
- RLS enabled on each table, with a policy for every command the app runs as `authenticated`;
- publication membership in `supabase_realtime` (else realtime delivers nothing);
- role timeouts: `statement_timeout` on anon and authenticated (Supabase's 3 s / 8 s), so a runaway
  API query cannot hold a connection.

The expectations live here, next to the checks, because they are the app's needs, not the schema's:
a new migration that adds what the app needs adds it here too (tests/test_db_check.py keeps them honest
against the migrations).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

import psycopg

from localbase import migrate

Privilege = Literal["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]
Command = Literal["SELECT", "INSERT", "UPDATE", "DELETE"]

SCHEMA = "public"
PUBLICATION = "supabase_realtime"
API_ROLES = ("anon", "authenticated", "service_role")
# what the app does as a signed-in user, per table (each needs the grant and, under RLS, a policy)
APP_COMMANDS: dict[str, tuple[Command, ...]] = {
    "profiles": ("SELECT", "UPDATE"),
    "tickets": ("SELECT", "INSERT", "UPDATE"),
    "messages": ("SELECT", "INSERT", "UPDATE"),
    "ticket_reads": ("SELECT", "INSERT", "UPDATE"),
}
NEVER_FOR_API: tuple[Privilege, ...] = ("TRUNCATE", "REFERENCES", "TRIGGER")
PULL_FUNCTIONS = (
    "public.sync_horizon()",
    "public.sync_profiles(bigint, bigint, integer)",
    "public.sync_tickets(bigint, bigint, integer)",
    "public.sync_messages(bigint, bigint, integer)",
    "public.sync_ticket_reads(bigint, bigint, integer)",
)
TIMEOUT_ROLES = {"anon": "3s", "authenticated": "8s"}  # Supabase's values, named in the advice


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _one(conn: psycopg.Connection, query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def _migrations(conn: psycopg.Connection) -> list[Check]:
    if not _one(conn, "select to_regclass('supabase_migrations.schema_migrations') is not null"):
        return [
            Check(
                "migrations",
                False,
                "No migration has been applied (supabase_migrations.schema_migrations"
                " does not exist): run supportchat db migrate or supabase db push.",
            )
        ]
    done = {r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")}
    missing = [f"{m.version}_{m.name}" for m in migrate.migrations() if m.version not in done]
    if missing:
        return [
            Check(
                "migrations",
                False,
                f"Migration {name} has not been applied: run supportchat db migrate or supabase db push.",
            )
            for name in missing
        ]
    return [Check("migrations", True, f"all {len(done & {m.version for m in migrate.migrations()})} applied")]


def _tables(conn: psycopg.Connection) -> tuple[list[Check], list[str]]:
    checks: list[Check] = []
    present: list[str] = []
    for table in APP_COMMANDS:
        if _one(conn, "select to_regclass(%s) is not null", (f"{SCHEMA}.{table}",)):
            present.append(table)
        else:
            checks.append(Check(f"table {table}", False, f"Table {SCHEMA}.{table} does not exist."))
    return checks, present


def _grants(conn: psycopg.Connection, tables: list[str]) -> list[Check]:
    checks: list[Check] = []
    for table in tables:
        rel = f"{SCHEMA}.{table}"
        for command in APP_COMMANDS[table]:
            if not _one(conn, "select has_table_privilege('authenticated', %s, %s)", (rel, command)):
                checks.append(
                    Check(
                        f"grant {table}",
                        False,
                        f"Role authenticated lacks {command} on {rel}: the app's users get 42501"
                        f" (grant {command.lower()} on {rel} to authenticated).",
                    )
                )
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", *NEVER_FOR_API):
            if _one(conn, "select has_table_privilege('anon', %s, %s)", (rel, privilege)):
                checks.append(
                    Check(
                        f"grant {table}",
                        False,
                        f"Role anon has {privilege} on {rel}; anonymous callers must get nothing"
                        f" (revoke all on {rel} from anon).",
                    )
                )
        for role in ("authenticated", "service_role"):
            for privilege in NEVER_FOR_API:
                if _one(conn, "select has_table_privilege(%s, %s, %s)", (role, rel, privilege)):
                    checks.append(
                        Check(
                            f"grant {table}",
                            False,
                            f"Role {role} has {privilege} on {rel}, which no API role needs"
                            f" (revoke {privilege.lower()} on {rel} from {role}).",
                        )
                    )
    for fn in PULL_FUNCTIONS:
        if not _one(conn, "select to_regprocedure(%s) is not null", (fn,)):
            checks.append(Check("grant functions", False, f"Function {fn} does not exist."))
            continue
        if not _one(conn, "select has_function_privilege('authenticated', %s, 'EXECUTE')", (fn,)):
            checks.append(
                Check(
                    "grant functions",
                    False,
                    f"Role authenticated cannot execute {fn}: sync pulls fail with 42501"
                    f" (grant execute on function {fn} to authenticated).",
                )
            )
        if _one(conn, "select has_function_privilege('anon', %s, 'EXECUTE')", (fn,)):
            checks.append(
                Check("grant functions", False, f"Role anon can execute {fn}; revoke execute from anon and public.")
            )
    if not [c for c in checks if c.name.startswith("grant")]:
        checks.append(Check("grants", True, "authenticated has what the app uses, anon nothing"))
    return checks


def _rls(conn: psycopg.Connection, tables: list[str]) -> list[Check]:
    checks: list[Check] = []
    for table in tables:
        rel = f"{SCHEMA}.{table}"
        if not _one(conn, "select relrowsecurity from pg_class where oid = %s::regclass", (rel,)):
            checks.append(
                Check(
                    f"rls {table}",
                    False,
                    f"Row-level security is off on {rel}: every signed-in user can read and write all of its rows.",
                )
            )
            continue
        cmds = {
            r[0]
            for r in conn.execute(
                "select cmd from pg_policies where schemaname = %s and tablename = %s"
                " and roles && array['authenticated', 'public']::name[]"
                " and permissive = 'PERMISSIVE'",
                (SCHEMA, table),
            )
        }  # a restrictive policy alone allows nothing
        for command in APP_COMMANDS[table]:
            if command not in cmds and "ALL" not in cmds:
                checks.append(
                    Check(
                        f"policy {table}",
                        False,
                        f"{rel} has no {command} policy for authenticated: with RLS on, nobody can"
                        f" {command.lower()} its rows through the API.",
                    )
                )
    if not checks:
        checks.append(Check("rls", True, "enabled, with a policy for every command the app runs"))
    return checks


def _publication(conn: psycopg.Connection, tables: list[str]) -> list[Check]:
    if not _one(conn, "select exists(select 1 from pg_publication where pubname = %s)", (PUBLICATION,)):
        return [Check("publication", False, f"Publication {PUBLICATION} does not exist: realtime delivers nothing.")]
    published = {
        r[0]
        for r in conn.execute(
            "select tablename from pg_publication_tables where pubname = %s and schemaname = %s", (PUBLICATION, SCHEMA)
        )
    }
    checks = [
        Check(
            "publication",
            False,
            f"Table {SCHEMA}.{t} is not in publication {PUBLICATION}: the app gets"
            f" no live updates for it (alter publication {PUBLICATION} add table"
            f" {SCHEMA}.{t}).",
        )
        for t in tables
        if t not in published
    ]
    return checks or [Check("publication", True, f"all tables in {PUBLICATION}")]


def _timeouts(conn: psycopg.Connection) -> list[Check]:
    checks: list[Check] = []
    for role, supabase_value in TIMEOUT_ROLES.items():
        value = _one(
            conn,
            "select split_part(c, '=', 2) from pg_db_role_setting s cross join unnest(s.setconfig) c"
            " where s.setrole = to_regrole(%s) and split_part(c, '=', 1) = 'statement_timeout'"
            " and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))"
            " order by s.setdatabase desc limit 1",
            (role,),
        )
        if value in (None, "0"):
            checks.append(
                Check(
                    "timeouts",
                    False,
                    f"Role {role} has no statement_timeout: a runaway API query can"
                    f" hold a connection forever (Supabase sets {supabase_value}).",
                )
            )
    return checks or [Check("timeouts", True, "anon and authenticated have a statement_timeout")]


def run(db_url: str) -> list[Check]:
    """Every check against the database at `db_url` (read-only)."""
    with psycopg.connect(db_url, autocommit=True, prepare_threshold=None) as conn:
        checks = _migrations(conn)
        table_checks, tables = _tables(conn)
        checks += table_checks
        checks += _grants(conn, tables)
        checks += _rls(conn, tables)
        checks += _publication(conn, tables)
        checks += _timeouts(conn)
    return checks


def report(checks: list[Check], as_json: bool) -> str:
    problems = [c.detail for c in checks if not c.ok]
    summary = (
        "The database has everything SupportChat needs."
        if not problems
        else f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found."
    )
    if as_json:
        return json.dumps(
            {"ok": not problems, "checks": [asdict(c) for c in checks], "problems": problems, "summary": summary}
        )
    return "\n".join([*problems, summary])
