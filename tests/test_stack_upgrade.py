"""A localbase data dir made before localbase mirrored today's Supabase is brought to the same shape.

Users have demo stacks from before: their cluster's superuser was `postgres`, migrations ran as it,
sql/local had no history (so a local file added later never reached them) and the server log was
world-readable and never rotated. Starting such a data dir must rename the superuser to
`supabase_admin`, create the non-superuser `postgres` and hand it the app's objects, apply every
sql/local file once, keep the data, and make the logs private.
"""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg
import pytest

from localbase import migrate
from localbase.postgres import SERVER_SETTINGS, EmbeddedPostgres, free_port
from localbase.server import Stack

pytestmark = pytest.mark.timeout(300)


def _old_data_dir(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Build a data dir the way localbase did before: superuser `postgres`, 0001 and the first migration."""
    pg = EmbeddedPostgres(data, free_port())
    data.mkdir(parents=True)
    pg._prepare_root()
    result = pg._tool(
        "initdb", "-D", str(pg.pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale"
    )
    assert result.returncode == 0, result.stderr
    with (pg.pgdata / "postgresql.auto.conf").open("a") as fh:
        for key, value in SERVER_SETTINGS.items():
            if not key.startswith("log") or key == "log_timezone":
                fh.write(f"{key} = {value}\n")
    (data / "postgres.log").write_text("")
    (data / "postgres.log").chmod(0o644)
    with monkeypatch.context() as patch:
        patch.setattr(EmbeddedPostgres, "_rename_old_superuser", lambda self: None)
        patch.setattr(EmbeddedPostgres, "_ensure_log_settings", lambda self: None)
        pg.start()
    try:
        first = migrate.migrations()[0]
        with psycopg.connect(pg.login_url("postgres"), autocommit=True) as conn:
            assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (True,)
            conn.execute((migrate.sql_dir() / "local" / "0001_supabase_bootstrap.sql").read_text())
            conn.execute(migrate.CREATE_HISTORY)
            conn.execute(first.path.read_text())
            conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name) values (%s, %s)",
                (first.version, first.name),
            )
            conn.execute(
                "insert into auth.users (id, email, raw_app_meta_data) values"
                " ('11111111-1111-1111-1111-111111111111', 'old@example.com', '{\"role\": \"customer\"}')"
            )
            conn.execute(
                "insert into public.tickets (customer_id, subject) values"
                " ('11111111-1111-1111-1111-111111111111', 'from before')"
            )
    finally:
        pg.stop()


def test_an_old_data_dir_gets_supabase_s_shape_and_keeps_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "old"
    _old_data_dir(data, monkeypatch)

    stack = Stack(data, api_port=0)
    stack.prepare()
    try:
        with psycopg.connect(stack.postgres.url, autocommit=True) as conn:
            assert conn.execute(
                "select current_user, rolsuper from pg_roles where rolname = current_user"
            ).fetchone() == ("supabase_admin", True)
            assert conn.execute("select rolname from pg_roles where oid = 10").fetchone() == ("supabase_admin",)
            assert conn.execute(
                "select rolsuper, rolbypassrls from pg_roles where rolname = 'postgres'"
            ).fetchone() == (False, True)
            assert {r[0] for r in conn.execute("select name from localbase.local_sql")} == {
                p.name for p in migrate.local_files()
            }, "every sql/local file reached the old data dir"
            assert {r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")} == {
                m.version for m in migrate.migrations()
            }
            owners = {
                r[0]
                for r in conn.execute(
                    "select distinct pg_get_userbyid(relowner) from pg_class"
                    " where relnamespace = 'public'::regnamespace and relkind = 'r'"
                )
            }
            assert owners == {"postgres"}, "the app's tables belong to postgres, as on a project"
            assert conn.execute(
                "select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'private'"
            ).fetchone() == ("postgres",)
            assert conn.execute("select subject from public.tickets").fetchall() == [("from before",)]
            assert conn.execute(
                "select has_table_privilege('authenticated', 'public.tickets', 'SELECT'),"
                " has_table_privilege('anon', 'public.tickets', 'SELECT'),"
                " has_table_privilege('service_role', 'auth.users', 'SELECT')"
            ).fetchone() == (True, False, False)
            log_dir = conn.execute(
                "select current_setting('log_directory'), current_setting('logging_collector'),"
                " current_setting('log_file_mode')"
            ).fetchone()
            assert log_dir == ("log", "on", "0600")
        # a later migration runs as postgres and can alter what the first one created
        with psycopg.connect(stack.postgres.owner_url, autocommit=True) as conn:
            conn.execute("alter table public.tickets add column upgrade_probe int")
        assert stat.S_IMODE((data / "postgres.log").stat().st_mode) == 0o600
        logs = list((data / "pgdata" / "log").glob("postgresql-*.log"))
        assert logs and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in logs)
    finally:
        stack.postgres.stop()

    # a second start applies nothing again and keeps the shape
    again = Stack(data, api_port=0)
    again.prepare()
    try:
        with psycopg.connect(again.postgres.url, autocommit=True) as conn:
            assert conn.execute("select count(*) from pg_roles where rolname like 'localbase_rename_%'").fetchone() == (
                0,
            )
    finally:
        again.postgres.stop()


def test_a_new_data_dir_logs_privately(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "new", free_port())
    pg.start()
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            assert conn.execute("select current_user").fetchone() == ("supabase_admin",)
        assert stat.S_IMODE((tmp_path / "new" / "postgres.log").stat().st_mode) == 0o600
        logs = list((pg.pgdata / "log").glob("postgresql-*.log"))
        assert logs and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in logs)
    finally:
        pg.stop()
