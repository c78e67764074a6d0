"""A local attacker racing the embedded PostgreSQL's first start.

The server listens on 127.0.0.1, where every local user can connect. A cluster that `initdb` made with `trust`, and
that was started on TCP before its password was set, let anyone who connected in that moment in as the superuser,
and the connection stayed a superuser's after pg_hba.conf was reloaded (from there `COPY ... TO PROGRAM` runs
programs as the stack's user and `pg_read_file` reads the JWT secret). A new cluster now has its password and our
pg_hba.conf before it first starts; a data dir still on `trust` is closed over a private Unix socket, TCP off.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import psutil
import psycopg
import pytest

from localbase.postgres import HBA, SUPERUSER, EmbeddedPostgres, free_port

pytestmark = pytest.mark.timeout(180)


def _hammer(pg: EmbeddedPostgres, stop: threading.Event, got_in: list[str]) -> None:
    """Connect as the superuser with a wrong password, as fast as possible, until told to stop."""
    url = f"postgresql://{SUPERUSER}:wrong@127.0.0.1:{pg.port}/postgres"
    while not stop.is_set():
        try:
            with psycopg.connect(url, connect_timeout=1) as conn:
                row = conn.execute("select current_user").fetchone()
                got_in.append(str(row))
        except psycopg.OperationalError:
            pass


def test_a_new_cluster_is_closed_before_it_first_listens(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "data", free_port())
    pg.init()
    hba = (pg.pgdata / "pg_hba.conf").read_text()
    assert hba == HBA, "the cluster must have our pg_hba.conf before it first starts"
    assert "trust" not in hba
    assert not list(pg.data_dir.glob(".localbase-*")), "initdb's password file must be gone"

    stop, got_in = threading.Event(), []
    attacker = threading.Thread(target=_hammer, args=(pg, stop, got_in), daemon=True)
    attacker.start()
    try:
        pg.start()
        stop.set()
        attacker.join(10)
        assert got_in == [], "a wrong password got in while the cluster first started"
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("select current_user").fetchone() == (SUPERUSER,)
    finally:
        stop.set()
        pg.stop()


def test_a_data_dir_left_on_trust_is_closed_without_listening_on_tcp(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "data", free_port())
    pg.data_dir.mkdir(parents=True)
    pg._prepare_root()
    made = pg._tool("initdb", "-D", str(pg.pgdata), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-locale")
    assert made.returncode == 0, made.stderr
    (pg.data_dir / "superuser").write_text(SUPERUSER + "\n")

    starts: list[tuple[str, str]] = []
    tool = pg._tool

    def recording(name: str, *args: str, timeout: float = 120) -> object:
        if name == "pg_ctl" and args[-1] == "start":
            starts.append(((pg.pgdata / "pg_hba.conf").read_text(), args[args.index("-o") + 1]))
        return tool(name, *args, timeout=timeout)

    pg._tool = recording  # type: ignore[method-assign,assignment]
    try:
        pg.start()
        assert starts, "the server was never started"
        for hba, options in starts:
            if hba != HBA:
                assert "listen_addresses=''" in options, f"started on TCP while pg_hba.conf trusts: {options}"
        assert starts[-1][0] == HBA
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(f"postgresql://{SUPERUSER}:wrong@127.0.0.1:{pg.port}/postgres", connect_timeout=2).close()
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("select current_user").fetchone() == (SUPERUSER,)
    finally:
        pg.stop()


def test_an_init_cut_short_before_our_pg_hba_still_starts(tmp_path: Path) -> None:
    """Review14b: initdb had set the password (scram) but our pg_hba.conf was not written yet when the process died;
    closing that data dir over the socket must log in with the password, as the superuser initdb made."""
    pg = EmbeddedPostgres(tmp_path / "data", free_port())
    pg.init()
    (pg.pgdata / "pg_hba.conf").write_text(
        "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"
    )
    try:
        pg.start()
        assert (pg.pgdata / "pg_hba.conf").read_text() == HBA
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("select current_user").fetchone() == (SUPERUSER,)
    finally:
        pg.stop()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="the service user exists only when run as root")
def test_as_root_a_server_whose_data_dir_turned_private_still_stops(tmp_path: Path) -> None:
    """As root PostgreSQL runs as `embedded_postgres`, and so does `pg_ctl stop`; the app makes its data dir 0700
    after the demo stack started, so the stack's own stop (Ctrl+C reaches it first) failed with "Permission denied"
    and left the server running. It is stopped by its pid file's signal instead."""
    pg = EmbeddedPostgres(tmp_path / "app" / "demo-stack", free_port())
    pg.start()
    pid = pg.running_pid()
    assert pid is not None
    (tmp_path / "app").chmod(0o700)
    try:
        pg.stop()
        assert pg.running_pid() is None and not psutil.pid_exists(pid)
    finally:
        (tmp_path / "app").chmod(0o755)
        pg.stop()


def test_a_shared_folder_given_as_data_dir_keeps_its_mode(tmp_path: Path) -> None:
    """review15b: the data dir was closed (0700; 0711 as root) whatever folder it was, so `--data /tmp` would have
    locked every other user out of /tmp. Only a folder localbase made is closed: created now, marked, or holding
    nothing but localbase's own files (a data dir of an older version, which is then marked)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "someone-elses.txt").write_text("theirs")
    EmbeddedPostgres(shared, 0)._close_data_dir(created=False)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    closed = 0o711 if os.geteuid() == 0 else 0o700
    older = tmp_path / "older"
    (older / "pgdata").mkdir(parents=True)
    (older / "db_password").write_text("x")
    older.chmod(0o755)
    EmbeddedPostgres(older, 0)._close_data_dir(created=False)
    assert stat.S_IMODE(older.stat().st_mode) == closed and (older / ".localbase").exists()
    (older / "notes.txt").write_text("a file of the user's own, later")  # marked: still localbase's
    older.chmod(0o755)
    EmbeddedPostgres(older, 0)._close_data_dir(created=False)
    assert stat.S_IMODE(older.stat().st_mode) == closed
