"""Realtime over the project's quota, against a real localbase and the official client: postgres_changes past
the `db_events` rate are dropped silently (as Supabase's poller skips them), and the engine's catch-up
(sync/catchup.py) still brings a burst into the cache long before the periodic pull, which these tests push an
hour away; a desk under its quota gets no pulls from it while changes trickle in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from localbase.realtime import quotas
from sync import SyncEngine, events
from tests.conftest import User, create_user
from tests.helpers import wait_for
from tests.stackproc import TEST_RATE_LIMITS, StackProcess
from tests.test_sync_live import started
from tests.test_sync_support import open_engines, seed_ticket


@pytest.fixture
def tight(tmp_path: Path) -> Iterator[StackProcess]:
    """A stack whose events/s quota (and so its postgres_changes rate) is 10: 50 deliveries in its first tick."""
    env = {**TEST_RATE_LIMITS, "LOCALBASE_REALTIME_MAX_EVENTS_PER_SECOND": "10"}
    proc = StackProcess(tmp_path / "data", env=env)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def burst(db_url: str, ticket: str, sender: User, count: int, tag: str) -> list[str]:
    """``count`` messages from the customer, one transaction each, as fast as the superuser can write them."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with psycopg.connect(db_url, autocommit=True) as conn:
        for i, mid in enumerate(ids):
            conn.execute(
                "insert into messages (id, ticket_id, sender_id, content) values (%s, %s, %s, %s)",
                (mid, ticket, sender.id, f"{tag} {i}"),
            )
    return ids


def count_pulls(engine: SyncEngine) -> list[int]:
    """A counter of the engine's pulls from now on (its puller's, whoever asked)."""
    puller = engine.parts.puller
    pulls = [0]
    pull = puller.pull

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        pulls[0] += 1
        return await pull(*args, **kwargs)

    puller.pull = counted  # type: ignore[method-assign]
    return pulls


async def test_a_burst_over_the_quota_reaches_the_cache_well_before_the_periodic_pull(
    tight: StackProcess, tmp_path: Path
) -> None:
    agent, customer = create_user(tight.db_url, "agent"), create_user(tight.db_url, "customer")
    ticket = seed_ticket(tight.db_url, customer, agent, "Busy desk")
    async with open_engines(tight, tmp_path) as engines:
        engine = await started(await engines.open(agent))  # periodic pull an hour away
        ids = burst(tight.db_url, ticket, customer, 120, "burst")
        log_file = tmp_path / "data-stack.log"
        await wait_for(lambda: quotas.DB_EVENTS_LOG in log_file.read_text(), timeout=30, what="the drop logged")
        # on content: every message of the burst with its text in the cache, where only realtime or a catch-up
        # pull can have put it (the drop leaves realtime short of it)
        await wait_for(
            lambda: all(engine.cache.message(mid) is not None for mid in ids), timeout=30, what="the whole burst"
        )
        texts = [m.content for mid in ids if (m := engine.cache.message(mid)) is not None]
        assert texts == [f"burst {i}" for i in range(len(ids))]
        assert engine.cache.count_thread(ticket) == len(ids)  # nothing twice
        log = engines.log(engine)
        await wait_for(
            lambda: any(isinstance(e, events.StatusChanged) and e.status.live == "caught-up" for e in log),
            what="the status saying live updates caught up",
        )


async def test_a_desk_under_its_quota_gets_no_extra_pulls(stack: StackProcess, tmp_path: Path) -> None:
    """The session's stack (quotas raised): a trickle of messages comes by realtime alone, no pull; a burst that
    arrives whole gets one check after it, and the status never says live updates were interrupted."""
    agent, customer = create_user(stack.db_url, "agent"), create_user(stack.db_url, "customer")
    ticket = seed_ticket(stack.db_url, customer, agent, "Quiet desk")
    async with open_engines(stack, tmp_path) as engines:
        engine = await started(await engines.open(agent))
        pulls = count_pulls(engine)
        for i in range(5):
            (mid,) = burst(stack.db_url, ticket, customer, 1, f"trickle {i}")
            await wait_for(lambda mid=mid: engine.cache.message(mid) is not None, what="a live message")
        assert pulls[0] == 0
        ids = burst(stack.db_url, ticket, customer, 40, "burst")
        await wait_for(lambda: all(engine.cache.message(m) is not None for m in ids), what="the burst")
        await wait_for(lambda: pulls[0] == 1 and not engine.status.syncing, what="the check after the burst")
        # rows the check read before realtime delivered them are no drop: wait for its verdict on them
        catch_up = engine.parts.live.catch_up
        await wait_for(lambda: not catch_up.judging, what="the check's verdict")
        assert engine.cache.count_thread(ticket) == 45
        assert pulls[0] == 1
        lives = {e.status.live for e in engines.log(engine) if isinstance(e, events.StatusChanged)}
        assert lives == {"live"}


async def test_a_channel_the_server_closes_is_replaced_and_caught_up(stack: StackProcess, tmp_path: Path) -> None:
    """The server closes the engine's channel (here: a bad access_token on it; on Supabase also an expired token or a
    quota): realtime-py forgets a closed channel for good, so the engine joins a new one, pulls, says it caught up,
    and live changes flow again."""
    agent, customer = create_user(stack.db_url, "agent"), create_user(stack.db_url, "customer")
    ticket = seed_ticket(stack.db_url, customer, agent, "Closed channel")
    async with open_engines(stack, tmp_path) as engines:
        engine = await started(await engines.open(agent))  # periodic pull an hour away
        link = engine.remote.live  # type: ignore[attr-defined]
        closed = link._channel
        (missed,) = burst(stack.db_url, ticket, customer, 1, "before")
        await wait_for(lambda: engine.cache.message(missed) is not None, what="a live message")
        await closed.push("access_token", {"access_token": "not a token"})
        await wait_for(lambda: link._channel is not closed and link.subscribed, what="a new channel")
        log = engines.log(engine)
        await wait_for(
            lambda: any(isinstance(e, events.StatusChanged) and e.status.live == "caught-up" for e in log),
            what="the status saying live updates caught up",
        )
        assert any(isinstance(e, events.StatusChanged) and e.status.live == "interrupted" for e in log)
        (mid,) = burst(stack.db_url, ticket, customer, 1, "after")
        await wait_for(lambda: engine.cache.message(mid) is not None, what="a live message on the new channel")
