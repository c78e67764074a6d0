"""`db migrate` through a real connection pooler (Debian's PgBouncer), as through Supabase's Supavisor.

In transaction mode a pooler hands each transaction to whichever server connection is free, so the
session advisory lock that serializes migrators is taken on one backend and checked on another:
`db migrate` must notice, say so, and apply nothing (not hang, not half-apply). In session mode (what
Supabase's session pooler on port 5432 is) the session holds and the migrations apply.

PgBouncer runs with two server connections used in turn (`server_round_robin`), both opened before
the migration, so consecutive statements of one client really land on different backends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from localbase import migrate
from localbase.postgres import EmbeddedPostgres, free_port

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A Supabase-shaped database with no migration applied yet."""
    pg = EmbeddedPostgres(tmp_path / "pg", free_port())
    pg.start()
    try:
        migrate.apply_local(pg.url)
        pg.set_login_passwords()
        yield pg
    finally:
        pg.stop()


def _pgbouncer(pg: EmbeddedPostgres, folder: Path, mode: str) -> tuple[subprocess.Popen[str], str]:
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    assert Path(binary).exists(), "Debian's pgbouncer package is needed (.ci/run installs it)"
    port = free_port()
    (folder / "users.txt").write_text(f'"postgres" "{pg.password}"\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\npostgres = host=127.0.0.1 port={pg.port} dbname=postgres\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {folder}/users.txt\npool_mode = {mode}\n"
        "server_round_robin = 1\ndefault_pool_size = 2\nmax_client_conn = 20\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    args = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root: it reads its files, then drops to the service user
        args[1:1] = ["-u", "embedded_postgres"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    url = f"postgresql://postgres:{pg.password}@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 20
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.terminate()
                raise
            time.sleep(0.05)
    # two server connections in the pool, so that round robin has two backends to alternate between
    first, second = psycopg.connect(url), psycopg.connect(url)
    pids = {first.execute("select pg_backend_pid()").fetchone(), second.execute("select pg_backend_pid()").fetchone()}
    assert len(pids) == 2
    for conn in (first, second):  # ended cleanly, so the pool keeps both server connections
        conn.commit()
        conn.close()
    return proc, url


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_db_migrate_refuses_a_transaction_pooler_and_works_through_a_session_pooler(
    database: EmbeddedPostgres, tmp_path: Path, mode: str
) -> None:
    proc, url = _pgbouncer(database, tmp_path, mode)
    try:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "supportchat_app", "db", "migrate", "--db-url", url, "--bootstrap", "no"],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        took = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(10)
    with psycopg.connect(database.url) as conn:
        recorded = conn.execute("select count(*) from supabase_migrations.schema_migrations").fetchone()
        tickets = conn.execute("select to_regclass('public.tickets') is not null").fetchone()
    if mode == "transaction":
        assert result.returncode == 1, result.stdout
        assert result.stderr.startswith("Migration refused: The connection does not keep its session"), result.stderr
        assert "Traceback" not in result.stderr
        assert took < 60, "it must say so, not hang"
        assert recorded == (0,) and tickets == (False,), "nothing may be applied"
    else:
        assert result.returncode == 0, result.stderr
        assert recorded == (len(migrate.migrations()),) and tickets == (True,)
