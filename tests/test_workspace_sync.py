"""The agent workspace's client plumbing (issue 14) against a real localbase through supabase-py: tags,
canned replies and views written through the outbox land once (a lost answer included) and reach other
agents by pull and realtime; RLS refusals come back as failed rows with the server's reason; customers'
caches get none of it; snooze is woken by the server (``wake_snoozed_tickets``, as the notify worker runs
it) while the app is closed; SLA due times and settings arrive as the server computed them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from sync import RetryableError, SyncEngine, events
from sync.workspace_rows import InboxFilter, RowWrite
from tests.conftest import Users
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, server_snooze, sql, wait_for

pytestmark = pytest.mark.timeout(120)


async def test_tags_land_once_and_reach_other_agents_but_never_customers(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, None, "Tag me", messages=[(users.customer, "hello")])
    admin = await engines.open(users.admin, url=proxy.url)
    await admin.sync_once()
    name = f"vip-{tid[:8]}"
    tag = admin.workspace.create_tag(name, "#ff8800")
    admin.workspace.add_tag(tid, tag)
    rule = proxy.lose_response(b"POST /rest/v1/tags")
    with pytest.raises(RetryableError):
        await admin.sync_once()
    assert rule.hits == 1
    await admin.sync_once()
    assert sql(stack.db_url, "select name, color from tags where id = %s", tag) == [(name, "#ff8800")]
    assert sql(stack.db_url, "select added_by::text, removed_at from ticket_tags where ticket_id = %s", tid) == [
        (users.admin.id, None)
    ]
    assert admin.status.pending == 0 and [t.local_state for t in admin.workspace.tags_of([tid])[tid]] == ["sent"]

    agent = await engines.open(users.agent)
    await agent.sync_once()
    assert [t.name for t in agent.workspace.tags_of([tid])[tid]] == [name]
    assert tid in {t.id for t in agent.workspace.inbox(InboxFilter(tags=(tag,)))}
    agent.workspace.remove_tag(tid, tag)
    await agent.sync_once()
    assert sql(stack.db_url, "select removed_at is not null from ticket_tags where ticket_id = %s", tid) == [(True,)]
    await admin.sync_once()
    assert admin.workspace.tags_of([tid]) == {}

    customer = await engines.open(users.customer)
    await customer.sync_once()
    assert customer.workspace.tags() == [] and customer.workspace.sla_targets() == []
    for table in ("tags", "ticket_tags", "ticket_sla", "canned_replies"):
        assert customer.cache.count(table) == 0


async def test_rls_refusals_come_back_as_failed_rows_with_the_reason(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    agent = await engines.open(users.agent)
    await agent.sync_once()
    ws = agent.workspace
    # an attacker's client skips the app's own checks: a shared reply and a tag, as a mere agent
    shared = "0b5a4c1e-0000-4000-8000-" + agent.parts.user.id[-12:]
    ws.apply(
        [
            RowWrite(
                "canned_replies", "insert", {"id": shared, "owner_id": None, "title": "Shared", "body": "by an agent"}
            ),
            RowWrite("tags", "insert", {"id": shared.replace("0b5a", "0b5b"), "name": f"evil-{shared[:6]}"}),
        ]
    )
    await agent.sync_once()
    assert sql(stack.db_url, "select count(*) from canned_replies where id = %s", shared) == [(0,)]
    assert sql(stack.db_url, "select count(*) from tags where name like 'evil-%%'") == [(0,)]
    refused = [e for e in engines.log(agent) if isinstance(e, events.Notice) and e.kind == "workspace_refused"]
    assert len(refused) == 2 and "row-level security" in refused[0].text
    failed = [r for r in ws.canned_replies() if r.id == shared]
    assert failed and failed[0].local_state == "failed" and agent.status.pending == 0

    # a personal reply is not even visible to another agent, so their app cannot queue a change to it
    mine = ws.save_canned_reply("Greeting", "Hi {{customer.name|there}}")
    await agent.sync_once()
    other = await engines.open(users.agent2)
    await other.sync_once()
    assert mine not in {r.id for r in other.workspace.canned_replies()}
    with pytest.raises(ValueError, match="no such"):
        other.workspace.apply([RowWrite("canned_replies", "update", {"id": mine, "body": "hijacked"})])

    # a shared reply is visible but the admins': the agent's edit is refused and undone locally
    admins = sql(
        stack.db_url, "insert into canned_replies (title, body) values ('Refund', 'We refunded you') returning id::text"
    )[0][0]
    await agent.sync_once()
    ws.apply([RowWrite("canned_replies", "update", {"id": admins, "body": "agent was here"})])
    assert next(r for r in ws.canned_replies() if r.id == admins).body == "agent was here"
    await agent.sync_once()
    reply = next(r for r in ws.canned_replies() if r.id == admins)
    assert (reply.body, reply.local_state) == ("We refunded you", "failed")
    assert reply.error == "you may not change a canned reply"
    assert sql(stack.db_url, "select body from canned_replies where id = %s", admins) == [("We refunded you",)]


async def test_snoozed_ticket_is_woken_by_the_server_while_the_app_is_closed(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Snooze me", messages=[(users.customer, "hi")])
    agent = await engines.open(users.agent)
    await agent.sync_once()
    agent.workspace.snooze(tid, datetime.now(UTC) + timedelta(hours=3))
    await agent.sync_once()
    assert server_snooze(stack.db_url, tid, "> now()") == ("pending", True)
    assert "snoozed_until" not in sql(stack.db_url, "select to_jsonb(t) from tickets t where id = %s", tid)[0][0]
    assert tid not in {t.id for t in agent.workspace.inbox(InboxFilter(view="mine"))}
    data_dir = agent.data_dir
    await agent.close()
    # the app is closed; three hours pass on the server (moved by hand) and the worker's round runs
    sql(stack.db_url, "update ticket_snoozes set snoozed_until = now() - interval '1 minute' where ticket_id = %s", tid)
    assert sql(stack.db_url, "select public.wake_snoozed_tickets() >= 1") == [(True,)]
    reopened = await SyncEngine.open(agent.config, data_dir)
    engines.engines.append(reopened)
    await reopened.sync_once()
    ticket = reopened.cache.ticket(tid)
    assert ticket is not None and ticket.status == "open"
    assert tid in {t.id for t in reopened.workspace.inbox(InboxFilter(view="mine"))}

    # until the customer replies: pending without a time, woken by the customer's message
    reopened.workspace.snooze(tid, None)
    await reopened.sync_once()
    assert server_snooze(stack.db_url, tid) == ("pending", None)
    sql(
        stack.db_url,
        "insert into messages (ticket_id, sender_id, content) values (%s, %s, 'any news?')",
        tid,
        users.customer.id,
    )
    await reopened.sync_once()
    assert reopened.cache.ticket(tid).status == "open"  # type: ignore[union-attr]


async def test_sla_due_times_settings_and_live_tags_arrive(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "SLA", messages=[(users.customer, "urgent!")])
    sql(stack.db_url, "update tickets set priority = 'urgent' where id = %s", tid)
    agent = await engines.open(users.agent)
    agent.loop.poll_interval = 3600
    await agent.start()
    await wait_for(lambda: agent.status.last_synced_at is not None, what="the first pull")
    await wait_for(lambda: agent.remote.live.subscribed, what="realtime")  # type: ignore[attr-defined]
    due = sql(stack.db_url, "select first_response_due_at from ticket_sla where ticket_id = %s", tid)[0][0]
    sla = agent.workspace.sla_of([tid])[tid]
    assert sla.due_at is not None and datetime.fromisoformat(sla.due_at) == due
    targets = {t.priority: t.first_response_minutes for t in agent.workspace.sla_targets()}
    assert set(targets) == {"low", "normal", "high", "urgent"}
    # an admin tags the ticket elsewhere: realtime brings it without a pull
    tag = sql(
        stack.db_url, "insert into tags (name, color) values (%s, '#00ff00') returning id::text", f"live-{tid[:8]}"
    )[0][0]
    sql(stack.db_url, "insert into ticket_tags (ticket_id, tag_id) values (%s, %s)", tid, tag)
    await wait_for(
        lambda: [t.id for t in agent.workspace.tags_of([tid]).get(tid, [])] == [tag],
        timeout=15,
        what="the realtime ticket tag",
    )
    # the agent answers: the first response is met, the SLA row follows
    agent.commands.send_message(tid, "on it")
    await wait_for(lambda: agent.status.pending == 0, what="the reply")
    await wait_for(
        lambda: (
            agent.workspace.sla_of([tid]).get(tid) is not None
            and agent.workspace.sla_of([tid])[tid].first_response_at is not None
        ),
        timeout=15,
        what="first response recorded",
    )
    await agent.stop()
    await asyncio.sleep(0)
