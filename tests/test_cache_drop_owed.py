"""What a delete owes after its commit survives a process that died in between (sync/cache/history.py,
``drop_owed``): the deleted message's local files (its thumbnail and opened copy too) and its words in the search
index are gone once the cache is opened again, although the process never got to delete or scrub them. On a
``FakeRemote``: what is proven here is the cache file's own bookkeeping, not the server's."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from sync.cache import history
from sync.cache.db import Cache
from sync.cache.writes import now_ts
from tests.test_sync_history import world_fixture  # noqa: F401  (the fixture, shared)
from tests.test_sync_loop import World

pytestmark = pytest.mark.timeout(30)

SECRET = "passportnumberzq81x"  # one word, in the message and the file: found anywhere only through them


def _local_files(cache: Path, message_id: str) -> list[Path]:
    conn = sqlite3.connect(cache)
    try:
        rows = conn.execute(
            "select local_path from attachments where message_id = ? and local_path is not null", (message_id,)
        ).fetchall()
        return [Path(r[0]) for r in rows]
    finally:
        conn.close()


def _holding(cache: Path) -> list[str]:
    """Which of the cache's files hold the secret word in their bytes."""
    return [
        suffix or "db"
        for suffix in ("", "-wal")
        if cache.with_name(cache.name + suffix).exists()
        and SECRET.encode() in cache.with_name(cache.name + suffix).read_bytes()
    ]


async def test_a_delete_killed_between_its_commit_and_its_cleanup_is_cleaned_up_at_the_next_open(
    world: World, tmp_path: Path
) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    scan = tmp_path / "scan.txt"
    scan.write_text(f"passport {SECRET}")
    mid = agent.commands.send_message(tid, f"here it is: {SECRET}", files=[scan]).id
    await agent.sync_once()  # on the server: deleting it is a tombstone and an outbox entry with the id only
    path = agent.cache_path(world.agent.id)
    files = _local_files(path, mid)
    assert files and all(f.exists() for f in files)
    assert [h.message_id for h in agent.cache.search(SECRET)] == [mid]
    (attachment_id,) = [str(a["id"]) for a in agent.cache.attachments(mid)]
    thumb = agent.attachments.thumbnail(attachment_id)  # what the app made of it: a picture, an opened copy
    thumb.write_bytes(b"a thumbnail")
    opened = agent.attachments.open_folder(attachment_id)
    opened.mkdir(parents=True)
    (opened / "scan.txt").write_text(f"passport {SECRET}")
    files += [thumb, opened]

    # the delete's transaction commits; the process dies before the files are deleted and the index rewritten
    folder = agent.cache.files_dir
    dropped, noted = agent.cache._store.write(
        lambda c: history.queue_delete(c, mid, world.agent.id, False, now_ts(), files_dir=folder)
    )
    assert dropped is not None and sorted(map(Path, noted)) == sorted(files)
    await agent.close()
    world.opened.remove(agent)
    assert all(f.exists() for f in files)  # what the dead process left behind
    assert _holding(path), "the search index's old segment still holds the word before the cleanup"

    cache = await _open(path, world.agent.id)
    try:
        assert not any(f.exists() for f in files)
        assert _holding(path) == []
        assert not history.owes(cache._store.reader)  # done once: the next open owes nothing
    finally:
        cache.close()


async def test_a_drop_committed_during_the_cleanup_stays_owed(world: World, tmp_path: Path) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    first = agent.commands.send_message(tid, "first").id
    second = agent.commands.send_message(tid, "second").id
    await agent.sync_once()
    me = world.agent.id
    store, folder = agent.cache._store, agent.cache.files_dir
    store.write(lambda c: history.queue_delete(c, first, me, False, now_ts(), files_dir=folder))

    def settle_with_a_drop_in_between(conn: sqlite3.Connection) -> None:
        original = history.scrub

        def scrub_then_drop(c: sqlite3.Connection) -> None:
            original(c)  # the rewrite covers the first drop only; the second commits before the note is cleared
            c.execute("begin immediate")
            history.queue_delete(c, second, me, False, now_ts(), files_dir=folder)
            c.execute("commit")

        history.scrub = scrub_then_drop  # type: ignore[assignment]
        try:
            history.settle_owed(conn)
        finally:
            history.scrub = original  # type: ignore[assignment]

    await store.amaintain(settle_with_a_drop_in_between)
    assert history.owes(store.reader)  # the second drop's scrub is still owed
    await agent.cache.scrub()
    assert not history.owes(store.reader)


async def _open(path: Path, me: str) -> Cache:
    return await asyncio.to_thread(Cache.open, path, me, "agent")
