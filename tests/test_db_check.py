"""`supportchat db check` and `db migrate`'s refusal of the transaction pooler, run as an admin would.

`db check` is read against the session stack as its `postgres` role (what a project's connection string
gives), and against a fresh database from which a grant, a policy and a publication entry were taken
away; `db migrate` against Supabase's transaction-pooler port must refuse at once and apply nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from localbase import check, migrate
from localbase.postgres import EmbeddedPostgres, free_port
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(180)


def supportchat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supportchat_app", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A database brought up as localbase does it: sql/local as superuser, migrations as postgres."""
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("dbcheck"), free_port())
    pg.start()
    try:
        migrate.apply_local(pg.url)
        pg.set_login_passwords()
        migrate.apply_all(pg.owner_url, bootstrap=False)
        yield pg
    finally:
        pg.stop()


def test_db_check_passes_on_a_database_that_has_everything(stack: StackProcess) -> None:
    result = supportchat("db", "check", "--db-url", stack.postgres_url, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["problems"] == []
    assert {c["name"] for c in report["checks"]} >= {"migrations", "grants", "rls", "publication", "timeouts"}
    plain = supportchat("db", "check", "--db-url", stack.postgres_url)
    assert plain.returncode == 0 and plain.stdout.strip() == "The database has everything SupportChat needs."


def test_db_check_names_a_missing_grant_policy_and_publication_entry(migrated: EmbeddedPostgres) -> None:
    with psycopg.connect(migrated.owner_url, autocommit=True) as conn:
        conn.execute("revoke insert on public.messages from authenticated")
        conn.execute("drop policy ticket_reads_update on public.ticket_reads")
        conn.execute("alter publication supabase_realtime drop table public.tickets")
    try:
        result = supportchat("db", "check", "--db-url", migrated.owner_url)
        assert result.returncode == 1
        assert result.stdout.splitlines() == [
            "Role authenticated lacks INSERT on public.messages: the app's users get 42501"
            " (grant insert on public.messages to authenticated).",
            "public.ticket_reads has no UPDATE policy for authenticated: with RLS on, nobody can update its rows"
            " through the API.",
            "Table public.tickets is not in publication supabase_realtime: the app gets no live updates for it"
            " (alter publication supabase_realtime add table public.tickets).",
            "3 problems found.",
        ]
        report = json.loads(supportchat("db", "check", "--db-url", migrated.owner_url, "--json").stdout)
        assert report["ok"] is False and len(report["problems"]) == 3
    finally:
        with psycopg.connect(migrated.owner_url, autocommit=True) as conn:
            conn.execute("grant insert on public.messages to authenticated")
            conn.execute(
                "create policy ticket_reads_update on public.ticket_reads for update to authenticated"
                " using (user_id = (select auth.uid()))"
            )
            conn.execute("alter publication supabase_realtime add table public.tickets")


def test_db_check_flags_anon_access_rls_off_missing_timeouts_and_unapplied_migrations(
    migrated: EmbeddedPostgres,
) -> None:
    with psycopg.connect(migrated.url, autocommit=True) as conn:
        conn.execute("grant select on public.tickets to anon")
        conn.execute("alter table public.profiles disable row level security")
        conn.execute("alter role anon reset statement_timeout")
        conn.execute(
            "delete from supabase_migrations.schema_migrations where version = %s", (migrate.migrations()[-1].version,)
        )
    try:
        problems = [c.detail for c in check.run(migrated.owner_url) if not c.ok]
        last = migrate.migrations()[-1]
        assert problems == [
            f"Migration {last.version}_{last.name} has not been applied: run supportchat db migrate or supabase db"
            " push.",
            "Role anon has SELECT on public.tickets; anonymous callers must get nothing (revoke all on"
            " public.tickets from anon).",
            "Row-level security is off on public.profiles: every signed-in user can read and write all of its rows.",
            "Role anon has no statement_timeout: a runaway API query can hold a connection forever (Supabase sets 3s).",
        ]
    finally:
        with psycopg.connect(migrated.url, autocommit=True) as conn:
            conn.execute("revoke select on public.tickets from anon")
            conn.execute("alter table public.profiles enable row level security")
            conn.execute("alter role anon set statement_timeout = '3s'")
            conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name) values (%s, %s)",
                (last.version, last.name),
            )


def test_db_check_cannot_connect_says_so(tmp_path: Path) -> None:
    result = supportchat(
        "db", "check", "--db-url", f"postgresql://postgres:x@127.0.0.1:{free_port()}/postgres?connect_timeout=2"
    )
    assert result.returncode == 2
    assert result.stderr.startswith("Cannot check the database:") and "Traceback" not in result.stderr


def test_db_migrate_refuses_the_transaction_pooler_port_at_once() -> None:
    started = time.monotonic()
    result = supportchat("db", "migrate", "--db-url", "postgresql://postgres.ref:pw@127.0.0.1:6543/postgres")
    assert time.monotonic() - started < 30, "it must not hang"
    assert result.returncode == 1
    assert result.stderr.startswith("Migration refused: This URL uses port 6543, Supabase's transaction pooler")
    assert "session pooler" in result.stderr and "Traceback" not in result.stderr
