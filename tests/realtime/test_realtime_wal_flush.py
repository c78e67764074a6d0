"""The stack's PostgreSQL commits durably, as Supabase's does, and the realtime stream gets each commit without a wait.

A commit returns once its WAL is on disk (`synchronous_commit = on`, PostgreSQL's default and what Supabase runs), also
for a data dir whose settings still say `off` (localbase before 2026-11-30); the committing backend's flush then wakes
the walsender. A transaction that asks for an asynchronous commit itself is flushed by the WAL writer, which every such
commit wakes at once (`wal_writer_flush_after = 0`) instead of at its next `wal_writer_delay` tick.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from localbase.postgres import EmbeddedPostgres, free_port
from tests.stackproc import StackProcess

_SETTINGS = (
    "select name, setting from pg_settings where name in ('synchronous_commit', 'wal_writer_flush_after',"
    " 'wal_writer_delay', 'fsync', 'full_page_writes', 'wal_sync_method')"
)


def test_commits_are_durable_and_the_wal_writer_flushes_each_asynchronous_commit_at_once(stack: StackProcess) -> None:
    with psycopg.connect(stack.db_url) as conn:
        settings = dict(conn.execute(_SETTINGS).fetchall())
    assert settings["synchronous_commit"] == "on"
    assert settings["wal_writer_flush_after"] == "0"
    assert settings["wal_writer_delay"] == "1"
    assert settings["fsync"] == "on" and settings["full_page_writes"] == "on"
    assert settings["wal_sync_method"] in ("fdatasync", "fsync", "open_datasync", "open_sync")


def test_a_data_dir_made_with_asynchronous_commits_commits_durably(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "old", free_port())
    pg.init()
    with (pg.pgdata / "postgresql.auto.conf").open("a") as fh:  # what localbase wrote before 2026-11-30
        fh.write("synchronous_commit = off\n")
    pg.start()
    try:
        with psycopg.connect(pg.url) as conn:
            assert dict(conn.execute(_SETTINGS).fetchall())["synchronous_commit"] == "on"
            # a session may still ask for less for itself, as on Supabase
            conn.execute("set synchronous_commit = off")
            assert conn.execute("show synchronous_commit").fetchone() == ("off",)
    finally:
        pg.destroy()
