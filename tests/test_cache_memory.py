"""The process's bound on SQLite's memory (issue 15, the soak's client RSS): every cache connection's page cache
together stays within ``sync/cache/memory.py``'s budget, however many caches a process holds and however much
data they read, and a cache in its initial sync gets its grant on top and gives it back.

Before the budget, each connection's page cache was bounded only by its own ``cache_size`` (64 MB on a writer),
so six caches of 10 MB each held all 60 MB after writing them.
"""

from __future__ import annotations

import gc
import os
import uuid
from pathlib import Path

import pytest

from bench.soak_memory import sqlite_heap
from sync.cache import Cache, files, memory
from sync.cache.files import open_store

MIB = 2**20


def test_opening_a_cache_sets_the_budget_as_sqlites_soft_heap_limit(tmp_path: Path) -> None:
    cache = Cache.open(tmp_path / "cache.sqlite3", str(uuid.uuid4()), "agent")
    try:
        assert memory.current_limit() == memory.budget_bytes()
        assert memory.budget_bytes() >= memory.STEADY_MIB * MIB
    finally:
        cache.close()


def test_many_caches_full_of_data_stay_within_the_budget_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "_granted", set())  # the steady budget (an earlier test may hold an initial sync's)
    stores = [open_store(tmp_path / f"cache{i}.sqlite3").store for i in range(6)]
    try:
        blob = os.urandom(4000)

        def fill(conn):  # type: ignore[no-untyped-def]
            conn.execute("create table filler (b blob)")
            conn.executemany("insert into filler (b) values (?)", ((blob,) for _ in range(2500)))

        for store in stores:  # 10 MB each: the writer's own cap (64 MB) would keep all of it
            store.write(fill)
            assert store.reader.execute("select sum(length(b)) from filler").fetchone()[0] == 2500 * 4000
        for store in stores:  # and read back on both connections
            store.write(lambda c: c.execute("select count(*) from filler where b is not null").fetchone())
        held = sqlite_heap()
        assert held > 0, "SQLite's heap could not be read"
        # soft: SQLite may pass the limit by a page or statement in flight, never by a cache's worth
        assert held <= memory.budget_bytes() + 4 * MIB, (held / MIB, memory.budget_bytes() / MIB)
        assert 6 * 10 * MIB > memory.budget_bytes() + 4 * MIB  # the data alone would have gone over it
    finally:
        for store in stores:
            store.close()
        monkeypatch.undo()
        memory.apply()


async def test_an_initial_sync_gets_its_grant_and_gives_it_back(tmp_path: Path) -> None:
    cache = Cache.open(tmp_path / "cache.sqlite3", str(uuid.uuid4()), "agent")
    before = memory.current_limit()
    try:
        await cache.begin_staging()
        assert memory.current_limit() == before + memory.INITIAL_SYNC_MIB * MIB
        await cache.begin_staging()  # a resumed sync: one grant per cache, not per call
        assert memory.current_limit() == before + memory.INITIAL_SYNC_MIB * MIB
        await cache.finish_initial_sync()
        assert memory.current_limit() == before
        assert cache.initial_sync_done()
    finally:
        cache.close()


async def test_a_cache_closed_during_its_initial_sync_gives_its_grant_back(tmp_path: Path) -> None:
    cache = Cache.open(tmp_path / "cache.sqlite3", str(uuid.uuid4()), "agent")
    before = memory.current_limit()
    await cache.begin_staging()
    assert memory.current_limit() == before + memory.INITIAL_SYNC_MIB * MIB
    cache.close()
    assert memory.current_limit() == before


async def test_a_cache_closed_before_its_pull_begins_staging_gets_no_grant(tmp_path: Path) -> None:
    cache = Cache.open(tmp_path / "cache.sqlite3", str(uuid.uuid4()), "agent")
    before = memory.current_limit()
    cache.close()
    cache._store.grant_initial_sync_memory()  # what a pull still running after the close would ask for
    assert memory.current_limit() == before


async def test_a_cache_dropped_during_its_initial_sync_without_a_close_gives_its_grant_back(tmp_path: Path) -> None:
    cache = Cache.open(tmp_path / "cache.sqlite3", str(uuid.uuid4()), "agent")
    before = memory.current_limit()
    await cache.begin_staging()
    assert memory.current_limit() == before + memory.INITIAL_SYNC_MIB * MIB
    store = cache._store
    store.reader.close()
    store._pool.shutdown(wait=True)
    del cache, store
    gc.collect()
    assert memory.current_limit() == before


async def test_the_writer_keeps_the_initial_syncs_cache_until_it_ends_then_the_steady_one(tmp_path: Path) -> None:
    cache = Cache.open(tmp_path / "cache.sqlite3", str(uuid.uuid4()), "agent")
    try:

        def size() -> int:
            return int(cache._store.write(lambda c: c.execute("pragma cache_size").fetchone()[0]))

        assert size() == files.CACHE_KIB == -16384  # within the steady budget with the reader, schemas, statements
        await cache.begin_staging()
        await cache.unstage()  # the move runs with the initial sync's cache, as it was tuned
        assert size() == files.INITIAL_CACHE_KIB
        await cache.finish_initial_sync()
        assert size() == files.CACHE_KIB
        assert -files.CACHE_KIB * 1024 + 4 * MIB < memory.STEADY_MIB * MIB
    finally:
        cache.close()
