"""A first sync builds the tickets' four secondary indexes once, by a sort, at the end of its tickets phase
(issue 15, sync/cache/bulk_indexes.py): tickets arriving in ``last_message_at`` order left these indexes' pages half
full (42.6 MB against 24.7 at 100,000 tickets). What must hold: the indexes come back exactly as they were, dense;
a cache that already holds tickets keeps its indexes (its inbox reads them); a kill in between leaves a cache whose
next open builds them; the inbox reads the same rows throughout. Pure cache logic on real SQLite files, no server.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sync.cache import Cache, bulk_indexes
from sync.errors import RetryableError
from tests.fakes import fake_engine, one_ticket_desk

pytestmark = pytest.mark.timeout(120)

N = 3000
START = datetime(2024, 1, 1, tzinfo=UTC)


def _ticket(i: int, customer: str) -> dict[str, Any]:
    at = (START + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    return {
        "id": str(uuid.uuid4()),
        "customer_id": customer,
        "assignee_id": None,
        "subject": f"s {i}",
        "status": "open" if i % 2 else "pending",
        "priority": "normal",
        "created_at": at,
        "updated_at": at,
        "last_message_at": at,
    }


def _indexes(path: Path) -> set[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return set(conn.execute("select name, sql from sqlite_master where type = 'index' and tbl_name = 'tickets'"))
    finally:
        conn.close()


def _fill(path: Path) -> float:
    """Of the four indexes' pages, the part unused (dbstat)."""
    conn = sqlite3.connect(path)
    try:
        marks = ", ".join("?" * len(bulk_indexes.NAMES))
        unused, size = conn.execute(
            f"select sum(unused), sum(pgsize) from dbstat where name in ({marks})", bulk_indexes.NAMES
        ).fetchone()
        return float(unused) / float(size)
    finally:
        conn.close()


async def test_a_first_sync_builds_the_tickets_indexes_once_dense_and_exactly_as_they_were(tmp_path: Path) -> None:
    customer = str(uuid.uuid4())
    cache = Cache.open(tmp_path / "cache.sqlite3", str(uuid.uuid4()), "admin")
    try:
        before = _indexes(cache.path)
        assert {n for n, _ in before} >= set(bulk_indexes.NAMES)
        rows = [_ticket(i, customer) for i in range(N)]  # the server's change order: oldest activity first
        for page in range(0, N, 500):
            await cache.apply_page("tickets", rows[page : page + 500], (1, page + 1), initial=True, commit=page == 0)
        # committed with the first page: the reader sees the tickets without the four indexes, and the same rows
        assert {n for n, _ in _indexes(cache.path)} & set(bulk_indexes.NAMES) == set()
        assert len(cache.inbox("all")) > 0
        await cache.end_tickets_bulk()
        assert _indexes(cache.path) == before
        assert _fill(cache.path) < 0.2  # before: 0.38 unused (pages split by halves)
        inbox = cache.inbox("all")
        assert [t.subject for t in inbox[:3]] == [f"s {N - 1}", f"s {N - 2}", f"s {N - 3}"]
        plan = " ".join(
            str(r)
            for r in sqlite3.connect(cache.path).execute(
                "explain query plan select id from tickets where status = 'open' order by last_message_at desc"
            )
        )
        assert "tickets_status" in plan or "tickets_activity" in plan, plan
        await cache.end_tickets_bulk()  # nothing left to do: no harm
        assert _indexes(cache.path) == before
    finally:
        cache.close()


async def test_a_cache_holding_tickets_keeps_its_indexes(tmp_path: Path) -> None:
    customer = str(uuid.uuid4())
    cache = Cache.open(tmp_path / "cache.sqlite3", str(uuid.uuid4()), "admin")
    try:
        before = _indexes(cache.path)
        await cache.apply_page("tickets", [_ticket(0, customer)], (1, 1), initial=False)
        await cache.apply_page("tickets", [_ticket(i, customer) for i in range(1, 50)], (1, 2), initial=True)
        assert _indexes(cache.path) == before  # its inbox reads them meanwhile
    finally:
        cache.close()


async def test_a_kill_with_the_indexes_aside_leaves_a_cache_whose_next_open_builds_them(tmp_path: Path) -> None:
    customer, me = str(uuid.uuid4()), str(uuid.uuid4())
    path = tmp_path / "cache.sqlite3"
    cache = Cache.open(path, me, "admin")
    before = _indexes(path)
    await cache.apply_page("tickets", [_ticket(i, customer) for i in range(200)], (1, 1), initial=True)
    assert {n for n, _ in _indexes(path)} & set(bulk_indexes.NAMES) == set()
    store = cache._store  # the process dies here: its connections go without ending the phase
    store._pool.submit(lambda: store._local.conn.close()).result()  # noqa: PLW0108 (thread-local: read on the writer)
    store.reader.close()
    again = Cache.open(path, me, "admin")
    try:
        assert _indexes(path) == before
        assert len(again.inbox("all")) > 0
    finally:
        again.close()


async def test_a_tickets_phase_that_fails_puts_the_indexes_back_and_the_next_pull_finishes(tmp_path: Path) -> None:
    server, agent, _ = one_ticket_desk(10)
    customer = next(iter(server.tables["profiles"].values()))  # any user: the ticket rows only need an id
    for i in range(30):
        server.write("tickets", {**_ticket(i, str(customer["id"])), "assignee_id": agent.id})
    plain = server.pull_batch
    failed: list[bool] = []

    async def pull_batch(table: str, after: tuple[int, int], max_rows: int = 10_000) -> list[dict[str, Any]]:
        if table == "tickets" and after != (0, 0) and not failed:  # the network goes after the first page
            failed.append(True)
            raise RetryableError("connection reset")
        return await plain(table, after, 10 if table == "tickets" else max_rows)

    server.pull_batch = pull_batch  # type: ignore[method-assign]
    engine = await fake_engine(server, tmp_path / "e")
    try:
        await engine.sign_in(agent.email, agent.password)
        with pytest.raises(RetryableError):
            await engine.sync_once()
        assert failed == [True]
        assert await engine.cache.cursor("tickets") != (0, 0)  # the first page is in (a read commits held pages)
        assert {n for n, _ in _indexes(engine.cache.path)} >= set(bulk_indexes.NAMES)  # the inbox has them offline
        await asyncio.wait_for(engine.sync_once(), 60)
        assert engine.cache.count("messages") == 10 and engine.cache.initial_sync_done()
        assert {n for n, _ in _indexes(engine.cache.path)} >= set(bulk_indexes.NAMES)
        assert not bulk_indexes.noted(sqlite3.connect(engine.cache.path))
    finally:
        await engine.close()
