"""The tables after the messages download while the initial sync's staged messages move (issue 15, sync/pull.py):
at a million messages the move is seconds of the writer thread alone, with the network and the server idle, and
the read markers (180,000 on the bench's desk) waited behind it. What must hold: the next tables are asked for
before the move ends, their pages are applied after it (the cache ends complete), and a pull that fails during
the move leaves no download running.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sync import SyncEngine
from sync.cache import Applied, Cache, staging, writes
from sync.errors import RetryableError
from tests.fakes import FakeRemote, fake_engine, one_ticket_desk

pytestmark = pytest.mark.timeout(120)


@contextlib.asynccontextmanager
async def _signed_in(server: FakeRemote, path: Path, user: Any) -> AsyncIterator[SyncEngine]:
    """An engine on the fake server, signed in as ``user``, closed at the end."""
    engine = await fake_engine(server, path)
    try:
        await engine.sign_in(user.email, user.password)
        yield engine
    finally:
        await engine.close()


def _asked_for(server: FakeRemote, table: str) -> asyncio.Event:
    """Set once ``table``'s first page is asked for."""
    asked = asyncio.Event()
    plain = server.pull

    async def pull(t: str, after: tuple[int, int], max_rows: int = 1000) -> list[dict[str, Any]]:
        if t == table:
            asked.set()
        return await plain(t, after, max_rows)

    server.pull = pull  # type: ignore[method-assign]
    return asked


async def test_the_read_markers_are_asked_for_while_the_messages_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, agent, _ = one_ticket_desk(2500)
    asked = _asked_for(server, "ticket_reads")
    plain_unstage = Cache.unstage
    waited: list[bool] = []

    async def unstage(self: Cache) -> Applied:
        if not waited:  # the move (the first call) goes on only once the next tables' download has started
            await asyncio.wait_for(asked.wait(), 30)
            waited.append(True)
        return await plain_unstage(self)

    monkeypatch.setattr(Cache, "unstage", unstage)
    async with _signed_in(server, tmp_path / "e", agent) as engine:
        await asyncio.wait_for(engine.sync_once(), 90)
        assert waited == [True]
        assert engine.cache.count("messages") == 2500 and engine.cache.initial_sync_done()
        assert engine.cache.count("ticket_reads") == len(server.tables["ticket_reads"])


async def test_a_move_that_fails_stops_the_downloads_ahead_and_the_next_pull_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, agent, _ = one_ticket_desk(1200)
    asked = _asked_for(server, "ticket_reads")
    plain_unstage = Cache.unstage
    failed: list[bool] = []

    async def unstage(self: Cache) -> Applied:
        if not failed:
            await asyncio.wait_for(asked.wait(), 30)
            failed.append(True)
            raise RetryableError("disk I/O error")
        return await plain_unstage(self)

    monkeypatch.setattr(Cache, "unstage", unstage)
    async with _signed_in(server, tmp_path / "e", agent) as engine:
        with pytest.raises(RetryableError):
            await engine.sync_once()
        assert failed == [True]
        # nothing of the pull is left running: every task but this test's own is done
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and "fetch_all" in repr(t)]
        assert others == []
        await asyncio.wait_for(engine.sync_once(), 90)  # the next pull continues and ends complete
        assert engine.cache.count("messages") == 1200 and engine.cache.initial_sync_done()


async def test_a_live_change_during_the_move_is_not_undone_by_a_page_fetched_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review's finding on the first version, which fetched every later table ahead: a tag renamed by another
    agent during the move came in live, and then the tags page fetched before the rename, applied after the move,
    put the old name back until the next pull. Only tables whose pages keep the newer row are fetched ahead."""
    server, agent, _ = one_ticket_desk(1200)
    tag = str(uuid.uuid4())
    stamp = server.stamp()
    server.write(
        "tags",
        {
            "id": tag,
            "name": "old name",
            "color": "#123456",
            "created_at": stamp,
            "updated_at": stamp,
            "deleted_at": None,
        },
    )
    asked = _asked_for(server, "tags")
    plain_unstage = Cache.unstage
    renamed: list[bool] = []

    async def unstage(self: Cache) -> Applied:
        if not renamed:
            # give a download ahead of the tags its chance to fetch the old row (it never comes when tags wait
            # their turn, so this wait runs out then)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asked.wait(), 1)
            server.write("tags", {"id": tag, "name": "new name", "updated_at": server.stamp()})  # by another agent
            await self.apply_live({"tags": [dict(server.tables["tags"][tag])]})  # realtime brings it
            renamed.append(True)
        return await plain_unstage(self)

    monkeypatch.setattr(Cache, "unstage", unstage)
    async with _signed_in(server, tmp_path / "e", agent) as engine:
        await asyncio.wait_for(engine.sync_once(), 90)
        assert renamed == [True] and engine.cache.initial_sync_done()
        assert [r["name"] for r in engine.cache.workspace.rows("tags")] == ["new name"]


def _rebuilds(monkeypatch: pytest.MonkeyPatch) -> tuple[list[bool], threading.Event]:
    """Each call of ``writes.rebuild_search`` (the writer thread), and an event set at the first."""
    calls: list[bool] = []
    started = threading.Event()
    plain = writes.rebuild_search

    def rebuild(conn: sqlite3.Connection) -> None:
        calls.append(True)
        started.set()
        plain(conn)

    monkeypatch.setattr(writes, "rebuild_search", rebuild)
    return calls, started


async def test_the_search_index_is_built_while_the_server_lists_the_visible_tickets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the end of the initial sync the prune asks the server for every visible ticket id (100,000 on the bench's
    desk: seconds with the writer thread idle), and the search index and unread state were built only after it.
    Now they are built meanwhile, once: the fake server answers only after the build has started."""
    server, agent, tid = one_ticket_desk(300)
    calls, started = _rebuilds(monkeypatch)
    plain_visible = server.visible_ticket_ids
    built_before_the_answer: list[bool] = []

    async def visible() -> set[str]:
        # before: the build came after this answer, so it never started while this waited
        built_before_the_answer.append(await asyncio.to_thread(started.wait, 10))
        return await plain_visible()

    server.visible_ticket_ids = visible  # type: ignore[method-assign]
    async with _signed_in(server, tmp_path / "e", agent) as engine:
        await asyncio.wait_for(engine.sync_once(), 90)
        assert built_before_the_answer == [True] and calls == [True]  # and not built again at the end
        assert engine.cache.initial_sync_done() and engine.cache.count("messages") == 300
        assert [h.ticket_id for h in engine.cache.search("message 299")][:1] == [tid]
        with contextlib.closing(sqlite3.connect(engine.cache.path)) as conn:  # the unread state recounted
            assert conn.execute("select others_last_at is not null from tickets").fetchall() == [(1,)]


async def test_a_prune_that_fails_after_the_build_leaves_the_end_to_the_next_pull(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, agent, tid = one_ticket_desk(300)
    calls, _started = _rebuilds(monkeypatch)
    plain_visible = server.visible_ticket_ids
    failed: list[bool] = []

    async def visible() -> set[str]:
        if not failed:
            failed.append(True)
            raise RetryableError("connection reset")
        return await plain_visible()

    server.visible_ticket_ids = visible  # type: ignore[method-assign]
    async with _signed_in(server, tmp_path / "e", agent) as engine:
        with pytest.raises(RetryableError):
            await engine.sync_once()
        assert not engine.cache.initial_sync_done() and calls == [True]  # built, not marked done
        await asyncio.wait_for(engine.sync_once(), 90)
        assert engine.cache.initial_sync_done() and len(calls) == 2  # the next pull builds again, then marks it
        assert [h.ticket_id for h in engine.cache.search("message 299")][:1] == [tid]


_STEP = "with recursive r(i) as (select 1 union all select i + 1 from r where i < 100000) select count(*) from r"


class _Endless:
    """A writer job that runs until interrupted, or until the test releases it (so a test that fails still ends):
    the stand-in for a million messages' seconds of work."""

    def __init__(self) -> None:
        self.started, self.released = threading.Event(), threading.Event()

    def run(self, conn: sqlite3.Connection) -> None:
        self.started.set()
        while not self.released.is_set():
            conn.execute(_STEP).fetchone()


async def _cancel_while_it_runs(engine: SyncEngine, endless: _Endless) -> None:
    """Cancel a pull once ``endless`` runs on the writer: the pull and a job queued behind it end at once (before,
    the writer ran on until the test released it, and the job behind it waited)."""
    pull = asyncio.ensure_future(engine.sync_once())
    assert await asyncio.to_thread(endless.started.wait, 60)
    pull.cancel()
    writer_free = asyncio.ensure_future(engine.cache.cursor("tickets"))
    done, _ = await asyncio.wait([pull, writer_free], timeout=30)
    endless.released.set()
    assert done == {pull, writer_free} and pull.cancelled()


async def test_a_pull_cancelled_during_the_index_build_stops_it_and_the_next_pull_builds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine stopping (quit, sign-out) while the search index is built during the prune: the build's
    transaction is interrupted and rolled back, so the pull ends at once instead of after the build (seconds at a
    million messages; before, the pull waited for it, and closing the cache waited too). The next pull builds it."""
    server, agent, tid = one_ticket_desk(300)
    endless = _Endless()
    plain_rebuild = writes.rebuild_search
    monkeypatch.setattr(writes, "rebuild_search", endless.run)
    never = asyncio.Event()

    async def visible() -> set[str]:
        await never.wait()  # the server's answer never comes: the pull is cancelled meanwhile
        return set()

    plain_visible = server.visible_ticket_ids
    server.visible_ticket_ids = visible  # type: ignore[method-assign]
    async with _signed_in(server, tmp_path / "e", agent) as engine:
        await _cancel_while_it_runs(engine, endless)
        assert not engine.cache.initial_sync_done()
        monkeypatch.setattr(writes, "rebuild_search", plain_rebuild)
        server.visible_ticket_ids = plain_visible  # type: ignore[method-assign]
        await asyncio.wait_for(engine.sync_once(), 90)
        assert engine.cache.initial_sync_done() and engine.cache.count("messages") == 300
        assert [h.ticket_id for h in engine.cache.search("message 299")][:1] == [tid]


async def test_a_pull_cancelled_during_the_move_leaves_the_messages_staged_for_the_next_pull(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same during the staged messages' move: it rolls back (they stay staged, as after a crash) and the next
    pull moves them, each message once."""
    server, agent, tid = one_ticket_desk(1200)
    endless = _Endless()
    plain_move = staging.move

    before: list[int] = []

    def move(conn: sqlite3.Connection, me: str, files_dir: Path) -> tuple[set[str], list[str], list[str]]:
        before.append(conn.execute("select count(*) from main.messages").fetchone()[0])
        # the rows are in ``messages`` inside the transaction when it is interrupted
        moved = plain_move(conn, me, files_dir)
        endless.run(conn)
        return moved

    monkeypatch.setattr(staging, "move", move)
    async with _signed_in(server, tmp_path / "e", agent) as engine:
        await _cancel_while_it_runs(engine, endless)
        with contextlib.closing(sqlite3.connect(engine.cache.path)) as conn:  # the move rolled back: still staged
            assert conn.execute("select count(*) from messages").fetchone() == (before[0],) and before[0] < 1200
        assert engine.cache.count("messages") == 1200 and not engine.cache.initial_sync_done()  # counts the staged
        monkeypatch.setattr(staging, "move", plain_move)
        await asyncio.wait_for(engine.sync_once(), 90)
        assert engine.cache.count("messages") == 1200 and engine.cache.initial_sync_done()
        with contextlib.closing(sqlite3.connect(engine.cache.path)) as conn:
            assert conn.execute("select count(distinct id) from messages").fetchone() == (1200,)
        assert [h.ticket_id for h in engine.cache.search("message 1199")][:1] == [tid]


async def test_the_first_messages_are_asked_for_while_the_tickets_are_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tickets phase is the writer's (100,000 tickets upserted one by one) while the server idles: the messages'
    first pages download meanwhile, and the cache ends complete."""
    server, agent, _ = one_ticket_desk(2500)
    asked = _asked_for(server, "messages")
    plain_end = Cache.end_tickets_bulk
    waited: list[bool] = []

    async def end_tickets_bulk(self: Cache) -> None:
        if not waited:  # the tickets phase ends only once the messages were asked for (before: never)
            await asyncio.wait_for(asked.wait(), 30)
            waited.append(True)
        await plain_end(self)

    monkeypatch.setattr(Cache, "end_tickets_bulk", end_tickets_bulk)
    async with _signed_in(server, tmp_path / "e", agent) as engine:
        await asyncio.wait_for(engine.sync_once(), 90)
        assert waited == [True]
        assert engine.cache.count("messages") == 2500 and engine.cache.initial_sync_done()
