"""The garbage collector during an initial sync (issue 15, sync/bulk_gc.py): its thresholds are raised while the
initial sync pulls (millions of short-lived rows made it run a young collection every 700 allocations and walk the
whole heap 20 times per 1M messages, 9.5 s), and put back once it ends, also when engines overlap or a sync fails.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync import bulk_gc, events
from tests.fakes import fake_engine, one_ticket_desk

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    """The process's thresholds before the test (put back after it whatever happened)."""
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


async def test_the_initial_sync_runs_with_the_relaxed_thresholds_and_puts_them_back(
    tmp_path: Path, thresholds: tuple[int, int, int]
) -> None:
    assert thresholds != bulk_gc.THRESHOLDS
    server, agent, tid = one_ticket_desk(3000)
    engine = await fake_engine(server, tmp_path / "e")
    seen: list[tuple[int, int, int]] = []
    try:
        await engine.sign_in(agent.email, agent.password)
        engine.subscribe(lambda e: seen.append(gc.get_threshold()) if isinstance(e, events.SyncProgress) else None)
        await engine.sync_once()
        assert engine.cache.count("messages") == 3000
        assert seen and set(seen) == {bulk_gc.THRESHOLDS}, set(seen)  # before: (700, 10, 10)
        assert gc.get_threshold() == thresholds  # put back at its end

        # a later sync is not initial: the collector as the process has it
        seen.clear()
        for i in range(3):
            server.write(
                "messages",
                {
                    "id": f"00000000-0000-4000-8000-00000000000{i}",
                    "ticket_id": tid,
                    "sender_id": agent.id,
                    "content": f"later {i}",
                    "is_internal": False,
                    "created_at": server.stamp(),
                },
            )
        engine.subscribe(lambda e: seen.append(gc.get_threshold()))
        await engine.sync_once()
        assert engine.cache.count("messages") == 3003
        assert seen and set(seen) == {thresholds}, set(seen)
    finally:
        await engine.close()


def test_overlapping_syncs_put_the_thresholds_back_once_the_last_one_ends(thresholds: tuple[int, int, int]) -> None:
    first, second = bulk_gc.relaxed(), bulk_gc.relaxed()
    first.__enter__()
    second.__enter__()
    assert gc.get_threshold() == bulk_gc.THRESHOLDS
    first.__exit__(None, None, None)  # the first ends while the second still runs
    assert gc.get_threshold() == bulk_gc.THRESHOLDS
    second.__exit__(None, None, None)
    assert gc.get_threshold() == thresholds
    with pytest.raises(RuntimeError), bulk_gc.relaxed():  # a failing sync puts them back too
        raise RuntimeError("network")
    assert gc.get_threshold() == thresholds
