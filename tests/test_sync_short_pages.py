"""The sync engine against a server whose PostgREST max rows is lower than the engine's page size
(Supabase's "Max rows" setting, PGRST_DB_MAX_ROWS here): a short page is not the last one. Uses a stack
of its own, started with PGRST_DB_MAX_ROWS=2.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, open_engines, seed_ticket, sql

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    before = os.environ.get("PGRST_DB_MAX_ROWS")
    os.environ["PGRST_DB_MAX_ROWS"] = "2"
    proc = StackProcess(tmp_path_factory.mktemp("short-pages") / "data")
    try:
        proc.start()
    finally:
        if before is None:
            del os.environ["PGRST_DB_MAX_ROWS"]
        else:
            os.environ["PGRST_DB_MAX_ROWS"] = before
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def engines(small_stack: StackProcess, tmp_path: Path) -> AsyncIterator[EngineFactory]:
    async with open_engines(small_stack, tmp_path) as factory:
        yield factory


async def test_short_pages_neither_prune_visible_tickets_nor_cut_a_backfill(
    small_stack: StackProcess, engines: EngineFactory
) -> None:
    """Regression: paging stopped at the first page shorter than 1000 rows, so with max rows 2 a pull
    round brought 2 rows per table, the visibility check saw 2 of the agent's tickets and pruned the
    others from the cache, and a thread backfill kept only its first 2 messages."""
    db = small_stack.db_url
    customer, agent, agent2 = (create_user(db, r) for r in ("customer", "agent", "agent"))
    mine = [seed_ticket(db, customer, agent, f"Mine {i}", messages=[(customer, f"m{i}")]) for i in range(4)]
    theirs = seed_ticket(db, customer, agent2, "Theirs", messages=[(customer, f"t{i}") for i in range(5)])
    sql(db, "insert into messages (ticket_id, sender_id, content) values (%s, %s, 'later')", mine[0], customer.id)
    engine = await engines.open(agent)
    await engine.sync_once()  # one round brings everything, in pages of 2
    assert all(engine.cache.ticket(t) is not None for t in mine)
    assert sum(engine.cache.count_thread(t) for t in mine) == 5
    sql(db, "update tickets set assignee_id = %s where id = %s", agent.id, theirs)
    await engine.sync_once()
    assert [m.content for m in engine.cache.thread(theirs)] == [f"t{i}" for i in range(5)]
    assert all(engine.cache.ticket(t) is not None for t in [*mine, theirs])
