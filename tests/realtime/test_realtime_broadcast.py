"""Broadcast and presence through realtime-py (vsn 1.0.0), and the REST broadcast endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from realtime import RealtimeAcknowledgementStatus

from tests.conftest import Users
from tests.realtime.support import RawSocket, drain, stalled_socket, wait_until, with_token
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(60)


def config(*, self_: bool = False, ack: bool = False, key: str = "", presence: bool = False) -> dict[str, Any]:
    return {
        "config": {
            "broadcast": {"ack": ack, "self": self_},
            "presence": {"key": key, "enabled": presence},
            "private": False,
        }
    }


async def test_broadcast_round_trip_self_and_ack(stack: StackProcess, users: Users) -> None:
    alice = await with_token(stack, stack.mint(sub=users.customer.id))
    bob = await with_token(stack, stack.mint(sub=users.agent.id))
    seen_a: list[dict[str, Any]] = []
    seen_b: list[dict[str, Any]] = []
    ch_a = alice.channel("bc-room", config(self_=True, ack=True))  # type: ignore[arg-type]
    ch_a.on_broadcast("typing", seen_a.append)
    await ch_a.subscribe()
    ch_b = bob.channel("bc-room", config())  # type: ignore[arg-type]
    ch_b.on_broadcast("*", seen_b.append)
    await ch_b.subscribe()

    acked = asyncio.Event()
    push = await ch_a.push("broadcast", {"type": "broadcast", "event": "typing", "payload": {"who": "alice"}})
    push.receive(RealtimeAcknowledgementStatus.Ok, lambda *_: acked.set())
    await asyncio.wait_for(acked.wait(), 5)
    await ch_b.send_broadcast("typing", {"who": "bob"})
    await wait_until(lambda: len(seen_a) == 2 and len(seen_b) == 1, what="broadcasts")
    # self: alice hears herself; bob (self false) hears only alice
    assert [m["payload"] for m in seen_a] == [{"who": "alice"}, {"who": "bob"}]
    assert seen_b[0]["event"] == "typing" and seen_b[0]["payload"] == {"who": "alice"}


async def test_presence_track_untrack_and_state(stack: StackProcess, users: Users) -> None:
    alice = await with_token(stack, stack.mint(sub=users.customer.id))
    bob = await with_token(stack, stack.mint(sub=users.agent.id))
    ch_a = alice.channel("pr-room", config(key="alice", presence=True))  # type: ignore[arg-type]
    ch_a.on_presence_sync(lambda: None)
    await ch_a.subscribe()
    await ch_a.track({"viewing": "ticket-1"})

    joins: list[str] = []
    leaves: list[str] = []
    ch_b = bob.channel("pr-room", config(key="bob", presence=True))  # type: ignore[arg-type]
    ch_b.on_presence_join(lambda key, cur, new: joins.append(key))
    ch_b.on_presence_leave(lambda key, cur, left: leaves.append(key))
    await ch_b.subscribe()
    # the state pushed on join already holds alice, with her meta and a phx_ref turned presence_ref
    await wait_until(lambda: "alice" in ch_b.presence_state(), what="presence_state")
    (meta,) = ch_b.presence_state()["alice"]
    assert meta["viewing"] == "ticket-1" and meta["presence_ref"]
    await ch_b.track({"typing": True})
    await wait_until(lambda: "bob" in ch_a.presence_state(), what="bob at alice")
    assert ch_a.presence_state()["bob"][0]["typing"] is True
    await ch_a.untrack()
    await wait_until(lambda: "alice" in leaves, what="alice leaves")
    assert "alice" not in ch_b.presence_state()
    # leaving the channel untracks too
    await ch_b.unsubscribe()
    await wait_until(lambda: "bob" not in ch_a.presence_state(), what="bob gone")


async def test_rest_broadcast_batch_and_single(stack: StackProcess, users: Users) -> None:
    sb = await with_token(stack, stack.mint(sub=users.customer.id))
    seen: list[dict[str, Any]] = []
    ch = sb.channel("rest-room", config())  # type: ignore[arg-type]
    ch.on_broadcast("*", seen.append)
    await ch.subscribe()
    base = f"{stack.api_url}/realtime/v1/api/broadcast"
    headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.anon_key}"}
    async with httpx.AsyncClient() as http:
        res = await http.post(
            base, headers=headers, json={"messages": [{"topic": "rest-room", "event": "note", "payload": {"n": 1}}]}
        )
        assert res.status_code == 202
        await ch.http_send("note", {"n": 2})  # realtime-py's per-event endpoint
        # no apikey, a forged one, bad bodies: clear errors, nothing delivered
        assert (await http.post(base, json={"messages": []})).status_code == 401
        bad_key = {"apikey": "nope"}
        assert (await http.post(base, headers=bad_key, json={"messages": []})).status_code == 401
        assert (await http.post(base, headers=headers, content=b"{")).status_code == 400
        assert (await http.post(base, headers=headers, json={"messages": [{"topic": 1}]})).status_code == 400
        huge = {"messages": [{"topic": "rest-room", "event": "x", "payload": {"blob": "x" * 300_000}}]}
        assert (await http.post(base, headers=headers, json=huge)).status_code == 413
    await wait_until(lambda: len(seen) == 2, what="REST broadcasts")
    assert [m["payload"] for m in seen] == [{"n": 1}, {"n": 2}]
    await asyncio.sleep(0.2)
    assert len(seen) == 2


async def test_slow_client_is_dropped_without_stalling_others(stack: StackProcess) -> None:
    """A socket that never reads fills its bounded queue and is closed; a healthy one gets everything."""
    slow = stalled_socket(stack, "realtime:flood")
    healthy = await RawSocket.open(stack, max_size=None)
    try:
        assert (await healthy.join("realtime:flood"))["status"] == "ok"
        headers = {"apikey": stack.anon_key}
        blob = "y" * 200_000
        async with httpx.AsyncClient() as http:
            for batch in range(40):  # 32 MB: more than the 8 MiB queue plus what kernel and client buffer
                messages = [
                    {"topic": "flood", "event": "blob", "payload": {"i": batch * 4 + i, "blob": blob}} for i in range(4)
                ]
                res = await http.post(
                    f"{stack.api_url}/realtime/v1/api/broadcast", headers=headers, json={"messages": messages}
                )
                assert res.status_code == 202
                for i in range(4):  # the healthy socket keeps up
                    frame = await healthy.next(lambda f: f["event"] == "broadcast", timeout=10)
                    assert frame["payload"]["payload"]["i"] == batch * 4 + i
        # the stalled socket was dropped once its bounded queue filled: far less than the 32 MB arrived, then EOF
        received, closed = drain(slow)
        assert closed and received < 16 * 1024 * 1024
    finally:
        slow.close()
        await healthy.close()
