"""Edits and deletes through the real engine against the real stack (issue 13 items 1 and 2): the server contract of
``rpc edit_message`` (a compare-and-set under RLS and the messages guard), offline edits that land, lose a
conflict or are refused with the server's reason, deletes whose text leaves every cache — the SQLite file and
its WAL checked byte by byte — and revisions that reach staff caches only.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import pytest
from postgrest.exceptions import APIError

from sync import SyncEngine, events
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_message_edits import backdate
from tests.test_rest_clients import ClientFactory, clients_fixture
from tests.test_sync_support import EngineFactory, seed_ticket, sql, wait_for

uses_clients = clients_fixture
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")


def _file_bytes(engine: SyncEngine, user_id: str) -> dict[str, bytes]:
    path = engine.cache_path(user_id)
    return {
        suffix: path.with_name(path.name + suffix).read_bytes()
        for suffix in ("", "-wal")
        if path.with_name(path.name + suffix).exists()
    }


def _holding(engine: SyncEngine, user_id: str, marker: str) -> list[str]:
    """Which of the cache's files hold ``marker`` anywhere in their bytes."""
    return [s or "db" for s, data in _file_bytes(engine, user_id).items() if marker.encode() in data]


def _checkpoint(engine: SyncEngine, user_id: str) -> None:
    conn = sqlite3.connect(engine.cache_path(user_id))
    try:
        conn.execute("pragma wal_checkpoint(truncate)")
    finally:
        conn.close()


# the server contract ---------------------------------------------------------------------------------------


def test_edit_message_is_a_compare_and_set_under_the_guard(
    stack: StackProcess, users: Users, clients: ClientFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "cas")
    customer = clients(stack.mint(sub=users.customer.id))
    mid = customer.table("messages").insert({"ticket_id": tid, "content": "v1"}).execute().data[0]["id"]
    long_text = "é" * 9_000  # both texts travel in the body: far beyond a 16 KiB request line once encoded
    row = customer.rpc("edit_message", {"message_id": mid, "seen": "v1", "content": long_text}).execute().data
    assert row[0]["content"] == long_text and row[0]["edited_at"]
    stale = customer.rpc("edit_message", {"message_id": mid, "seen": "v1", "content": "v3"}).execute().data
    assert stale == []  # the text the editor saw is gone: nothing changes
    assert sql(stack.db_url, "select content from messages where id = %s", mid) == [(long_text,)]
    # nobody else edits it through the function either
    agent = clients(stack.mint(sub=users.agent.id))
    assert agent.rpc("edit_message", {"message_id": mid, "seen": long_text, "content": "x"}).execute().data == []
    with pytest.raises(APIError) as err:
        clients(None).rpc("edit_message", {"message_id": mid, "seen": long_text, "content": "x"}).execute()
    assert err.value.code == "42501"
    # the window and a closed ticket refuse with the guard's reason
    backdate(stack.db_url, mid, 16)
    with pytest.raises(APIError) as err:
        customer.rpc("edit_message", {"message_id": mid, "seen": long_text, "content": "late"}).execute()
    assert err.value.code == "42501" and "edit window" in err.value.message
    assert sql(stack.db_url, "select content from messages where id = %s", mid) == [(long_text,)]


# the engine against the stack -------------------------------------------------------------------------------


async def test_offline_edit_conflict_and_refusal_through_the_engine(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, f"edits {time.time_ns()}")
    agent = await engines.open(users.agent)
    await agent.sync_once()
    first = agent.commands.send_message(tid, "the first text").id
    second = agent.commands.send_message(tid, "another text").id
    third = agent.commands.send_message(tid, "an old text").id
    await agent.sync_once()
    agent.history.edit_message(first, "the first text, fixed")
    agent.history.edit_message(second, "another text, my edit")
    agent.history.edit_message(third, "an old text, too late")
    # meanwhile the second was edited elsewhere (the same user on another device), the third's window passed
    sql(stack.db_url, "update messages set content = 'edited on my phone' where id = %s", second)
    backdate(stack.db_url, third, 20)
    await agent.sync_once()
    rows = dict(sql(stack.db_url, "select id::text, content from messages where ticket_id = %s", tid))
    assert rows == {first: "the first text, fixed", second: "edited on my phone", third: "an old text"}
    assert sql(stack.db_url, "select content from message_revisions where message_id = %s", first) == [
        ("the first text",)
    ]
    log = engines.log(agent)
    kinds = [e.kind for e in log if isinstance(e, events.Notice)]
    assert kinds.count("message_edit_overruled") == 1 and kinds.count("message_edit_refused") == 1
    refused = next(e for e in log if isinstance(e, events.Notice) and e.kind == "message_edit_refused")
    assert "edit window" in refused.text  # the server's own reason
    # nothing typed is lost: both losing texts are in the ticket's draft
    assert agent.cache.draft(tid) == "another text, my edit\n\nan old text, too late"
    assert {m.id: m.content for m in agent.cache.thread(tid)} == rows
    assert agent.status.pending == 0 and agent.status.failed == 0


async def test_a_delete_leaves_no_byte_of_the_text_in_any_cache(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, f"secrets {time.time_ns()}")
    marker = f"zq{uuid.uuid4().hex}"
    customer = await engines.open(users.customer)
    agent = await engines.open(users.agent)
    await customer.sync_once()
    mid = customer.commands.send_message(tid, f"my password is {marker}").id
    await customer.sync_once()
    customer.history.edit_message(mid, f"my password is {marker}, really")
    await customer.sync_once()
    await agent.sync_once()
    assert [r.content for r in agent.history.revisions(mid)] == [f"my password is {marker}"]
    assert _holding(agent, users.agent.id, marker) and _holding(customer, users.customer.id, marker)
    agent.commands.save_draft(tid, f"re: my password is {marker}, really")
    # the customer's cache never holds revisions, and its pull of them returns nothing
    assert customer.cache.count("message_revisions") == 0
    assert await customer.remote.pull("message_revisions", (0, 0)) == []
    agent.loop.poll_interval = 3600
    await agent.start()  # the agent's thread is open: the tombstone arrives by realtime
    await wait_for(lambda: agent.status.state == "online", what="agent online")

    customer.history.delete_message(mid)
    assert customer.cache.message(mid).content == ""  # type: ignore[union-attr]
    await customer.sync_once()
    assert sql(stack.db_url, "select content, deleted_at is not null from messages where id = %s", mid) == [("", True)]
    await wait_for(
        lambda: (m := agent.cache.message(mid)) is not None and m.deleted_at is not None,
        what="the tombstone by realtime",
    )
    await asyncio.sleep(0)  # let the scrub the realtime apply started finish on the writer thread
    await wait_for(lambda: not _holding(agent, users.agent.id, marker), what="the agent's cache scrubbed")
    for engine, user in ((customer, users.customer), (agent, users.agent)):
        assert engine.cache.search(marker) == []
        assert _holding(engine, user.id, marker) == [], "after the delete"
        _checkpoint(engine, user.id)
        assert _holding(engine, user.id, marker) == [], "after a checkpoint"
    assert agent.history.revisions(mid) == [] and agent.cache.draft(tid) == "re:"
    # the server has none of it either (REST, the sync function)
    assert sql(stack.db_url, "select count(*) from messages where content like %s", f"%{marker}%") == [(0,)]
    assert sql(stack.db_url, "select count(*) from message_revisions where content like %s", f"%{marker}%") == [(0,)]


async def test_a_delete_that_a_closed_ticket_refuses_gives_the_text_back(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, f"closed {time.time_ns()}")
    customer = await engines.open(users.customer)
    await customer.sync_once()
    mid = customer.commands.send_message(tid, "kept by the closed ticket").id
    await customer.sync_once()
    customer.history.delete_message(mid)
    sql(stack.db_url, "update tickets set status = 'closed' where id = %s", tid)
    await customer.sync_once()
    assert customer.cache.message(mid).content == "kept by the closed ticket"  # type: ignore[union-attr]
    notice = [e for e in engines.log(customer) if isinstance(e, events.Notice) and e.kind == "message_delete_refused"]
    assert notice and "closed ticket" in notice[0].text
    assert sql(stack.db_url, "select content from messages where id = %s", mid) == [("kept by the closed ticket",)]


async def test_staff_get_revisions_by_pull_and_backfill_customers_never(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent2, f"revisions {time.time_ns()}")
    customer = await engines.open(users.customer)
    await customer.sync_once()
    mid = customer.commands.send_message(tid, "first words").id
    await customer.sync_once()
    customer.history.edit_message(mid, "second words")
    await customer.sync_once()
    agent = await engines.open(users.agent)
    await agent.sync_once()
    assert agent.cache.ticket(tid) is None  # agent2's ticket: not the agent's to see, nor its revisions
    assert agent.history.revisions(mid) == []
    sql(stack.db_url, "update tickets set assignee_id = %s where id = %s", users.agent.id, tid)
    await agent.sync_once()  # reassigned to me: the thread and its revisions come by backfill
    assert [r.content for r in agent.history.revisions(mid)] == ["first words"]
    await customer.sync_once()
    assert customer.cache.count("message_revisions") == 0 and customer.history.revisions(mid) == []


async def test_the_uploader_removes_a_deleted_messages_files_from_storage(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, f"files {time.time_ns()}")
    agent = await engines.open(users.agent)
    await agent.sync_once()
    receipt = tmp_path / "receipt.txt"
    receipt.write_text("card 4111 1111 1111 1111")
    mid = agent.commands.send_message(tid, "the receipt", files=[receipt]).id
    await agent.sync_once()
    objects = "select count(*) from storage.objects where bucket_id = 'attachments' and name like %s"
    assert sql(stack.db_url, objects, f"{tid}/{mid}/%") == [(1,)]
    agent.history.delete_message(mid)
    await agent.sync_once()
    assert sql(stack.db_url, objects, f"{tid}/{mid}/%") == [(0,)]
    assert sql(stack.db_url, "select count(*) from attachments where message_id = %s", mid) == [(0,)]
    assert agent.cache.outbox() == [] and agent.cache.attachments(mid) == []
    assert list(agent.cache.files_dir.glob("*")) == []  # the local copy of the file went with it
