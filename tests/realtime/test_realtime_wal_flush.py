"""The stack's PostgreSQL flushes an asynchronous commit's WAL at once, so the realtime stream gets it without a wait.

The capture can only decode flushed WAL; with `synchronous_commit = off` that flush is the WAL writer's. With
`wal_writer_flush_after = 0` every asynchronous commit wakes the WAL writer to flush it (instead of its next
`wal_writer_delay` tick). Durability is never loosened by it: fsync stays on and the flush only comes sooner.
"""

from __future__ import annotations

import psycopg

from tests.stackproc import StackProcess


def test_wal_writer_flushes_each_commit_at_once_and_durability_is_unchanged(stack: StackProcess) -> None:
    with psycopg.connect(stack.db_url) as conn:
        settings = dict(
            conn.execute(
                "select name, setting from pg_settings where name in"
                " ('wal_writer_flush_after', 'wal_writer_delay', 'fsync', 'full_page_writes', 'wal_sync_method')"
            ).fetchall()
        )
    assert settings["wal_writer_flush_after"] == "0"
    assert settings["wal_writer_delay"] == "1"
    assert settings["fsync"] == "on" and settings["full_page_writes"] == "on"
    assert settings["wal_sync_method"] in ("fdatasync", "fsync", "open_datasync", "open_sync")
