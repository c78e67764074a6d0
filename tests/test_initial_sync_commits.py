"""The initial sync's transactions (issue 15): its pages share one SQLite transaction that the writer holds
open across pages and commits every ``pull.INITIAL_BATCH`` rows (sync/cache/files.py ``abulk``), instead of one
commit per page of 1,000 rows, which on a million-message cache rewrote the uuid-keyed indexes' pages at every
page. What must still hold: a page and its cursor are committed together, what the progress bar announces is
stored, any other write (a reply typed meanwhile) commits the held pages first, a failing page rolls back to the
last commit, and closing the cache keeps what was applied.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sync import events, pull
from sync.cache import Cache, staging, writes
from tests.fakes import fake_engine, one_ticket_desk

pytestmark = pytest.mark.timeout(60)

ME = str(uuid.uuid4())
OTHER = str(uuid.uuid4())
TS = "2026-11-20T10:00:00.000000+00:00"


def committed(path: Path, sql: str) -> Any:
    """What another connection (another process, or the app after a kill) sees in the file."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def message(tid: str, n: int) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "ticket_id": tid, "sender_id": OTHER, "content": f"m{n}", "created_at": TS}


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[Cache]:
    c = Cache.open(tmp_path / "cache.sqlite3", ME, "admin")
    tid = str(uuid.uuid4())
    ticket = {
        "id": tid,
        "customer_id": OTHER,
        "assignee_id": ME,
        "subject": "help",
        "status": "open",
        "priority": "normal",
        "created_at": TS,
        "updated_at": TS,
        "last_message_at": TS,
    }
    await c.apply_page("tickets", [ticket], (1, 1), initial=True)
    c.ticket_id = tid  # type: ignore[attr-defined]
    yield c
    c.close()


async def test_held_pages_are_committed_together_with_their_cursor(cache: Cache) -> None:
    tid = cache.ticket_id  # type: ignore[attr-defined]
    await cache.apply_page("messages", [message(tid, 1), message(tid, 2)], (5, 1), initial=True, commit=False)
    await cache.apply_page("messages", [message(tid, 3)], (5, 2), initial=True, commit=False)
    assert committed(cache.path, "select count(*) from messages") == 0  # held, not committed
    assert committed(cache.path, "select count(*) from cursors where name = 'messages'") == 0
    await cache.apply_page("messages", [message(tid, 4)], (5, 3), initial=True, commit=True)
    assert committed(cache.path, "select count(*) from messages") == 4
    assert committed(cache.path, "select xid || ':' || id from cursors where name = 'messages'") == "5:3"


async def test_a_local_write_commits_the_held_pages_first(cache: Cache) -> None:
    tid = cache.ticket_id  # type: ignore[attr-defined]
    await cache.apply_page("messages", [message(tid, 1)], (5, 1), initial=True, commit=False)
    cache.queue_message(
        {"id": str(uuid.uuid4()), "ticket_id": tid, "sender_id": ME, "content": "typed meanwhile", "is_internal": False}
    )
    assert committed(cache.path, "select count(*) from messages") == 2
    assert committed(cache.path, "select xid || ':' || id from cursors where name = 'messages'") == "5:1"
    # the held transaction goes on after it: the next pages are held again, then committed
    await cache.apply_page("messages", [message(tid, 2)], (5, 2), initial=True, commit=False)
    assert await cache.cursor("messages") == (5, 2)  # a read on the writer commits them too
    assert committed(cache.path, "select count(*) from messages") == 3


async def test_a_failing_page_rolls_back_to_the_last_commit(cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    tid = cache.ticket_id  # type: ignore[attr-defined]
    await cache.apply_page("messages", [message(tid, 1)], (5, 1), initial=True, commit=True)
    await cache.apply_page("messages", [message(tid, 2)], (5, 2), initial=True, commit=False)

    def disk_fails(*_: object) -> None:  # not a row's fault (a bad row is set aside instead, see below)
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patched:
        patched.setattr(writes, "apply_message_rows", disk_fails)
        with pytest.raises(sqlite3.OperationalError):
            await cache.apply_page("messages", [message(tid, 3)], (5, 3), initial=True, commit=True)
    assert await cache.cursor("messages") == (5, 1)  # the pull resumes after the last committed page
    assert committed(cache.path, "select count(*) from messages") == 1
    await cache.apply_page("messages", [message(tid, 2)], (5, 2), initial=True, commit=True)  # and goes on
    assert committed(cache.path, "select count(*) from messages") == 2


async def test_a_row_the_cache_cannot_take_is_set_aside_and_its_page_goes_on(cache: Cache) -> None:
    tid = cache.ticket_id  # type: ignore[attr-defined]
    broken = {**message(tid, 3), "sender_id": None}  # NOT NULL in the cache: this row cannot go in
    await cache.apply_page("messages", [message(tid, 1), broken], (5, 3), initial=True, commit=True)
    assert await cache.cursor("messages") == (5, 3)
    assert committed(cache.path, "select count(*) from messages") == 1
    assert [(s.table, s.row_id) for s in cache.set_aside] == [("messages", broken["id"])]


async def test_closing_keeps_the_held_pages(tmp_path: Path) -> None:
    path = tmp_path / "closing.sqlite3"
    c = Cache.open(path, ME, "admin")
    await c.apply_page("messages", [message(str(uuid.uuid4()), 1)], (5, 1), initial=True, commit=False)
    c.close()
    assert committed(path, "select count(*) from messages") == 1
    assert committed(path, "select xid || ':' || id from cursors where name = 'messages'") == "5:1"


async def test_the_initial_sync_commits_per_batch_and_announces_only_what_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pull, "INITIAL_BATCH", 2500)
    server, agent, _ = one_ticket_desk(10_000)  # ten pages
    plain_pull = server.pull

    async def one_page_at_a_time(table: str, after: tuple[int, int], max_rows: int = 1000) -> list[dict[str, Any]]:
        await asyncio.sleep(0.1)  # the network: pages reach the writer one by one
        return await plain_pull(table, after, max_rows)

    server.pull = one_page_at_a_time  # type: ignore[method-assign]
    engine = await fake_engine(server, tmp_path / "e")
    try:
        await engine.sign_in(agent.email, agent.password)
        path = engine.cache.path
        announced: list[tuple[int, int]] = []  # (rows the bar says are done, rows stored in the files)
        staged = staging.path_of(path)

        def on_event(event: events.Event) -> None:
            if isinstance(event, events.SyncProgress) and event.phase == "messages":
                stored = committed(path, "select count(*) from messages")
                if staged.exists():  # the messages phase stages its pages (sync/cache/staging.py)
                    stored += committed(staged, "select count(*) from messages_staged where in_cache = 0")
                announced.append((event.done, stored))

        engine.subscribe(on_event)
        statements: list[str] = []
        await engine.cache._store.awrite(lambda c: c.set_trace_callback(statements.append))
        await engine.sync_once()
        await engine.cache._store.awrite(lambda c: c.set_trace_callback(None))
    finally:
        await engine.close()
    assert committed(path, "select count(*) from messages") == 10_000
    assert announced and all(done == stored for done, stored in announced), announced
    assert not staged.exists()  # moved into the cache file, then deleted
    first = next(i for i, s in enumerate(statements) if s.startswith("insert into staging.messages_staged ("))
    last = max(i for i, s in enumerate(statements) if s.startswith("insert into staging.messages_staged ("))
    commits = sum(1 for s in statements[first : last + 1] if s.strip().lower() == "commit")
    assert commits <= 4, commits  # 10 pages, one commit per 2,500 rows (not one per page)
