"""What a user sees when the connection dies, against a real localbase through tests/faultproxy.py and the
official client: a dead network (the proxy stalls every byte, as a Wi-Fi whose upstream died) says "offline"
within seconds, not when a request times out; and a per-ticket channel the server closes (typing and viewers on
the open ticket) is joined again, as the main channel is.
"""

from __future__ import annotations

import time
from pathlib import Path

from sync import RemoteConfig, SyncEngine, events
from sync.clock import Clock
from tests.conftest import Users
from tests.fakes import FakeRemote, MemorySessions
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_sync_live import started
from tests.test_sync_live_overload import burst
from tests.test_sync_support import EngineFactory, seed_ticket, server_messages, wait_for

OFFLINE_WITHIN = 20.0  # seconds the test waits for "offline"; the probe takes ≤ 9 s (sync/live.py)


async def test_a_dead_network_says_offline_within_seconds_and_online_when_it_answers_again(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Dead network")
    # the app's request timeout (20 s), so no request's timeout can be what says offline
    agent = await started(await engines.open(users.agent, url=proxy.url, timeout=20.0))
    proxy.set_mode("stall")
    began = time.monotonic()
    await wait_for(lambda: agent.status.state == "offline", timeout=OFFLINE_WITHIN, what="the status to say offline")
    print(f"offline after {time.monotonic() - began:.1f} s")  # the figure, with -s
    msg = agent.commands.send_message(tid, "queued while the network is dead")
    assert agent.status.pending == 1
    proxy.set_mode("pass")
    proxy.cut()  # the stalled connections: as the OS would end them after the outage
    await wait_for(lambda: agent.status.state == "online" and agent.status.pending == 0, timeout=30, what="online")
    assert len(server_messages(stack.db_url, [msg.id])) == 1
    assert any(isinstance(e, events.StatusChanged) and e.status.state == "offline" for e in engines.log(agent))


async def test_a_ticket_channel_the_server_closes_is_joined_again(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    """The server closes the agent's channel of the open ticket (here: a bad access_token on it; on Supabase also an
    expired token): realtime-py forgets a closed channel for good, so typing and viewers on the ticket stopped for
    the rest of its viewing. A new channel is joined, and the customer's typing reaches the agent again."""
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Closed ticket channel")
    agent = await started(await engines.open(users.agent))
    customer = await started(await engines.open(users.customer))
    await agent.presence.watch(tid)
    await customer.presence.watch(tid)
    link = agent.remote.live  # type: ignore[attr-defined]
    closed = link._watched[tid]
    await wait_for(lambda: closed.is_joined, what="the agent's ticket channel joined")
    await closed.push("access_token", {"access_token": "not a token"})
    await wait_for(lambda: closed.is_closed, what="the server to close the ticket channel")
    await wait_for(
        lambda: link._watched.get(tid) not in (None, closed) and link._watched[tid].is_joined,
        what="a new ticket channel",
    )
    log = engines.log(agent)
    mark = len(log)
    await customer.presence.send_typing(tid)
    await wait_for(
        lambda: any(isinstance(e, events.Typing) and e.user_id == users.customer.id for e in log[mark:]),
        what="the customer's typing on the new channel",
    )
    await agent.presence.unwatch(tid)
    assert tid not in link._watched and tid not in link._sides


async def test_the_probes_verdict_moves_an_online_status_and_an_answer_brings_online_back(tmp_path: Path) -> None:
    """The engine's side of the probe, on the fake server: unreachable turns "online" into "offline" at once
    (no request made), reachable again runs a round that says online; a status the loop set is not overridden."""
    server = FakeRemote()
    user = server.add_user("agent", "Ann Agent")
    engine = await SyncEngine.open(
        RemoteConfig("http://fake.invalid", "anon-key"),
        tmp_path / "e",
        remote=server,
        sessions=MemorySessions(),
        clock=Clock(wall=server.clock, random=lambda: 0.0),
    )
    try:
        await engine.sign_in(user.email, user.password)
        engine.loop.poll_interval = 3600
        await engine.start()
        await wait_for(lambda: engine.status.state == "online" and not engine.status.syncing, what="online")
        reach = server.live.on_reach
        assert reach is not None
        reach(False)
        assert engine.status.state == "offline" and engine.status.last_error == "the server does not answer"
        reach(True)
        await wait_for(lambda: engine.status.state == "online", what="online again after the answer")
        engine.board.set(state="needs-sign-in")
        reach(False)
        assert engine.status.state == "needs-sign-in"
    finally:
        await engine.close()


async def test_a_socket_the_network_forgot_is_replaced_while_new_connections_work(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    """A laptop woken from sleep: its open sockets are dead for good (the proxy freezes them), new connections work.
    The probe says offline, then closes the silent socket (PROBE_DEAD) instead of waiting for websockets' keepalive
    (30-50 s), so a new one joins and the status is online again with live changes flowing."""
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Woken from sleep")
    agent = await started(await engines.open(users.agent, url=proxy.url, timeout=20.0))
    live = agent.remote.live  # type: ignore[attr-defined]
    proxy.freeze()
    began = time.monotonic()
    await wait_for(lambda: agent.status.state == "offline", timeout=OFFLINE_WITHIN, what="the status to say offline")
    await wait_for(
        lambda: agent.status.state == "online" and live.subscribed and live.reachable,
        timeout=28 - (time.monotonic() - began),  # websockets' keepalive alone closes it after 30 s at the soonest
        what="a new socket joined and the status online",
    )
    print(f"online again after {time.monotonic() - began:.1f} s")  # the figure, with -s
    (mid,) = burst(stack.db_url, tid, users.customer, 1, "after the sleep")
    await wait_for(lambda: agent.cache.message(mid) is not None, what="a live change on the new socket")
