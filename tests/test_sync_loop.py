"""The sync engine's loop on a ``FakeRemote`` (tests/fakes.py): fast unit tests of push order, backoff
and recovery, bisecting a refused batch, lost responses, token refresh, needs-sign-in, the offline
ticket-update merge, realtime changes and the typing throttle. What only a real server proves (RLS,
the cursor under concurrency, supabase-py's wire) stays in the live-stack tests.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sync import AuthError, RemoteConfig, RetryableError, SyncEngine, events
from sync.clock import Clock
from tests.fakes import FakeRemote, FakeUser, MemorySessions
from tests.helpers import wait_for

pytestmark = pytest.mark.timeout(30)


@dataclass
class World:
    server: FakeRemote
    agent: FakeUser
    customer: FakeUser
    tmp: Path
    opened: list[SyncEngine]

    async def engine(self, user: FakeUser, name: str = "e") -> tuple[SyncEngine, list[events.Event]]:
        engine = await SyncEngine.open(
            RemoteConfig("http://fake.invalid", "anon-key"),
            self.tmp / name,
            remote=self.server,
            sessions=MemorySessions(),
            clock=Clock(wall=self.server.clock, random=lambda: 0.0),
        )
        engine.loop.retry_base, engine.loop.retry_cap = 0.01, 0.05  # backoff in milliseconds: the test never waits long
        log: list[events.Event] = []
        engine.subscribe(log.append)
        await engine.sign_in(user.email, user.password)
        self.opened.append(engine)
        return engine, log


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    server = FakeRemote()
    w = World(server, server.add_user("agent", "Ann Agent"), server.add_user("customer", "Carl Customer"), tmp_path, [])
    yield w
    for engine in w.opened:
        await engine.close()


async def test_a_flush_sends_one_request_in_the_order_written(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    world.server.calls.clear()
    texts = [f"reply {i}" for i in range(5)]
    for text in texts:
        agent.commands.send_message(tid, text)
    assert [m.content for m in agent.cache.thread(tid)] == texts
    await agent.sync_once()
    assert [c for c in world.server.calls if c.startswith("insert")] == ["insert messages x5"]
    assert [r["content"] for r in world.server.messages_of(tid)] == texts
    assert [m.content for m in agent.cache.thread(tid)] == texts
    assert all(m.local_state == "sent" for m in agent.cache.thread(tid))
    ticket = agent.cache.ticket(tid)
    assert ticket is not None and ticket.last_message_preview == "reply 4"


async def test_offline_backs_off_and_a_wake_after_reconnect_drains_the_outbox(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    agent.loop.poll_interval = 3600
    world.server.offline = True
    agent.commands.send_message(tid, "written offline")
    await agent.start()
    await wait_for(
        lambda: agent.status.state == "offline" and len([c for c in world.server.calls if c.startswith("insert")]) >= 3,
        what="retries",
    )
    assert agent.status.pending == 1 and "connection refused" in (agent.status.last_error or "")
    world.server.offline = False
    agent.wake()
    await wait_for(lambda: agent.status.pending == 0 and agent.status.state == "online", what="the drain")
    assert [r["content"] for r in world.server.messages_of(tid)] == ["written offline"]
    assert agent.status.last_error is None and agent.status.last_synced_at is not None


async def test_a_refused_row_is_isolated_by_bisecting_and_the_rest_goes(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    world.server.refuse = lambda table, row: (
        "new row violates row-level security" if row.get("content") == "bad" else None
    )
    agent, log = await world.engine(world.agent)
    await agent.sync_once()
    world.server.calls.clear()
    sent = [agent.commands.send_message(tid, "bad" if i == 5 else f"ok {i}") for i in range(16)]
    await agent.sync_once()
    assert agent.status.pending == 0 and agent.status.failed == 1
    assert sorted(r["content"] for r in world.server.messages_of(tid)) == sorted(f"ok {i}" for i in range(16) if i != 5)
    bad = agent.cache.message(sent[5].id)
    assert bad is not None and bad.local_state == "failed" and "row-level security" in (bad.error or "")
    inserts = [c for c in world.server.calls if c.startswith("insert")]
    assert len(inserts) <= 2 * math.log2(16) + 1, inserts  # O(log n) requests, not one per row
    assert any(isinstance(e, events.Notice) and e.kind == "message_failed" for e in log)
    world.server.refuse = lambda table, row: None
    agent.commands.retry(sent[5].id)
    await agent.sync_once()
    assert agent.status.failed == 0 and len(world.server.messages_of(tid)) == 16


async def test_a_lost_response_is_resent_and_stored_once(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    agent.commands.send_message(tid, "once")
    world.server.lose_response.add("insert messages")
    with pytest.raises(RetryableError):
        await agent.sync_once()
    assert agent.status.pending == 1 and len(world.server.messages_of(tid)) == 1
    await agent.sync_once()
    assert agent.status.pending == 0 and len(world.server.messages_of(tid)) == 1


async def test_an_expiring_token_is_refreshed_before_the_round_and_a_401_mid_round_too(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    world.server.clock.advance(3600 - 30)  # inside the refresh margin
    world.server.calls.clear()
    await agent.sync_once()
    assert world.server.calls[0] == "refresh"
    world.server.fail_on["insert messages"] = AuthError("JWT expired", code="PGRST303", status=401)
    agent.commands.send_message(tid, "through a 401")
    world.server.calls.clear()
    await agent.sync_once()
    assert world.server.calls[:3] == ["insert messages x1", "refresh", "insert messages x1"]
    assert [r["content"] for r in world.server.messages_of(tid)] == ["through a 401"]


async def test_a_refused_refresh_needs_sign_in_keeps_the_outbox_and_the_same_user_resumes(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    world.server.clock.advance(7200)
    world.server.refuse_refresh = True
    agent.commands.send_message(tid, "kept through sign-in")
    await agent.start()
    await wait_for(lambda: agent.status.state == "needs-sign-in", what="needs-sign-in")
    assert agent.status.pending == 1 and agent.user is not None
    world.server.refuse_refresh = False
    await agent.sign_in(world.agent.email, world.agent.password)
    await wait_for(lambda: agent.status.pending == 0 and agent.status.state == "online", what="resumed")
    assert [r["content"] for r in world.server.messages_of(tid)] == ["kept through sign-in"]


async def test_an_offline_ticket_change_merges_field_by_field_with_the_servers(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, log = await world.engine(world.agent)
    await agent.sync_once()
    agent.commands.update_ticket(tid, status="pending", priority="high")
    world.server.tables["tickets"][tid] |= {"priority": "urgent"}  # someone else, meanwhile
    await agent.sync_once()
    server = world.server.tables["tickets"][tid]
    assert (server["status"], server["priority"]) == ("pending", "urgent")
    ticket = agent.cache.ticket(tid)
    assert ticket is not None and (ticket.status, ticket.priority, ticket.local_state) == ("pending", "urgent", "sent")
    assert any(isinstance(e, events.Notice) and e.kind == "ticket_update_overruled" for e in log)


async def test_a_pull_that_fails_after_a_push_is_owed_to_the_next_round(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    agent.commands.send_message(tid, "pushed")
    world.server.fail_on["pull messages"] = RetryableError("network: reset")  # the pushed row comes back by it
    with pytest.raises(RetryableError):
        await agent.sync_once(pull=False)
    assert agent.loop.pull_pending and agent.status.pending == 0
    other = world.server.add_ticket(world.customer, world.agent, "Arrived meanwhile")
    assert await agent.sync_once(pull=False)
    assert agent.cache.ticket(other) is not None and not agent.loop.pull_pending


async def test_realtime_changes_reach_the_cache_and_say_who_wrote(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, log = await world.engine(world.agent)
    await agent.sync_once()
    agent.loop.poll_interval = 3600
    await agent.start()
    assert world.server.live.on_change is not None
    row = {
        "id": "m-live",
        "ticket_id": tid,
        "sender_id": world.customer.id,
        "content": "live hello",
        "is_internal": False,
        "created_at": "2026-01-01T00:00:05+00:00",
    }
    world.server.live.on_change("messages", "INSERT", row)
    await wait_for(lambda: agent.cache.message("m-live") is not None, what="the live row")
    assert any(isinstance(e, events.MessagesChanged) and e.new_from_others and "m-live" in e.message_ids for e in log)
    assert agent.parts.live.applied == 1


async def test_typing_is_throttled_in_one_place_and_restarts_after_a_stop(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.presence.watch(tid)
    for _ in range(5):
        await agent.presence.send_typing(tid)
    assert world.server.live.typing_signals == [tid]
    agent.presence.stop_typing(tid)  # sent: the next keystroke of the next message says so at once
    await agent.presence.send_typing(tid)
    assert world.server.live.typing_signals == [tid, tid]


async def test_a_reply_written_during_a_long_first_sync_goes_out_before_the_sync_ends(world: World) -> None:
    """A first sync of a big desk takes minutes; a reply written meanwhile must not wait for all of it
    (the frozen app's and the browser tests' replies, edits and read markers waited in the full suite)."""
    tid = world.server.add_ticket(world.customer, world.agent)
    for i in range(2500):  # three pages of messages
        world.server.write(
            "messages",
            {
                "id": str(uuid.uuid4()),
                "ticket_id": tid,
                "sender_id": world.customer.id,
                "content": f"old message {i}",
                "is_internal": False,
                "created_at": world.server.stamp(),
            },
        )
    second_page_asked, release_second, release_rest = asyncio.Event(), asyncio.Event(), asyncio.Event()
    calls = 0
    plain_pull = world.server.pull

    async def slow_pull(table: str, after: tuple[int, int], max_rows: int = 1000) -> list[dict[str, Any]]:
        nonlocal calls
        if table == "messages":
            calls += 1
            if calls == 2:
                second_page_asked.set()
                await release_second.wait()
            elif calls > 2:
                await release_rest.wait()
        return await plain_pull(table, after, max_rows)

    world.server.pull = slow_pull  # type: ignore[method-assign]
    agent, _ = await world.engine(world.agent)
    agent.loop.poll_interval = 3600
    await agent.start()
    await asyncio.wait_for(second_page_asked.wait(), 10)
    # the messages are asked for while the tickets phase still applies: the reply needs its ticket cached
    await wait_for(lambda: agent.cache.has_ticket(tid), 10, "the tickets phase to hold the ticket")
    agent.commands.send_message(tid, "written during the first sync")
    release_second.set()  # the second page is applied; the rest of the sync still waits on the server
    try:
        await wait_for(
            lambda: any(r["content"] == "written during the first sync" for r in world.server.messages_of(tid)),
            10,
            "the reply on the server while the first sync is still running",
        )
        assert not agent.cache.initial_sync_done()
    finally:
        release_rest.set()
    await wait_for(agent.cache.initial_sync_done, 10, "the first sync to finish")
    thread = agent.cache.thread(tid)
    mine = [m for m in thread if m.content == "written during the first sync"]
    assert len(mine) == 1 and mine[0].local_state == "sent"
    assert len(world.server.messages_of(tid)) == 2501


async def test_a_thread_opened_during_the_first_sync_is_fetched_at_once(world: World) -> None:
    """The first pull reaches a new ticket's messages last (cursor order); the thread the user opens meanwhile
    is fetched by ticket id right away, and the pull's later copy of the same rows changes nothing."""
    old = world.server.add_ticket(world.customer, world.agent, "Old ticket")
    for i in range(1500):
        world.server.write(
            "messages",
            {
                "id": str(uuid.uuid4()),
                "ticket_id": old,
                "sender_id": world.customer.id,
                "content": f"old message {i}",
                "is_internal": False,
                "created_at": world.server.stamp(),
            },
        )
    new = world.server.add_ticket(world.customer, world.agent, "New ticket")
    for text in ("The export hangs.", "Since this morning."):
        world.server.write(
            "messages",
            {
                "id": str(uuid.uuid4()),
                "ticket_id": new,
                "sender_id": world.customer.id,
                "content": text,
                "is_internal": False,
                "created_at": world.server.stamp(),
            },
        )
    messages_asked, release = asyncio.Event(), asyncio.Event()
    plain_pull = world.server.pull

    async def slow_pull(table: str, after: tuple[int, int], max_rows: int = 1000) -> list[dict[str, Any]]:
        if table == "messages":
            messages_asked.set()
            await release.wait()
        return await plain_pull(table, after, max_rows)

    world.server.pull = slow_pull  # type: ignore[method-assign]
    agent, log = await world.engine(world.agent)
    agent.loop.poll_interval = 3600
    await agent.start()
    try:
        await asyncio.wait_for(messages_asked.wait(), 10)
        # the messages are asked for while the tickets phase still applies (their first pages download meanwhile)
        await wait_for(lambda: agent.cache.has_ticket(new), 10, "the tickets phase to hold the new ticket")
        assert agent.cache.thread(new) == []  # the ticket row, not its thread
        assert await agent.partial.fetch_thread_now(new)
        assert [m.content for m in agent.cache.thread(new)] == ["The export hangs.", "Since this morning."]
        assert any(isinstance(e, events.MessagesChanged) and e.ticket_id == new for e in log)
        assert not agent.cache.initial_sync_done()
    finally:
        release.set()
    await wait_for(agent.cache.initial_sync_done, 10, "the first sync to finish")
    assert [m.content for m in agent.cache.thread(new)] == ["The export hangs.", "Since this morning."]
    assert await agent.cache.acount("messages") == 1502  # every old message, the opened thread once
    assert not await agent.partial.fetch_thread_now(new)  # done: nothing to fetch early any more
    assert [h.ticket_id for h in agent.cache.search("export")] == [new]  # indexed once, not twice
