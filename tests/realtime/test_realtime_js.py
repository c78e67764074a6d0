"""supabase-js 2.119 under Node 20 (vsn 2.0.0, `ws` transport) against the real localbase: postgres_changes
with RLS, broadcast and presence between two supabase-js clients, and a Python <-> JS round trip that
crosses the two serializers (vsn 1.0.0 JSON objects on one side, binary broadcast frames on the other).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from typing import Any

import pytest

from tests.conftest import Users
from tests.realtime.support import new_ticket, wait_until, with_token
from tests.stackproc import StackProcess
from tests.test_js_smoke import JS_DIR, node_ready

pytestmark = [pytest.mark.node, pytest.mark.timeout(120)]


def run_node(script: str, env: dict[str, str]) -> dict[str, Any]:
    node = node_ready()
    done = subprocess.run(
        [node, script], check=False, cwd=JS_DIR, env={**os.environ, **env}, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_js_postgres_changes_with_rls(stack: StackProcess, users: Users) -> None:
    ticket = new_ticket(stack.db_url, users.customer, users.agent, subject="JS realtime")
    ticket2 = new_ticket(stack.db_url, users.customer2, users.agent, subject="JS sentinel")
    seen = run_node(
        "realtime_changes.mjs",
        {
            "SUPABASE_URL": stack.api_url,
            "SUPABASE_ANON_KEY": stack.anon_key,
            "PASSWORD": users.customer.password,
            "CUSTOMER_EMAIL": users.customer.email,
            "CUSTOMER2_EMAIL": users.customer2.email,
            "AGENT_EMAIL": users.agent.email,
            "TICKET_ID": ticket,
            "TICKET2_ID": ticket2,
        },
    )
    assert seen["owner_contents"] == ["js: agent reply"]  # never the internal note before it
    assert seen["other_contents"] == ["js: sentinel"]  # nothing of the other customer's ticket
    assert (seen["event_type"], seen["schema"], seen["table"], seen["errors"]) == ("INSERT", "public", "messages", None)
    assert seen["received_id"] == seen["reply_id"] and seen["received_is_internal"] is False
    assert seen["commit_timestamp"].endswith("Z")
    # the row supabase-js built from `columns` + `record` equals the one REST returned
    assert seen["received_row"] == seen["rest_row"]


def test_js_broadcast_and_presence(stack: StackProcess, users: Users) -> None:
    seen = run_node(
        "realtime_broadcast.mjs",
        {
            "MODE": "js",
            "SUPABASE_URL": stack.api_url,
            "SUPABASE_ANON_KEY": stack.anon_key,
            "ACCESS_TOKEN": stack.mint(sub=users.customer.id),
        },
    )
    assert seen["ack"] == "ok" and seen["trackA"] == "ok" and seen["trackB"] == "ok"
    assert seen["seenA"] == [{"who": "alice", "text": "héllo ✓"}, {"who": "bob"}]  # self: true
    assert seen["seenB"] == [{"event": "typing", "payload": {"who": "alice", "text": "héllo ✓"}}]
    assert seen["metaAtB"]["viewing"] == "ticket-1" and seen["metaAtB"]["presence_ref"]


async def test_python_and_js_cross_serializer_round_trip(stack: StackProcess, users: Users) -> None:
    node = node_ready()
    topic = "cross-room"
    proc = await asyncio.create_subprocess_exec(
        node,
        "realtime_broadcast.mjs",
        cwd=JS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "MODE": "cross",
            "CROSS_TOPIC": topic,
            "SUPABASE_URL": stack.api_url,
            "SUPABASE_ANON_KEY": stack.anon_key,
            "ACCESS_TOKEN": stack.mint(sub=users.agent.id),
        },
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert ready == {"ready": True, "tracked": "ok"}
        sb = await with_token(stack, stack.mint(sub=users.customer.id))
        pongs: list[dict[str, Any]] = []
        channel = sb.channel(
            topic,
            {
                "config": {
                    "broadcast": {"ack": False, "self": False},  # type: ignore[arg-type]
                    "presence": {"key": "py", "enabled": True},
                    "private": False,
                }
            },
        )
        channel.on_broadcast("pong", pongs.append)
        channel.on_presence_sync(lambda: None)
        await channel.subscribe()
        await wait_until(lambda: "js" in channel.presence_state(), what="js presence at python")
        assert channel.presence_state()["js"][0]["lang"] == "js"
        await channel.track({"lang": "py"})
        await channel.send_broadcast("ping", {"n": 42, "text": "ünïcode"})
        await wait_until(lambda: bool(pongs), timeout=15, what="pong from js")
        assert pongs[0]["payload"] == {"echo": {"n": 42, "text": "ünïcode"}, "from": "js"}
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        final = json.loads(out.decode().strip().splitlines()[-1])
        assert final["pings"] == [{"n": 42, "text": "ünïcode"}] and final["sent"] == "ok"
        assert final["py_meta"]["lang"] == "py"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_js_private_ticket_channel(stack: StackProcess, users: Users) -> None:
    """supabase-js as the app's peers: anon refused, the database-minted signal names its sender, a forged
    client broadcast on the private topic goes nowhere."""
    ticket = new_ticket(stack.db_url, users.customer, users.agent, subject="JS private")
    seen = run_node(
        "realtime_private.mjs",
        {
            "SUPABASE_URL": stack.api_url,
            "SUPABASE_ANON_KEY": stack.anon_key,
            "TICKET_ID": ticket,
            "CUSTOMER_TOKEN": stack.mint(sub=users.customer.id),
            "AGENT_TOKEN": stack.mint(sub=users.agent.id),
        },
    )
    assert seen["anonStatus"].startswith("CHANNEL_ERROR") and "Unauthorized" in seen["anonStatus"]
    assert seen["customerStatus"] == seen["agentStatus"] == "SUBSCRIBED" and seen["rpcError"] is None
    assert [(m["event"], m["payload"]["user_id"], m["payload"]["name"]) for m in seen["customerSeen"]] == [
        ("typing", users.agent.id, users.agent.name)
    ]
    # the forged broadcast reached nobody; the agent hears its own signal (the database sent it, not the agent)
    assert [m["payload"]["user_id"] for m in seen["agentSeen"]] in ([], [users.agent.id]) and seen["anonSeen"] == []
