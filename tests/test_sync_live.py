"""Realtime and convergence tests of the sync engine against a real localbase: changes reach the
cache through realtime, a realtime gap during a disconnect is filled by the catch-up pull, three
users with their own caches converge to what RLS lets each of them see, presence and typing, and
a real server outage (the stack process stopped and started again).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sync import SyncEngine, events
from tests.conftest import User, Users, create_user
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess, session_claims
from tests.test_sync_support import (
    EngineFactory,
    open_engines,
    seed_ticket,
    server_messages,
    sql,
    wait_for,
)


async def started(engine: SyncEngine) -> SyncEngine:
    engine.loop.poll_interval = 3600  # no periodic pulls: only realtime and (re)subscribe catch-ups move data
    await engine.start()
    await wait_for(
        lambda: engine.status.state == "online" and engine.status.last_synced_at is not None, what="the first pull"
    )
    await wait_for(lambda: engine.remote.live.subscribed, what="realtime subscription")  # type: ignore[attr-defined]
    await settled(engine)
    return engine


async def settled(engine: SyncEngine) -> None:
    """Wait until the catch-up pull that every (re)subscribe triggers has run."""
    for _ in range(2):
        await wait_for(lambda: not engine.loop.pull_pending and not engine.status.syncing, what="the catch-up pull")
        await asyncio.sleep(0.3)


async def cursor(engine: SyncEngine, table: str) -> tuple[int, int]:
    return await engine.cache.cursor(table)


def visible(db_url: str, user: User, table: str) -> set[str]:
    """What RLS lets ``user`` see, asked of PostgreSQL itself as that user."""
    key = "ticket_id::text || ':' || user_id::text" if table == "ticket_reads" else "id::text"
    with psycopg.connect(db_url) as conn:
        conn.execute("set local role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps(session_claims(db_url, user.id)),),
        )
        return {r[0] for r in conn.execute(f"select {key} from public.{table}")}


def cached(engine: SyncEngine, table: str) -> set[str]:
    return engine.cache.keys(table)


async def test_realtime_insert_reaches_the_cache_without_a_pull(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Live")
    agent = await started(await engines.open(users.agent))
    log = engines.log(agent)
    for attempt in range(3):
        before, mark = await cursor(agent, "messages"), len(log)
        mid = str(
            sql(
                stack.db_url,
                "insert into messages (ticket_id, sender_id, content) values (%s, %s, %s) returning id",
                tid,
                users.customer.id,
                f"live {attempt}",
            )[0][0]
        )
        await wait_for(lambda mid=mid: agent.cache.message(mid) is not None, timeout=10, what="the realtime insert")
        after = await cursor(agent, "messages")
        # periodic pulls are off; a sync round meanwhile can only be a catch-up after a realtime reconnect
        # (a loaded machine misses a heartbeat), and its pull may have brought the row first: try again
        if not any(isinstance(e, events.StatusChanged) and e.status.syncing for e in log[mark:]):
            break
    else:
        pytest.fail("a sync round ran during each of 3 attempts: realtime keeps reconnecting")
    assert after == before  # it came by realtime, not by a pull
    changed = [e for e in engines.log(agent) if isinstance(e, events.MessagesChanged) and mid in e.message_ids]
    assert changed and changed[-1].new_from_others
    assert agent.cache.ticket(tid).unread_count == attempt + 1  # type: ignore[union-attr]


async def test_realtime_gap_during_disconnect_is_filled_by_catch_up_pull(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Gap")
    agent = await started(await engines.open(users.agent, url=proxy.url))
    live = agent.remote.live  # type: ignore[attr-defined]
    proxy.set_mode("drop")
    await wait_for(lambda: not live.subscribed, what="the socket to drop")
    missed = [
        str(
            sql(
                stack.db_url,
                "insert into messages (ticket_id, sender_id, content) values (%s, %s, %s) returning id",
                tid,
                users.customer.id,
                f"while away {i}",
            )[0][0]
        )
        for i in range(3)
    ]
    sql(stack.db_url, "update tickets set priority = 'urgent' where id = %s", tid)
    await asyncio.sleep(1.0)
    assert all(agent.cache.message(m) is None for m in missed)  # nothing could arrive: the network is down
    proxy.set_mode("pass")
    await wait_for(
        lambda: all(agent.cache.message(m) is not None for m in missed),
        timeout=30,
        what="the catch-up pull (at the break, retried once the network is back, and after resubscribe)",
    )
    await wait_for(lambda: live.subscribed, what="realtime resubscribed")
    assert agent.cache.ticket(tid).priority == "urgent"  # type: ignore[union-attr]


async def test_two_agents_and_a_customer_converge_to_what_rls_lets_each_see(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    customer = await started(await engines.open(users.customer2))
    agent = await started(await engines.open(users.agent))
    agent2 = await started(await engines.open(users.agent2))
    ticket = customer.commands.create_ticket("Three-way", "hello support", priority="normal")
    await wait_for(lambda: agent2.cache.ticket(ticket.id) is not None, what="agent2 to see the unassigned ticket")
    await wait_for(lambda: agent.cache.ticket(ticket.id) is not None, what="agent to see the unassigned ticket")
    agent.commands.take(ticket.id)
    await wait_for(
        lambda: (
            sql(stack.db_url, "select assignee_id::text from tickets where id = %s", ticket.id) == [(users.agent.id,)]
        ),
        what="the take to reach the server",
    )
    note = agent.commands.send_message(ticket.id, "customer is on the legacy plan", internal=True)
    reply = agent.commands.send_message(ticket.id, "hi! looking into it")
    customer.commands.send_message(ticket.id, "thanks")
    agent.commands.mark_read(ticket.id)
    await wait_for(lambda: agent.status.pending == 0 and customer.status.pending == 0, what="outboxes to drain")
    # catch-up pulls make the end state deterministic whatever realtime delivered
    for engine in (customer, agent, agent2):
        await engine.sync_once()
    for engine, user in ((customer, users.customer2), (agent, users.agent), (agent2, users.agent2)):
        for table in ("tickets", "messages", "ticket_reads"):
            assert cached(engine, table) == visible(stack.db_url, user, table), (user.role, table)
    assert customer.cache.message(note.id) is None and customer.cache.message(reply.id) is not None
    assert agent2.cache.ticket(ticket.id) is None  # taken by agent: no longer visible to agent2
    assert customer.cache.read_marker(ticket.id, users.agent.id) is not None


async def test_presence_and_typing(stack: StackProcess, users: Users, engines: EngineFactory) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Who is here")
    agent = await started(await engines.open(users.agent))
    customer = await started(await engines.open(users.customer))
    await agent.presence.watch(tid)
    await customer.presence.watch(tid)
    await wait_for(
        lambda: any(
            isinstance(e, events.PresenceChanged) and users.customer.name in e.viewers for e in engines.log(agent)
        ),
        what="presence of the customer",
    )
    await customer.presence.send_typing(tid)
    await wait_for(
        lambda: any(isinstance(e, events.Typing) and e.user_id == users.customer.id for e in engines.log(agent)),
        what="the typing broadcast",
    )
    await customer.presence.unwatch(tid)
    await wait_for(
        lambda: any(isinstance(e, events.PresenceChanged) and not e.viewers for e in engines.log(agent)),
        what="the customer leaving",
    )


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackProcess, User, User]]:
    """A stack of our own to stop and start (never the shared session stack)."""
    proc = StackProcess(tmp_path_factory.mktemp("sync-outage") / "data")
    proc.start()
    try:
        yield proc, create_user(proc.db_url, "agent"), create_user(proc.db_url, "customer")
    finally:
        proc.stop()


async def test_server_outage_queued_messages_arrive_once_after_restart(
    own_stack: tuple[StackProcess, User, User], tmp_path: Path
) -> None:
    stack, agent_user, customer_user = own_stack
    tid = seed_ticket(stack.db_url, customer_user, agent_user, "Outage")
    async with open_engines(stack, tmp_path) as factory:
        agent = await started(await factory.open(agent_user))
        stack.stop()
        await wait_for(lambda: not agent.remote.live.subscribed, what="realtime to notice")  # type: ignore[attr-defined]
        queued = [agent.commands.send_message(tid, f"during the outage {i}") for i in range(3)]
        await wait_for(lambda: agent.status.state == "offline", what="offline status")
        assert agent.status.pending == 3
        stack.start()
        await wait_for(
            lambda: agent.status.pending == 0 and agent.status.state == "online",
            timeout=60,
            what="the outbox to drain after the restart",
        )
        rows = server_messages(stack.db_url, [m.id for m in queued])
        assert sorted(c for _, c in rows) == [f"during the outage {i}" for i in range(3)]
        await wait_for(lambda: agent.remote.live.subscribed, timeout=30, what="realtime to resubscribe")  # type: ignore[attr-defined]
        mid = str(
            sql(
                stack.db_url,
                "insert into messages (ticket_id, sender_id, content) values (%s, %s, 'back') returning id",
                tid,
                customer_user.id,
            )[0][0]
        )
        await wait_for(lambda: agent.cache.message(mid) is not None, what="live changes after the restart")


async def test_retry_is_woken_by_reconnect_long_before_its_backoff_timer(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Woken by reconnect")
    agent = await started(await engines.open(users.agent, url=proxy.url))
    agent.loop.retry_base, agent.loop.retry_cap = 120.0, 240.0  # the timer alone would wait at least 60 s
    proxy.set_mode("drop")
    msg = agent.commands.send_message(tid, "sent when the network returns")
    await wait_for(lambda: agent.status.state == "offline", what="offline status")
    proxy.set_mode("pass")
    back = asyncio.get_running_loop().time()
    await wait_for(lambda: agent.status.pending == 0, timeout=30, what="the reconnect to wake the push")
    assert asyncio.get_running_loop().time() - back < 30
    assert len(server_messages(stack.db_url, [msg.id])) == 1


async def test_retry_is_woken_by_its_timer_when_realtime_stays_down(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Woken by timer")
    agent = await started(await engines.open(users.agent, url=proxy.url))
    live = agent.remote.live  # type: ignore[attr-defined]
    proxy.reset_request(b"GET /realtime/v1/websocket", times=10**6)  # realtime can never come back
    proxy.set_mode("drop")
    await wait_for(lambda: not live.subscribed, what="the socket to drop")
    msg = agent.commands.send_message(tid, "sent by the retry timer")
    await wait_for(lambda: agent.status.state == "offline", what="offline status")
    proxy.set_mode("pass")
    await wait_for(lambda: agent.status.pending == 0, timeout=30, what="the backoff timer to retry")
    assert not live.subscribed  # so it was not a reconnect that woke it
    assert len(server_messages(stack.db_url, [msg.id])) == 1
