"""Presence and typing on a ticket, tried as an attacker would (issue 10): with the anon key alone, or as
a signed-in user who is not on the ticket, or as its own customer pretending to be the agent, nobody
sees who views a ticket, appears as its assigned agent, or makes anyone appear to type, whether over
the websocket (public or private topic) or through POST /realtime/v1/api/broadcast.

The app's ticket channels are private (RLS on realtime.messages) and only the database sends on them
(rpc ticket_signal), so each test checks the real app's engines see only genuine signals.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sync import SyncEngine, events
from tests.conftest import Users
from tests.realtime.support import RawSocket
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, wait_for

pytestmark = pytest.mark.timeout(120)


async def started(engine: SyncEngine) -> SyncEngine:
    await engine.start()
    await wait_for(lambda: engine.status.state == "online", what="the engine online")
    return engine


def viewers_seen(engines: EngineFactory, engine: SyncEngine) -> set[str]:
    return {name for e in engines.log(engine) if isinstance(e, events.PresenceChanged) for name in e.viewers}


async def spies(
    stack: StackProcess, tid: str, token: str | None = None, key: str = ""
) -> tuple[list[RawSocket], list[dict[str, object]]]:
    """One socket on the public and one on the private `ticket:<id>` topic, presence on."""
    sockets, replies = [], []
    for private in (False, True):
        sock = await RawSocket.open(stack)
        replies.append(
            await sock.join(
                f"realtime:ticket:{tid}",
                {"private": private, "broadcast": {"self": False}, "presence": {"key": key, "enabled": True}},
                token=token,
            )
        )
        sockets.append(sock)
    return sockets, replies


async def settle(sock: RawSocket) -> None:
    """Everything the server queued for this socket before now has arrived (frames come in order)."""
    ref = await sock.send("phoenix", "heartbeat", {})
    await sock.reply(ref)


async def test_nobody_off_the_ticket_sees_who_views_it(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Who is looking")
    anon_socks, _ = await spies(stack, tid)
    outsider_socks, outsider_replies = await spies(stack, tid, token=stack.mint(users.customer2.id))
    assert outsider_replies[1]["status"] == "error"  # another customer may not join the private topic
    try:
        customer = await started(await engines.open(users.customer))
        agent = await started(await engines.open(users.agent))
        await customer.presence.watch(tid)
        await agent.presence.watch(tid)
        await wait_for(lambda: users.customer.name in viewers_seen(engines, agent), what="the agent seeing them")
        for sock in anon_socks + outsider_socks:
            await settle(sock)
            leaked = [
                f
                for f in sock.frames
                if f["event"] in ("presence_diff", "broadcast") or (f["event"] == "presence_state" and f["payload"])
            ]
            assert not leaked, leaked
    finally:
        for sock in anon_socks + outsider_socks:
            await sock.close()


async def test_nobody_can_appear_as_the_assigned_agent(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Is my agent here")
    forged = {"user_id": users.agent.id, "name": users.agent.name, "role": "agent"}
    anon_socks, _ = await spies(stack, tid, key=users.agent.id)
    # the ticket's own customer, on the private topic it may join, claiming to be the agent
    mine, replies = await spies(stack, tid, token=stack.mint(users.customer.id), key=users.agent.id)
    assert replies[1]["status"] == "ok"
    try:
        for sock in anon_socks + mine:
            ref = await sock.send(f"realtime:ticket:{tid}", "presence", {"event": "track", "payload": forged})
            await sock.reply(ref)
        customer = await started(await engines.open(users.customer))
        admin = await started(await engines.open(users.admin))
        await customer.presence.watch(tid)
        await admin.presence.watch(tid)
        await wait_for(lambda: users.admin.name in viewers_seen(engines, customer), what="the admin viewing")
        assert users.agent.name not in viewers_seen(engines, customer)
        assert users.agent.name not in viewers_seen(engines, admin)
    finally:
        for sock in anon_socks + mine:
            await sock.close()


async def test_nobody_can_type_as_someone_else(stack: StackProcess, users: Users, engines: EngineFactory) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Who is typing")
    forged = {"user_id": users.agent.id, "name": users.agent.name, "role": "agent"}
    customer = await started(await engines.open(users.customer))
    admin = await started(await engines.open(users.admin))
    await customer.presence.watch(tid)
    await admin.presence.watch(tid)
    await wait_for(lambda: users.admin.name in viewers_seen(engines, customer), what="both watching")
    anon_socks, _ = await spies(stack, tid)
    mine, _ = await spies(stack, tid, token=stack.mint(users.customer.id))
    try:
        for sock in anon_socks + mine:
            await sock.send(
                f"realtime:ticket:{tid}", "broadcast", {"type": "broadcast", "event": "typing", "payload": forged}
            )
            await settle(sock)
        base = f"{stack.api_url}/realtime/v1/api/broadcast"
        async with httpx.AsyncClient() as http:
            for headers in (
                {"apikey": stack.anon_key},
                {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.mint(users.customer.id)}"},
            ):
                for private in (False, True):
                    r = await http.post(
                        base,
                        headers=headers,
                        json={
                            "messages": [
                                {"topic": f"ticket:{tid}", "event": "typing", "payload": forged, "private": private}
                            ]
                        },
                    )
                    assert r.status_code == 202
                    r = await http.post(
                        f"{base}/ticket:{tid}/events/typing?private={str(private).lower()}",
                        headers=headers,
                        json=forged,
                    )
                    assert r.status_code == (403 if private else 202)
        # a genuine signal after all the forged ones: once it is there, the forged ones had their chance
        await admin.presence.send_typing(tid)
        await wait_for(
            lambda: any(isinstance(e, events.Typing) and e.user_id == users.admin.id for e in engines.log(customer)),
            what="the admin typing",
        )
        await asyncio.sleep(0)
        assert not [e for e in engines.log(customer) if isinstance(e, events.Typing) and e.user_id != users.admin.id]
    finally:
        for sock in anon_socks + mine:
            await sock.close()
