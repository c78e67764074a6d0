"""The initial sync's progress total (issue 15): the server's row counts (``sync_count``, one per table) are asked
while the first tables download, not one after another before the first page (on a million-message desk they
took seconds of an idle client), and the progress bar still announces its per-row figure against that total
from its first event, including the rows a killed sync had already stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
from pathlib import Path

import pytest

from sync import events
from sync.cache import Cache
from sync.errors import RetryableError
from tests.fakes import FakeRemote, fake_engine, one_ticket_desk

pytestmark = pytest.mark.timeout(60)


def _desk(messages: int) -> tuple[FakeRemote, str, str]:
    server, agent, _ = one_ticket_desk(messages)
    return server, agent.email, agent.password


async def _first_sync(
    server: FakeRemote, email: str, password: str, path: Path
) -> tuple[int, list[events.SyncProgress]]:
    """One first sync to its end: the messages cached and the progress events it sent."""
    engine = await fake_engine(server, path)
    progress: list[events.SyncProgress] = []
    try:
        await engine.sign_in(email, password)
        engine.subscribe(lambda e: progress.append(e) if isinstance(e, events.SyncProgress) else None)
        await engine.sync_once()
        assert engine.cache.initial_sync_done()
        return engine.cache.count("messages"), progress
    finally:
        await engine.close()


async def test_the_counts_are_asked_while_the_first_pages_download(tmp_path: Path) -> None:
    server, email, password = _desk(3000)
    plain_count, plain_pull = server.count, server.pull
    pulled = asyncio.Event()

    async def slow_count(table: str, after: tuple[int, int]) -> int:
        await pulled.wait()  # answers only once a page was asked for: a plan asked first would never finish
        return await plain_count(table, after)

    async def pull(table: str, after: tuple[int, int], max_rows: int = 1000) -> list[dict[str, object]]:
        pulled.set()
        return await plain_pull(table, after, max_rows)

    server.count = slow_count  # type: ignore[method-assign]
    server.pull = pull  # type: ignore[method-assign]
    engine = await fake_engine(server, tmp_path / "e")
    progress: list[events.SyncProgress] = []
    try:
        await engine.sign_in(email, password)
        engine.subscribe(lambda e: progress.append(e) if isinstance(e, events.SyncProgress) else None)
        await asyncio.wait_for(engine.sync_once(), 30)
        assert engine.cache.count("messages") == 3000 and engine.cache.initial_sync_done()
    finally:
        await engine.close()
    assert progress and all(p.overall is not None for p in progress)  # the per-row bar from its first event
    messages = [p for p in progress if p.phase == "messages"]
    assert messages[-1].overall == 1.0
    # 3 profiles + 1 ticket + 3,000 messages: the bar's figure is rows stored of all rows
    firsts = [p.overall or 0.0 for p in progress if p.phase == "tickets"]
    assert firsts and 0 < firsts[0] < 0.01, firsts


async def test_a_server_without_counts_still_syncs_with_a_bar_by_table(tmp_path: Path) -> None:
    server, email, password = _desk(50)

    async def no_count(table: str, after: tuple[int, int]) -> int:
        raise RetryableError("Could not find the function public.sync_count", code="PGRST202")

    server.count = no_count  # type: ignore[method-assign]
    cached, progress = await _first_sync(server, email, password, tmp_path / "e")
    assert cached == 50
    assert progress and all(p.overall is None for p in progress)


async def test_a_plan_cut_short_leaves_no_count_unasked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan made each table's count coroutine as it went: a failed cache read half-way (or a sign-out) left the
    first ones never awaited, which the interpreter reports (and this suite turns into a failure: it did, in
    tests/test_app_mfa.py, when a sign-out cut an initial sync's plan short)."""
    server, email, password = _desk(10)
    plain_cursor = Cache.cursor

    async def failing_cursor(self: Cache, table: str) -> tuple[int, int]:
        if table == "messages":
            raise RetryableError("disk I/O error")
        return await plain_cursor(self, table)

    monkeypatch.setattr(Cache, "cursor", failing_cursor)
    engine = await fake_engine(server, tmp_path / "e")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            await engine.sign_in(email, password)
            with contextlib.suppress(RetryableError):
                await engine.sync_once()
        finally:
            await engine.close()
        gc.collect()
    unawaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert unawaited == []


async def test_a_pull_that_fails_waits_until_no_count_is_asking(tmp_path: Path) -> None:
    """A pull that ends early (an error; a sign-out or the app closing cancel it the same way) only used to cancel
    its counts, which went on for another step of the event loop: the engine then closed its HTTP client while
    they were still opening connections, and a socket opened then was never closed (ResourceWarnings of
    "unclosed transport" in the app tests; the counts are asked all at once, so many connections at a time).
    When the pull returns, no count is running any more; and they are asked one at a time, on one connection."""
    server, email, password = _desk(10)
    asking = most = 0
    stuck = asyncio.Event()  # never set: every count stays in flight until cancelled

    async def slow_count(table: str, after: tuple[int, int]) -> int:
        nonlocal asking, most
        asking += 1
        most = max(most, asking)
        try:
            await stuck.wait()
            return 0
        finally:
            asking -= 1

    async def failing_pull(table: str, after: tuple[int, int], max_rows: int = 1000) -> list[dict[str, object]]:
        await asyncio.sleep(0)  # the counts have started
        raise RetryableError("the network went away")

    server.count = slow_count  # type: ignore[method-assign]
    server.pull = failing_pull  # type: ignore[method-assign]
    server.pull_batch = failing_pull  # type: ignore[method-assign]
    engine = await fake_engine(server, tmp_path / "e")
    try:
        await engine.sign_in(email, password)
        with pytest.raises(RetryableError):
            await engine.sync_once()
        assert asking == 0, f"{asking} counts still asking after the pull gave up"
        assert most == 1, f"{most} counts asked at once"
        assert server.calls.count("counts") == 1  # every table's count in one request (rpc sync_counts)
    finally:
        await engine.close()


async def test_a_server_without_sync_counts_is_asked_table_by_table(tmp_path: Path) -> None:
    """A server from before migration 20261205000500 has sync_count but no sync_counts: the total still comes,
    from one request per table, so the bar is per row from its first event."""
    server, email, password = _desk(40)

    async def no_counts(asks: object) -> list[int]:
        raise RetryableError("Could not find the function public.sync_counts", code="PGRST202")

    server.counts = no_counts  # type: ignore[method-assign,assignment]
    cached, progress = await _first_sync(server, email, password, tmp_path / "e")
    assert cached == 40
    assert progress and all(p.overall is not None for p in progress)
    assert [p.overall for p in progress if p.phase == "messages"][-1] == 1.0
