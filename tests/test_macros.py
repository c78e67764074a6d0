"""Macros and bulk actions (issue 14, item 7) through the real sync engine and localbase: a macro applied
offline (reply + status + priority + assignee + tags) reaches the server once after reconnecting — through a
lost answer too — and the customer sees the reply once; one change applied to several tickets at once; the
expansion rules, pure."""

from __future__ import annotations

import json

import pytest

from sync import RetryableError
from sync.macros import BulkChange, apply_bulk, apply_macro, macro_steps, ticket_changes
from sync.workspace_rows import Macro, NewMessage, RowWrite, TicketChange
from tests.conftest import Users
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, sql

pytestmark = pytest.mark.timeout(120)


def test_ticket_changes_resolve_the_assignee() -> None:
    assert ticket_changes({"status": "resolved", "assignee": "me"}, "u1") == {"status": "resolved", "assignee_id": "u1"}
    assert ticket_changes({"assignee": "none", "priority": "low"}, "u1") == {"assignee_id": None, "priority": "low"}
    assert ticket_changes({"add_tags": ["t"]}, "u1") == {}


def new_macro(db_url: str, name: str, reply: str | None, actions: dict[str, object]) -> str:
    rows = sql(
        db_url,
        "insert into macros (name, reply, actions) values (%s, %s, %s::jsonb) returning id::text",
        name,
        reply,
        json.dumps(actions),
    )
    return str(rows[0][0])


def new_tag(db_url: str, name: str) -> str:
    return str(sql(db_url, "insert into tags (name, color) values (%s, '#3366ff') returning id::text", name)[0][0])


async def test_a_macro_applied_offline_lands_once_and_the_customer_sees_the_reply_once(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, None, "Refund please", messages=[(users.customer, "money back?")])
    refunded, waiting = new_tag(stack.db_url, f"refunded-{tid[:8]}"), new_tag(stack.db_url, f"waiting-{tid[:8]}")
    sql(stack.db_url, "insert into ticket_tags (ticket_id, tag_id) values (%s, %s)", tid, waiting)
    reply = f"Your refund is on its way ({tid[:8]})."
    macro_id = new_macro(
        stack.db_url,
        f"Refund {tid[:8]}",
        reply,
        {"status": "resolved", "priority": "high", "assignee": "me", "add_tags": [refunded], "remove_tags": [waiting]},
    )
    agent = await engines.open(users.agent, url=proxy.url)
    await agent.sync_once()
    macro = next(m for m in agent.workspace.macros() if m.id == macro_id)

    proxy.set_mode("drop")
    touched = apply_macro(agent.workspace, macro, [tid], users.agent.id)
    assert touched == {tid}
    local = agent.cache.ticket(tid)  # shown at once, offline
    assert local is not None and (local.status, local.priority, local.assignee_id) == (
        "resolved",
        "high",
        users.agent.id,
    )
    assert [m.content for m in agent.cache.thread(tid)][-1] == reply
    assert [t.id for t in agent.workspace.tags_of([tid])[tid]] == [refunded]
    with pytest.raises(RetryableError):
        await agent.sync_once()
    proxy.set_mode("pass")
    rule = proxy.lose_response(b"POST /rest/v1/messages")  # the reply lands but its answer is lost
    with pytest.raises(RetryableError):
        await agent.sync_once()
    assert rule.hits == 1
    await agent.sync_once()
    assert agent.status.pending == 0 and agent.status.failed == 0

    assert sql(stack.db_url, "select count(*) from messages where ticket_id = %s and content = %s", tid, reply) == [
        (1,)
    ]
    assert sql(stack.db_url, "select status, priority, assignee_id::text from tickets where id = %s", tid) == [
        ("resolved", "high", users.agent.id)
    ]
    assert sql(
        stack.db_url, "select tag_id::text from ticket_tags where ticket_id = %s and removed_at is null", tid
    ) == [(refunded,)]
    customer = await engines.open(users.customer)
    await customer.sync_once()
    assert [m.content for m in customer.cache.thread(tid)].count(reply) == 1
    assert customer.cache.ticket(tid).status == "resolved"  # type: ignore[union-attr]

    # applied again: the reply and the (no-op) ticket change go again, but no tag step: the tags are already so
    steps = macro_steps(agent.workspace, macro, tid, users.agent.id, has_tags={refunded}, live_tags={refunded, waiting})
    assert [type(s) for s in steps] == [NewMessage, TicketChange]


async def test_one_change_applied_to_several_tickets(stack: StackProcess, users: Users, engines: EngineFactory) -> None:
    tids = [seed_ticket(stack.db_url, users.customer, users.agent, f"Bulk {i}") for i in range(3)]
    tag = new_tag(stack.db_url, f"bulk-{tids[0][:8]}")
    agent = await engines.open(users.agent)
    await agent.sync_once()
    assert apply_bulk(agent.workspace, BulkChange("status", "pending"), tids, users.agent.id) == set(tids)
    assert apply_bulk(agent.workspace, BulkChange("add_tag", tag), tids, users.agent.id) == set(tids)
    await agent.sync_once()
    assert sql(
        stack.db_url, "select count(*) from tickets where id = any(%s::uuid[]) and status = 'pending'", tids
    ) == [(3,)]
    assert sql(stack.db_url, "select count(*) from ticket_tags where tag_id = %s and removed_at is null", tag) == [(3,)]
    assert apply_bulk(agent.workspace, BulkChange("add_tag", tag), tids, users.agent.id) == set()  # already so
    apply_bulk(agent.workspace, BulkChange("assignee", "none"), tids, users.agent.id)
    await agent.sync_once()
    assert sql(
        stack.db_url, "select count(*) from tickets where id = any(%s::uuid[]) and assignee_id is null", tids
    ) == [(3,)]


def test_bulk_tag_steps_skip_tickets_already_so() -> None:
    class NoWorkspace:  # tag steps never touch the workspace
        pass

    from sync.macros import bulk_steps

    steps = bulk_steps(
        NoWorkspace(),
        BulkChange("remove_tag", "t1"),
        ["a", "b"],
        "me",  # type: ignore[arg-type]
        {"a": {"t1"}, "b": set()},
    )
    assert steps == [RowWrite("ticket_tags", "delete", {"ticket_id": "a", "tag_id": "t1"})]
    unused = Macro("m", None, "n", None, {})
    assert unused.reply is None
