"""Supabase Realtime's tenant quotas on localbase (`localbase/realtime/quotas.py`), as a hostile client meets
them: more sockets, channels, joins, broadcasts and presence messages than a Supabase project takes, each
answered with Supabase's reply. Each test starts its own stack with the one quota it tries lowered (the rates
are stack-wide, so tests sharing a stack would count each other's joins and sends). The official client
where a well-behaved app would meet the limit, a raw websocket for floods no client library sends.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from realtime import RealtimeSubscribeStates
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.harness import stack_settings
from localbase.realtime import quotas
from localbase.realtime.quotas import QuotaSettings, RateCounter
from sync import events
from tests.conftest import create_user
from tests.realtime.support import RawSocket, as_user, client, new_ticket, wait_until
from tests.stackproc import TEST_RATE_LIMITS, StackProcess
from tests.test_sync_support import open_engines, seed_ticket, wait_for


def quota_stack(root: Path, **lowered: int) -> StackProcess:
    env = {**TEST_RATE_LIMITS, **{f"LOCALBASE_REALTIME_{k.upper()}": str(v) for k, v in lowered.items()}}
    return StackProcess(root / "data", env=env)


@pytest.fixture
def started(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StackProcess]:
    proc = quota_stack(tmp_path, **request.param)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def lowered(**settings: int) -> Any:
    return pytest.mark.parametrize("started", [settings], indirect=True, ids=[",".join(settings)])


async def system_and_close(sock: RawSocket, topic: str) -> str:
    system = await sock.next(lambda f: f["event"] == "system" and f["topic"] == topic)
    assert system["payload"]["status"] == "error" and system["payload"]["channel"] == topic.removeprefix("realtime:")
    await sock.next(lambda f: f["event"] == "phx_close" and f["topic"] == topic)
    return str(system["payload"]["message"])


@lowered(max_channels_per_client=3)
async def test_channels_per_socket_through_the_official_client(started: StackProcess) -> None:
    sb = await client(started)
    states: list[list[tuple[RealtimeSubscribeStates, Exception | None]]] = []
    for name in ("one", "two", "three", "four"):
        seen: list[tuple[RealtimeSubscribeStates, Exception | None]] = []
        await sb.channel(name).subscribe(lambda s, e, seen=seen: seen.append((s, e)))
        states.append(seen)
    assert [seen[0][0] for seen in states[:3]] == [RealtimeSubscribeStates.SUBSCRIBED] * 3
    assert states[3][0][0] == RealtimeSubscribeStates.CHANNEL_ERROR
    assert quotas.CHANNELS_REASON in str(states[3][0][1])


@lowered(max_concurrent_users=2)
async def test_concurrent_users(started: StackProcess) -> None:
    first, second = await RawSocket.open(started), await RawSocket.open(started)
    waiting = await RawSocket.open(started)  # connected, not yet a user: it has no channel
    try:
        assert (await first.join("realtime:a"))["status"] == "ok"
        assert (await second.join("realtime:b"))["status"] == "ok"
        assert (await first.join("realtime:a2"))["status"] == "ok", "a counted socket may join more"
        assert await waiting.join("realtime:c") == {"status": "error", "response": {"reason": quotas.JOIN_USERS_REASON}}
        with pytest.raises(InvalidStatus) as refused:
            await RawSocket.open(started)
        assert refused.value.response.status_code == 429
        assert json.loads(refused.value.response.body or b"{}") == {"error": "Too many connected users"}
        await first.close()  # a user leaves: a place is free again once the server has seen the socket go
        deadline = time.monotonic() + 30
        while (reply := await waiting.join("realtime:c"))["status"] != "ok" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert reply["status"] == "ok"
    finally:
        for sock in (first, second, waiting):
            await sock.close()


@lowered(max_joins_per_second=2)
async def test_a_join_flood_is_refused_and_its_socket_closed(started: StackProcess) -> None:
    sock = await RawSocket.open(started)
    replies = []
    try:
        for i in range(200):
            ref = await sock.send(f"realtime:flood-{i}", "phx_join", {"config": {}})
            replies.append(await sock.reply(ref))
            if replies[-1]["status"] == "error":
                break
    except ConnectionClosed:
        pass
    assert replies[-1] == {"status": "error", "response": {"reason": quotas.JOIN_RATE_REASON}}
    # 2 joins/s averaged over 5 s ticks: the 11th join of a tick is over (later only when the flood spans ticks, as
    # on a slow runner: no upper bound, that would be a timing assertion)
    assert len(replies) - 1 >= 10
    with pytest.raises(ConnectionClosed):
        await sock.next(lambda f: False, timeout=10)
    with pytest.raises(InvalidStatus) as refused:
        await RawSocket.open(started)
    assert refused.value.response.status_code == 429
    assert json.loads(refused.value.response.body or b"{}") == {"error": "Too many joins per second"}


@lowered(max_events_per_second=2)
async def test_a_broadcast_flood_closes_the_channel(started: StackProcess) -> None:
    """Each relayed broadcast counts twice, as on Supabase: sent, and delivered to the listener. The delivery that
    reaches the rate closes the listener's channel after its message; the next send closes the sender's."""
    sender, listener = await RawSocket.open(started), await RawSocket.open(started)
    try:
        assert (await listener.join("realtime:room"))["status"] == "ok"
        assert (await sender.join("realtime:room", {"broadcast": {"ack": True}}))["status"] == "ok"
        acked = 0
        for i in range(200):
            ref = await sender.send(
                "realtime:room", "broadcast", {"type": "broadcast", "event": "e", "payload": {"i": i}}
            )
            frame = await sender.next(lambda f, ref=ref: f["ref"] == ref or f["event"] == "system")
            if frame["event"] == "system":
                sender.frames.insert(0, frame)
                break
            acked += 1
        # 2 events/s averaged over 5 s ticks, 10 a tick: 5 broadcasts sent and delivered (more only when the flood
        # spans ticks, as on a slow runner: no upper bound, that would be a timing assertion)
        assert acked >= 5
        assert await system_and_close(sender, "realtime:room") == quotas.EVENTS_MESSAGE
        assert await system_and_close(listener, "realtime:room") == quotas.EVENTS_MESSAGE, "deliveries count too"
        relayed = [f["payload"]["payload"]["i"] for f in listener.frames if f["event"] == "broadcast"]
        assert relayed == list(range(len(relayed))) and 5 <= len(relayed) <= acked
        assert not [f for f in listener.frames if f["event"] == "broadcast" and f["payload"]["payload"]["i"] >= acked]
    finally:
        await sender.close()
        await listener.close()


@lowered(max_events_per_second=2)
async def test_rest_broadcast_deliveries_count_and_close_their_receivers(started: StackProcess) -> None:
    """One REST broadcast to nine listeners is 1 + 9 events, a whole 5 s tick at 2/s: each listener gets the
    message, then "Too many messages per second" and its channel closed (Supabase's `:update_rate_counter`)."""
    listeners = [await RawSocket.open(started) for _ in range(9)]
    try:
        for sock in listeners:
            assert (await sock.join("realtime:hall"))["status"] == "ok"
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(
                f"{started.api_url}/realtime/v1/api/broadcast/hall/events/e",
                headers={"apikey": started.anon_key},
                json={"i": 0},
            )
        assert answer.status_code == 202
        for sock in listeners:
            await sock.next(lambda f: f["event"] == "broadcast" and f["topic"] == "realtime:hall")
            assert await system_and_close(sock, "realtime:hall") == quotas.EVENTS_MESSAGE
    finally:
        for sock in listeners:
            await sock.close()


@lowered(client_presence_max_calls=5)
async def test_presence_messages_per_channel_and_oversized_tracks(started: StackProcess) -> None:
    sock = await RawSocket.open(started, max_size=None)
    try:
        assert (await sock.join("realtime:lobby", {"presence": {"key": "me"}}))["status"] == "ok"
        for i in range(5):
            ref = await sock.send(
                "realtime:lobby", "presence", {"type": "presence", "event": "track", "payload": {"i": i}}
            )
            assert (await sock.reply(ref))["status"] == "ok"
        await sock.send("realtime:lobby", "presence", {"type": "presence", "event": "track", "payload": {"i": 5}})
        assert await system_and_close(sock, "realtime:lobby") == quotas.CLIENT_PRESENCE_MESSAGE
        assert (await sock.join("realtime:big", {"presence": {"key": "me"}}))["status"] == "ok"
        blob = {"blob": "z" * 300_000}
        await sock.send("realtime:big", "presence", {"type": "presence", "event": "track", "payload": blob})
        assert await system_and_close(sock, "realtime:big") == quotas.TRACK_SIZE_MESSAGE
    finally:
        await sock.close()


@lowered(client_presence_max_calls=3)
async def test_presence_over_the_window_through_the_official_client(started: StackProcess) -> None:
    sb = await client(started)
    channel = sb.channel("desk", {"config": {"presence": {"key": "agent-1"}}})
    states: list[tuple[RealtimeSubscribeStates, Exception | None]] = []
    await channel.subscribe(lambda s, e: states.append((s, e)))
    assert states == [(RealtimeSubscribeStates.SUBSCRIBED, None)]
    for i in range(4):
        await channel.track({"status": f"away {i}"})
    await wait_until(lambda: len(states) > 1, what="the channel's error")
    assert states[1][0] == RealtimeSubscribeStates.CHANNEL_ERROR
    assert quotas.CLIENT_PRESENCE_MESSAGE in str(states[1][1])


def test_rates_average_as_supabase_and_refuse_a_burst_in_its_first_tick() -> None:
    now = [0.0]
    counter = RateCounter(100, clock=lambda: now[0])
    counter.add(499)
    assert not counter.over()
    counter.add()
    assert counter.over(), "500 in the tick under way: Supabase's next tick averages 100/s"
    now[0] = 5.0  # Supabase: bucket [500], 100/s, over
    assert counter.over()
    now[0] = 10.0  # [0, 500]: 50/s
    assert not counter.over()
    counter.add(100 * 5 * 12)
    assert counter.over()
    now[0] = 10.0 + 5 * 13  # a minute of nothing later: all ticks are zero
    assert counter.average() == 0.0


def test_settings_come_from_the_environment_and_bad_values_are_refused() -> None:
    assert QuotaSettings.from_env({}) == QuotaSettings()
    assert QuotaSettings() == QuotaSettings(200, 100, 100, 100, 1000, 5, 30_000), "Supabase's defaults"
    assert QuotaSettings.from_env({"LOCALBASE_REALTIME_MAX_CHANNELS_PER_CLIENT": "3"}).max_channels_per_client == 3
    for bad in ("0", "-1", "many"):
        with pytest.raises(ValueError, match="LOCALBASE_REALTIME_MAX_JOINS_PER_SECOND must be a positive integer"):
            QuotaSettings.from_env({"LOCALBASE_REALTIME_MAX_JOINS_PER_SECOND": bad})


TENTH_OF_SUPABASE = {  # Supabase's defaults divided by ten (the presence window: one message, the app sends none)
    "max_concurrent_users": 20,
    "max_joins_per_second": 10,
    "max_channels_per_client": 10,
    "max_events_per_second": 10,
    "max_presence_events_per_second": 100,
    "client_presence_max_calls": 1,
}


@lowered(**TENTH_OF_SUPABASE)
async def test_the_apps_own_realtime_use_fits_a_tenth_of_supabases_quotas(
    started: StackProcess, tmp_path: Path
) -> None:
    """A guard, not a bug: an agent with five tickets open in two tabs each, their customer on one, typing and a
    live message, on a stack whose quotas are a tenth of a Supabase project's, and nothing is refused."""
    agent, customer = create_user(started.db_url, "agent"), create_user(started.db_url, "customer")
    tickets = [seed_ticket(started.db_url, customer, agent, f"Quota {i}") for i in range(5)]
    async with open_engines(started, tmp_path) as engines:
        agent_engine = await engines.open(agent)
        customer_engine = await engines.open(customer)
        for engine in (agent_engine, customer_engine):
            await engine.start()
            await wait_for(lambda engine=engine: engine.status.state == "online", what="the engine online")
        for tid in tickets * 2:
            await agent_engine.presence.watch(tid)
        await customer_engine.presence.watch(tickets[0])
        await customer_engine.presence.send_typing(tickets[0])
        await wait_for(
            lambda: any(isinstance(e, events.Typing) and e.user_id == customer.id for e in engines.log(agent_engine)),
            what="the customer typing",
        )
        mid = str(
            as_user(
                started.db_url,
                customer,
                "insert into messages (ticket_id, sender_id, content) values (%s, %s, 'live') returning id",
                (tickets[0], customer.id),
            )[0][0]
        )
        await wait_for(lambda: agent_engine.cache.message(mid) is not None, timeout=10, what="the live message")
        watched = agent_engine.remote.live._watched  # the agent's ticket channels, as the engine holds them
        assert sorted(watched) == sorted(tickets) and all(channel.is_joined for channel in watched.values())
        assert agent_engine.status.state == customer_engine.status.state == "online"


@lowered(max_presence_events_per_second=2)
async def test_presence_states_and_diffs_count_as_presence_events(started: StackProcess) -> None:
    """2 presence events/s, 10 a tick: four joins with presence (each gets a presence_state: 4), the first track
    (1) and its diff to the four (4), the second track (1) and its four diffs (4): the third track is over. Tracks
    alone, all Supabase counted before, would allow ten."""
    socks = [await RawSocket.open(started) for _ in range(4)]
    try:
        for i, sock in enumerate(socks):
            assert (await sock.join("realtime:lobby", {"presence": {"key": f"k{i}", "enabled": True}}))[
                "status"
            ] == "ok"
            await sock.next(lambda f: f["event"] == "presence_state")
        refused_at = None
        for i, sock in enumerate(socks):
            ref = await sock.send("realtime:lobby", "presence", {"type": "presence", "event": "track", "payload": {}})
            frame = await sock.next(lambda f, ref=ref: f["ref"] == ref or f["event"] == "system")
            if frame["event"] == "system":
                sock.frames.insert(0, frame)
                assert await system_and_close(sock, "realtime:lobby") == quotas.PRESENCE_RATE_MESSAGE
                refused_at = i
                break
        # the third on one tick; later only when the joins and tracks span ticks (no upper bound: a timing assertion)
        assert refused_at is not None and refused_at >= 2
    finally:
        for sock in socks:
            await sock.close()


@lowered(max_events_per_second=2)
async def test_postgres_changes_over_the_rate_are_dropped_not_closed(started: StackProcess, tmp_path: Path) -> None:
    """postgres_changes count on their own counter with the events limit (Supabase's `db_events`): 10 a tick at
    2/s. Past them the capture drops the changes (logged, as Supabase's poller skips them); the channel stays."""
    customer = create_user(started.db_url, "customer")
    sock = await RawSocket.open(started)
    log_file = tmp_path / "data-stack.log"
    try:
        binding = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "tickets"}]}
        assert (await sock.join("realtime:mine", binding, token=started.mint(sub=customer.id)))["status"] == "ok"
        await sock.next(lambda f: f["event"] == "system")
        received: list[str] = []
        dropped = None
        for i in range(200):
            ticket = new_ticket(started.db_url, customer, subject=f"rate {i}")
            deadline = time.monotonic() + 30
            while dropped is None and ticket not in received:
                assert time.monotonic() < deadline, "neither delivered nor dropped"
                try:
                    frame = await sock.next(lambda f: f["event"] == "postgres_changes", timeout=0.2)
                    received.append(frame["payload"]["data"]["record"]["id"])
                except (AssertionError, TimeoutError):
                    if quotas.DB_EVENTS_LOG in log_file.read_text():
                        dropped = ticket
            if dropped is not None:
                break
        assert dropped is not None and len(received) >= 10  # more only when the inserts span ticks
        ref = await sock.send("phoenix", "heartbeat", {})
        await sock.reply(ref)  # after anything sent before it: the dropped change never comes
        assert dropped not in [f["payload"]["data"]["record"]["id"] for f in sock.frames if "data" in f["payload"]]
        assert not [f for f in sock.frames if f["event"] in ("system", "phx_close")], "the channel is not closed"
    finally:
        await sock.close()


@lowered(max_events_per_second=2)
async def test_rest_broadcasts_count_as_events(started: StackProcess) -> None:
    base = f"{started.api_url}/realtime/v1/api/broadcast"
    headers = {"apikey": started.anon_key}
    async with httpx.AsyncClient(timeout=30) as http:
        three = {"messages": [{"topic": "room", "event": "e", "payload": {"i": i}} for i in range(3)]}
        refused = await http.post(base, headers=headers, json=three)
        assert refused.status_code == 429 and refused.json()["message"] == quotas.REST_BATCH_MESSAGE
        assert (await http.post(base, headers=headers, json={"messages": three["messages"][:2]})).status_code == 202
        answers = []
        for i in range(40):
            answers.append(await http.post(f"{base}/room/events/e", headers=headers, json={"i": i}))
            if answers[-1].status_code != 202:
                break
    assert answers[-1].status_code == 429 and answers[-1].json()["message"] == quotas.REST_RATE_MESSAGE
    assert 8 <= len(answers) - 1 <= 18, "2 events/s over 5 s ticks: 10 a tick (20 over two), the batch's 2 among them"


async def test_the_suites_stack_keeps_supabases_presence_window(stack: StackProcess) -> None:
    """The suite's own stack (tests/stackproc.py) raises the tenant-wide rates, not the presence messages per channel:
    a sixth presence message on one channel within 30 s is refused as on a Supabase project with its defaults. Only
    the bench whose baseline tracks 40 times on one channel raises it, on its own stack."""
    assert "LOCALBASE_REALTIME_CLIENT_PRESENCE_MAX_CALLS" not in TEST_RATE_LIMITS
    assert stack_settings(["realtime_latency_100", "realtime_typing_fanout_100"]) == {}
    raised = stack_settings(["realtime_presence_fanout_100"])
    assert raised == {"LOCALBASE_REALTIME_CLIENT_PRESENCE_MAX_CALLS": "100000"}
    sock = await RawSocket.open(stack)
    try:
        topic = f"realtime:window-{time.time_ns()}"
        assert (await sock.join(topic, {"presence": {"key": "me"}}))["status"] == "ok"
        for i in range(5):
            ref = await sock.send(topic, "presence", {"type": "presence", "event": "track", "payload": {"i": i}})
            assert (await sock.reply(ref))["status"] == "ok"
        await sock.send(topic, "presence", {"type": "presence", "event": "track", "payload": {"i": 5}})
        assert await system_and_close(sock, topic) == quotas.CLIENT_PRESENCE_MESSAGE
    finally:
        await sock.close()
