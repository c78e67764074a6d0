"""Tokens on realtime channels: join with anon/user/forged/expired tokens, `access_token` re-keying, expiry."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from realtime import AsyncRealtimeChannel, RealtimeAcknowledgementStatus

from tests.conftest import Users
from tests.realtime.support import RawSocket, listen, new_ticket, post, wait_until, with_token
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(60)


async def processed(channel: AsyncRealtimeChannel) -> None:
    """Wait until the server handled everything this socket sent before (frames are handled in order)."""
    done = asyncio.Event()
    push = await channel.push("presence", {"event": "untrack", "payload": {}})
    push.receive(RealtimeAcknowledgementStatus.Ok, lambda *_: done.set())
    await asyncio.wait_for(done.wait(), 5)


async def test_access_token_rekeys_the_channel_claims(stack: StackProcess, users: Users) -> None:
    mine = new_ticket(stack.db_url, users.customer, users.agent)
    theirs = new_ticket(stack.db_url, users.customer2, users.agent)
    sb = await with_token(stack, stack.mint(sub=users.customer.id))
    got = await listen(sb, "rekey", {"event": "INSERT", "table": "messages"})
    # changes are captured in commit order: once "mine before" arrived, "theirs before" (committed first) was
    # already judged under customer's claims, so re-keying below cannot race it into customer2's view
    post(stack.db_url, users.customer2, theirs, "theirs before")
    post(stack.db_url, users.customer, mine, "mine before")
    await got.wait_content("mine before")
    # from now on the channel's RLS checks run as customer2
    await sb.realtime.set_auth(stack.mint(sub=users.customer2.id))
    assert got.channel is not None
    await processed(got.channel)
    post(stack.db_url, users.customer, mine, "mine after")
    post(stack.db_url, users.customer2, theirs, "theirs after")
    await got.wait_content("theirs after")
    assert got.contents() == ["mine before", "theirs after"]


async def test_channel_closes_when_its_token_expires(stack: StackProcess, users: Users) -> None:
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    sb = await with_token(stack, stack.mint(sub=users.customer.id, ttl=2))
    got = await listen(sb, "expiring", {"event": "INSERT", "table": "messages"})
    await wait_until(lambda: any(s.value == "CLOSED" for s, _ in got.states), timeout=6, what="channel closed")
    errors = [str(e) for s, e in got.states if s.value == "CHANNEL_ERROR"]
    assert errors and "expired" in errors[0]
    post(stack.db_url, users.agent, ticket, "after expiry")
    await asyncio.sleep(0.3)
    assert got.contents() == []


async def test_refreshed_token_keeps_the_channel_open(stack: StackProcess, users: Users) -> None:
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    sb = await with_token(stack, stack.mint(sub=users.customer.id, ttl=2))
    got = await listen(sb, "refreshed", {"event": "INSERT", "table": "messages", "filter": f"ticket_id=eq.{ticket}"})
    await sb.realtime.set_auth(stack.mint(sub=users.customer.id, ttl=3600))
    await asyncio.sleep(2.5)  # past the first token's expiry
    post(stack.db_url, users.agent, ticket, "still listening")
    await got.wait_content("still listening")
    assert [s.value for s, _ in got.states] == ["SUBSCRIBED"]


async def test_invalid_access_token_push_closes_the_channel(stack: StackProcess, users: Users) -> None:
    sb = await with_token(stack, stack.mint(sub=users.customer.id))
    got = await listen(sb, "forged-push", {"event": "INSERT", "table": "messages"})
    forged = jwt.encode(
        {"sub": users.admin.id, "role": "authenticated", "exp": int(time.time()) + 600},
        "not-the-secret-not-the-secret-not-the-secret",
        algorithm="HS256",
    )
    await sb.realtime.set_auth(forged)
    await wait_until(lambda: any(s.value == "CLOSED" for s, _ in got.states), what="channel closed")
    assert any("Invalid token" in str(e) for s, e in got.states if s.value == "CHANNEL_ERROR")


async def test_join_token_checks(stack: StackProcess, users: Users) -> None:
    sock = await RawSocket.open(stack)
    try:
        forged = jwt.encode({"sub": users.admin.id, "role": "service_role"}, "x" * 40, algorithm="HS256")
        reply = await sock.join("realtime:t-forged", token=forged)
        assert reply["status"] == "error" and "Invalid token" in reply["response"]["reason"]
        expired = stack.mint(sub=users.customer.id, ttl=-10)
        reply = await sock.join("realtime:t-expired", token=expired)
        assert reply["status"] == "error" and "expired" in reply["response"]["reason"]
        odd_role = stack.mint(sub=users.customer.id, role="postgres")
        reply = await sock.join("realtime:t-role", token=odd_role)
        assert reply["status"] == "error" and "not allowed" in reply["response"]["reason"]
        none_alg = jwt.encode({"role": "service_role"}, None, algorithm="none")  # type: ignore[arg-type]
        reply = await sock.join("realtime:t-none", token=none_alg)
        assert reply["status"] == "error"
    finally:
        await sock.close()


async def test_anon_key_sees_nothing_service_role_sees_all(stack: StackProcess, users: Users) -> None:
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    sock = await RawSocket.open(stack)
    try:
        binding = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "messages"}]}
        anon = await sock.join("realtime:anon", binding)  # no access_token: the socket's apikey (anon) is used
        service = await sock.join("realtime:service", binding, token=stack.service_role_key)
        assert anon["status"] == service["status"] == "ok"
        for topic in ("realtime:anon", "realtime:service"):
            await sock.next(lambda f, t=topic: f["event"] == "system" and f["topic"] == t)
        post(stack.db_url, users.customer, ticket, "first")
        post(stack.db_url, users.customer, ticket, "second")
        for text in ("first", "second"):
            frame = await sock.next(
                lambda f, t=text: (
                    f["event"] == "postgres_changes" and f["payload"]["data"]["record"].get("content") == t
                )
            )
            assert frame["topic"] == "realtime:service"
        # as on Supabase, anon (no SELECT on messages) gets walrus's 401 error per insert, never a value
        to_anon = [
            f["payload"]["data"]
            for f in sock.frames
            if f["topic"] == "realtime:anon" and f["event"] == "postgres_changes"
        ]
        assert all(d["errors"] == ["Error 401: Unauthorized"] and d["record"] == {} for d in to_anon)
    finally:
        await sock.close()
