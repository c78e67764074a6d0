"""Issue 16: messages keep the order their author wrote them in, for every reader and every client.

Five replies written offline leave the outbox in one request (one transaction); the customer must read
them in that order through supabase-py's ``order("created_at")``, through supabase-js, and in the sync
engine's cache, and the inbox preview must show the last one. Before the fix the server stamped all of
them with the transaction's ``now()`` and readers ordered the tie by random ids.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from supabase import Client, ClientOptions, create_client

from tests.conftest import Users
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, sql

JS_DIR = Path(__file__).parent / "js"
REPLIES = [f"offline reply {i}" for i in range(1, 6)]


@contextmanager
def signed_in(stack: StackProcess, email: str, password: str) -> Iterator[Client]:
    """A supabase-py client signed in as a user; one httpx client of ours, closed afterwards."""
    with httpx.Client(timeout=30) as http:
        client = create_client(
            stack.api_url,
            stack.anon_key,
            ClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http),
        )
        client.auth.sign_in_with_password({"email": email, "password": password})
        yield client


async def _flush_five_offline_replies(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy, subject: str
) -> str:
    tid = seed_ticket(
        stack.db_url, users.customer, users.agent, subject, messages=[(users.customer, "the printer is on fire")]
    )
    agent = await engines.open(users.agent, url=proxy.url)
    await agent.sync_once()
    proxy.set_mode("drop")
    for text in REPLIES:
        agent.commands.send_message(tid, text)
    # the agent's own cache shows them in the order written while they wait
    assert [m.content for m in agent.cache.thread(tid)][-5:] == REPLIES
    proxy.set_mode("pass")
    assert await agent.push() == 5  # one flush: max_batch is far above five, so one request
    await agent.sync_once()
    assert [m.content for m in agent.cache.thread(tid)][-5:] == REPLIES
    own = [t for t in agent.cache.inbox("mine", limit=5000) if t.id == tid]
    assert own[0].last_message_preview == REPLIES[-1]
    return tid


async def test_five_replies_in_one_flush_keep_their_order(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = await _flush_five_offline_replies(stack, users, engines, proxy, "Order through supabase-py")
    stamps = sql(
        stack.db_url,
        "select content, created_at from messages where ticket_id = %s and content like"
        " 'offline reply %%' order by created_at",
        tid,
    )
    assert [c for c, _ in stamps] == REPLIES
    assert len({ts for _, ts in stamps}) == 5, "each message of a batch has its own created_at"

    with signed_in(stack, users.customer.email, users.customer.password) as client:
        rows = client.table("messages").select("content, created_at").eq("ticket_id", tid).order("created_at").execute()
    assert [r["content"] for r in rows.data] == ["the printer is on fire", *REPLIES]

    customer = await engines.open(users.customer)
    await customer.sync_once()
    assert [m.content for m in customer.cache.thread(tid)] == ["the printer is on fire", *REPLIES]
    ticket = customer.cache.ticket(tid)
    assert ticket is not None and ticket.last_message_preview == REPLIES[-1]


def test_distinct_created_at_within_one_insert(stack: StackProcess, users: Users) -> None:
    """Many rows of one statement (a macro, an import): strictly increasing in array order."""
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Bulk insert")
    texts = [f"line {i:03d}" for i in range(200)]
    with signed_in(stack, users.agent.email, users.agent.password) as client:
        client.table("messages").insert([{"ticket_id": tid, "content": t} for t in texts]).execute()
    rows = sql(stack.db_url, "select content, created_at from messages where ticket_id = %s order by created_at", tid)
    assert [c for c, _ in rows] == texts
    stamps = [ts for _, ts in rows]
    assert all(a < b for a, b in itertools.pairwise(stamps)), "strictly increasing"


def test_a_forged_created_at_is_still_the_server_clock(stack: StackProcess, users: Users) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Forged time")
    with signed_in(stack, users.customer.email, users.customer.password) as client:
        client.table("messages").insert(
            {"ticket_id": tid, "content": "from the future", "created_at": "2999-01-01T00:00:00Z"}
        ).execute()
    ((late,),) = sql(
        stack.db_url, "select created_at > now() + interval '1 minute' from messages where ticket_id = %s", tid
    )
    assert late is False


JS_SCRIPT = r"""
import { createClient } from '@supabase/supabase-js';
import { options } from './support.mjs';
const [url, anon, email, password, tid] = process.argv.slice(2);
const sb = createClient(url, anon, options);
const { error } = await sb.auth.signInWithPassword({ email, password });
if (error) throw error;
const { data, error: e2 } = await sb.from('messages').select('content, created_at').eq('ticket_id', tid)
  .order('created_at');
if (e2) throw e2;
console.log(JSON.stringify(data));
"""


@pytest.mark.node
async def test_five_replies_in_one_flush_keep_their_order_in_supabase_js(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy, tmp_path: Path
) -> None:
    tid = await _flush_five_offline_replies(stack, users, engines, proxy, "Order through supabase-js")
    node = shutil.which("node")
    assert node is not None, "node is required (the project installs Node 20)"
    script = JS_DIR / f".order-{tmp_path.name}.mjs"  # inside tests/js so node_modules resolves
    script.write_text(JS_SCRIPT)
    try:
        run = subprocess.run(
            [node, str(script), stack.api_url, stack.anon_key, users.customer.email, users.customer.password, tid],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=JS_DIR,
            check=False,
        )
    finally:
        script.unlink()
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout.strip().splitlines()[-1])
    assert [r["content"] for r in rows] == ["the printer is on fire", *REPLIES]
    assert len({r["created_at"] for r in rows}) == len(rows)
