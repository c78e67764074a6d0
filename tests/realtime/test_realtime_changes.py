"""postgres_changes through realtime-py (acreate_client) as customers and agents: RLS per subscriber.

Every "receives nothing" assertion is made after a later event on the same socket arrived, so it
cannot pass by being checked too early: the server delivers in commit order.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from tests.conftest import Users
from tests.realtime.support import RawSocket, as_user, listen, new_ticket, post, signed_in, wait_until
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(60)


async def test_owner_receives_agent_reply_another_customer_nothing(stack: StackProcess, users: Users) -> None:
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    other_ticket = new_ticket(stack.db_url, users.customer2)
    owner = await signed_in(stack, users.customer)
    other = await signed_in(stack, users.customer2)
    try:
        mine = await listen(
            owner, "owner-thread", {"event": "INSERT", "table": "messages", "filter": f"ticket_id=eq.{ticket}"}
        )
        everything = await listen(
            other, "other-all", {"event": "*", "table": "messages"}, {"event": "*", "table": "tickets"}
        )
        reply_id = post(stack.db_url, users.agent, ticket, "Have you tried turning it off?")
        await mine.wait_content("Have you tried turning it off?")
        # the sentinel: customer2's own message arrives on the same socket after the agent's reply
        post(stack.db_url, users.customer2, other_ticket, "sentinel for customer2")
        await everything.wait_content("sentinel for customer2")
        assert "Have you tried turning it off?" not in everything.contents()
        assert all(r.get("ticket_id") != ticket for r in everything.records())
        assert all(r.get("id") != ticket for r in everything.records("tickets"))

        change = next(c for c in mine.changes if c["data"]["record"]["id"] == reply_id)
        data = change["data"]
        assert change["ids"] == [mine.channel.postgres_changes_callbacks[0].id] != [0]
        assert data["schema"] == "public" and data["table"] == "messages" and data["type"] == "INSERT"
        assert data["errors"] is None
        assert data["commit_timestamp"].endswith("Z") and data["commit_timestamp"][10] == "T"
        names = [c["name"] for c in data["columns"]]
        assert names[:4] == ["id", "ticket_id", "sender_id", "content"]
        assert {"name": "is_internal", "type": "bool"} in data["columns"]
        assert {"name": "created_at", "type": "timestamptz"} in data["columns"]
        record = data["record"]
        assert record["sender_id"] == users.agent.id and record["is_internal"] is False
        assert record["ticket_id"] == ticket and isinstance(record["change_id"], int)
        assert "old_record" not in data
        # the same row through REST has the same JSON values (formats come from PostgreSQL)
        rest = (await owner.table("messages").select("*").eq("id", reply_id).execute()).data[0]
        assert rest == record
    finally:
        await owner.realtime.close()
        await other.realtime.close()


async def test_customer_never_receives_internal_note(stack: StackProcess, users: Users) -> None:
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    owner = await signed_in(stack, users.customer)
    agent = await signed_in(stack, users.agent)
    try:
        customer_view = await listen(owner, "notes-customer", {"event": "*", "table": "messages"})
        agent_view = await listen(
            agent, "notes-agent", {"event": "INSERT", "table": "messages", "filter": f"ticket_id=eq.{ticket}"}
        )
        post(stack.db_url, users.agent, ticket, "internal: customer seems angry", internal=True)
        post(stack.db_url, users.agent, ticket, "public: we are on it")
        await customer_view.wait_content("public: we are on it")
        await agent_view.wait_content("public: we are on it")
        assert customer_view.contents() == ["public: we are on it"]
        assert agent_view.contents() == ["internal: customer seems angry", "public: we are on it"]
    finally:
        await owner.realtime.close()
        await agent.realtime.close()


async def test_agent_loses_events_for_ticket_reassigned_away(stack: StackProcess, users: Users) -> None:
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    sentinel_ticket = new_ticket(stack.db_url, users.customer2, users.agent)
    agent = await signed_in(stack, users.agent)
    agent2 = await signed_in(stack, users.agent2)
    try:
        first = await listen(
            agent, "reassign-agent", {"event": "*", "table": "messages"}, {"event": "UPDATE", "table": "tickets"}
        )
        second = await listen(agent2, "reassign-agent2", {"event": "INSERT", "table": "messages"})
        post(stack.db_url, users.customer, ticket, "before reassignment")
        await first.wait_content("before reassignment")
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            conn.execute("update public.tickets set assignee_id = %s where id = %s", (users.agent2.id, ticket))
        post(stack.db_url, users.customer, ticket, "after reassignment")
        await second.wait_content("after reassignment")
        post(stack.db_url, users.customer2, sentinel_ticket, "sentinel for agent")
        await first.wait_content("sentinel for agent")
        assert "after reassignment" not in first.contents()
        # nor the ticket update that took the ticket away, nor later ones (the agent can no longer read that row)
        updates = [r for r in first.records("tickets") if r["id"] == ticket]
        assert updates, "the ticket's updates before the reassignment did arrive"
        assert all(r["assignee_id"] == users.agent.id for r in updates)
        assert "before reassignment" not in second.contents()
    finally:
        await agent.realtime.close()
        await agent2.realtime.close()


async def test_rolled_back_insert_is_never_delivered(stack: StackProcess, users: Users) -> None:
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    owner = await signed_in(stack, users.customer)
    try:
        got = await listen(
            owner, "rollback", {"event": "INSERT", "table": "messages", "filter": f"ticket_id=eq.{ticket}"}
        )
        post(stack.db_url, users.agent, ticket, "this never happened", rollback=True)
        post(stack.db_url, users.agent, ticket, "this did")
        await got.wait_content("this did")
        assert got.contents() == ["this did"]
    finally:
        await owner.realtime.close()


async def test_commit_order_and_each_change_once(stack: StackProcess, users: Users) -> None:
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    owner = await signed_in(stack, users.customer)
    try:
        got = await listen(owner, "order", {"event": "INSERT", "table": "messages", "filter": f"ticket_id=eq.{ticket}"})
        sent = [f"burst {i}" for i in range(40)]
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            for i, text in enumerate(sent):
                if i % 10 == 0:  # a multi-row transaction among single ones
                    conn.execute(
                        "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, %s), (%s, %s, %s)",
                        (ticket, users.agent.id, text, ticket, users.agent.id, text + " b"),
                    )
                else:
                    conn.execute(
                        "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, %s)",
                        (ticket, users.agent.id, text),
                    )
        expected = [x for i, t in enumerate(sent) for x in ([t, t + " b"] if i % 10 == 0 else [t])]
        await wait_until(lambda: len(got.contents()) >= len(expected), what="all burst messages")
        await owner.realtime.close()
        assert got.contents() == expected
    finally:
        await owner.realtime.close()


async def test_update_and_delete_payloads(stack: StackProcess, users: Users) -> None:
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    owner = await signed_in(stack, users.customer)
    other = await signed_in(stack, users.customer2)
    try:
        got = await listen(
            owner,
            "upd-del",
            {"event": "UPDATE", "table": "messages", "filter": f"ticket_id=eq.{ticket}"},
            {"event": "DELETE", "table": "messages"},
        )
        stranger = await listen(other, "upd-del-other", {"event": "*", "table": "messages"})
        msg = post(stack.db_url, users.customer, ticket, "typo")
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            conn.execute("set role authenticated")
            conn.execute(
                "select set_config('request.jwt.claims', %s, false)",
                (json.dumps({"role": "authenticated", "sub": users.customer.id}),),
            )
            conn.execute("update public.messages set content = 'fixed' where id = %s", (msg,))
            # RLS is checked against the row as it is when the change is processed (as walrus does), so let
            # the update be delivered before the row disappears
            await wait_until(lambda: len(got.changes) >= 1, what="update")
            conn.execute("reset role")
            conn.execute("delete from public.messages where id = %s", (msg,))
        await wait_until(lambda: len(got.changes) >= 2, what="delete")
        update, delete = got.changes[0]["data"], got.changes[1]["data"]
        assert update["type"] == "UPDATE" and update["record"]["content"] == "fixed"
        assert update["record"]["edited_at"] is not None
        assert update["old_record"] == {"id": msg}
        assert delete["type"] == "DELETE" and "record" not in delete
        # RLS is on: the old record is cut to the primary key
        assert delete["old_record"] == {"id": msg}
        ids = {b.id for b in got.channel.postgres_changes_callbacks}
        assert set(got.changes[0]["ids"]) <= ids and set(got.changes[1]["ids"]) <= ids
        # Supabase semantics: a DELETE is not RLS-checked (the row is gone), so the stranger subscribed to the
        # whole table learns the deleted id, and nothing else; the UPDATE of a row it cannot read never came
        await wait_until(lambda: bool(stranger.changes), what="delete at the stranger")
        assert [c["data"]["type"] for c in stranger.changes] == ["DELETE"]
        assert stranger.changes[0]["data"]["old_record"] == {"id": msg}
    finally:
        await owner.realtime.close()
        await other.realtime.close()


async def test_filters_in_neq_and_comparisons(stack: StackProcess, users: Users) -> None:
    t1 = new_ticket(stack.db_url, users.customer, users.agent)
    t2 = new_ticket(stack.db_url, users.customer, users.agent)
    t3 = new_ticket(stack.db_url, users.customer, users.agent)
    agent = await signed_in(stack, users.agent)
    try:
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            row = conn.execute("select last_value from private.change_seq").fetchone()
        assert row is not None
        floor = int(row[0])
        in_list = await listen(
            agent, "f-in", {"event": "INSERT", "table": "messages", "filter": f"ticket_id=in.({t1},{t2})"}
        )
        neq = await listen(agent, "f-neq", {"event": "INSERT", "table": "messages", "filter": f"ticket_id=neq.{t1}"})
        internal = await listen(
            agent, "f-bool", {"event": "INSERT", "table": "messages", "filter": "is_internal=eq.true"}
        )
        gt = await listen(agent, "f-gt", {"event": "INSERT", "table": "messages", "filter": f"change_id=gt.{floor}"})
        lte = await listen(agent, "f-lte", {"event": "INSERT", "table": "messages", "filter": f"change_id=lte.{floor}"})
        for ticket, text in ((t1, "one"), (t2, "two"), (t3, "three")):
            post(stack.db_url, users.agent, ticket, text)
        post(stack.db_url, users.agent, t3, "note", internal=True)
        for got in (in_list, neq, internal, gt):
            await wait_until(lambda got=got: "note" in got.contents() or "two" in got.contents(), what="filters")
        await gt.wait_content("note")
        await neq.wait_content("note")
        assert in_list.contents() == ["one", "two"]
        assert neq.contents() == ["two", "three", "note"]
        await internal.wait_content("note")
        assert internal.contents() == ["note"]
        assert gt.contents() == ["one", "two", "three", "note"]
        assert lte.contents() == []
    finally:
        await agent.realtime.close()


@pytest.mark.parametrize(
    ("binding", "reason"),
    [
        ({"event": "INSERT", "table": "messages", "filter": "ticket_id=like.abc"}, "invalid filter operator"),
        ({"event": "INSERT", "table": "messages", "filter": "nope=eq.1"}, "invalid column for filter nope"),
        ({"event": "INSERT", "table": "messages", "filter": "ticket_id=eq.not-a-uuid"}, "invalid filter value"),
        (
            {
                "event": "INSERT",
                "table": "messages",
                "filter": "ticket_id=in.(" + ",".join(str(uuid.uuid4()) for _ in range(101)) + ")",
            },
            "at most 100",
        ),
        ({"event": "INSERT", "table": "messages", "filter": "garbage"}, "expected column=op.value"),
    ],
)
async def test_invalid_filter_is_a_join_error(
    stack: StackProcess, users: Users, binding: dict[str, str], reason: str
) -> None:
    sb = await signed_in(stack, users.agent)
    try:
        channel = sb.channel(f"bad-filter-{uuid.uuid4().hex[:6]}")
        channel.on_postgres_changes(
            binding["event"], lambda p: None, table=binding["table"], schema="public", filter=binding["filter"]
        )
        states: list[tuple[object, Exception | None]] = []
        await channel.subscribe(lambda s, e: states.append((s, e)))
        assert states and states[0][0].value == "CHANNEL_ERROR"
        assert reason in str(states[0][1])
    finally:
        await sb.realtime.close()


async def test_table_outside_publication_gets_system_error(stack: StackProcess, users: Users) -> None:
    sb = await signed_in(stack, users.admin)
    try:
        channel = sb.channel("unpublished")
        channel.on_postgres_changes("*", lambda p: None, table="users", schema="auth")
        states: list[tuple[object, Exception | None]] = []
        await channel.subscribe(lambda s, e: states.append((s, e)))
        # the join succeeds (as on Supabase); then a system error says why nothing will come
        await wait_until(lambda: len(states) >= 2, what="system error")
        assert states[0][0].value == "SUBSCRIBED"
        assert states[1][0].value == "CHANNEL_ERROR" and "publication" in str(states[1][1])
    finally:
        await sb.realtime.close()


async def test_composite_key_table_ticket_reads(stack: StackProcess, users: Users) -> None:
    """ticket_reads has a two-column primary key: the per-row RLS check path for composite keys."""
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    other_ticket = new_ticket(stack.db_url, users.customer2, users.agent)
    owner = await signed_in(stack, users.customer)
    other = await signed_in(stack, users.customer2)
    mine = await listen(owner, "reads-owner", {"event": "*", "table": "ticket_reads"})
    theirs = await listen(other, "reads-other", {"event": "*", "table": "ticket_reads"})
    as_user(stack.db_url, users.agent, "insert into public.ticket_reads (ticket_id) values (%s)", (ticket,))
    await wait_until(lambda: bool(mine.changes), what="agent's read marker at the owner")
    as_user(stack.db_url, users.customer2, "insert into public.ticket_reads (ticket_id) values (%s)", (other_ticket,))
    await wait_until(lambda: bool(theirs.changes), what="customer2's own read marker")
    record = mine.changes[0]["data"]["record"]
    assert (record["ticket_id"], record["user_id"]) == (ticket, users.agent.id)
    assert [c["data"]["record"]["ticket_id"] for c in theirs.changes] == [other_ticket]


async def test_many_subscribers_in_one_batch_each_get_only_their_rows(stack: StackProcess, users: Users) -> None:
    """Twenty sockets, two identities each with its own session: a burst of changes checked in shared batches
    still reaches exactly the subscribers RLS lets read each row."""
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    other_ticket = new_ticket(stack.db_url, users.customer2, users.agent)
    binding = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "messages"}]}
    sockets: list[tuple[str, RawSocket]] = []
    try:
        for i in range(20):
            who = users.customer if i % 2 == 0 else users.customer2
            sock = await RawSocket.open(stack)
            reply = await sock.join("realtime:many", binding, token=stack.mint(sub=who.id))
            assert reply["status"] == "ok"
            await sock.next(lambda f: f["event"] == "system")
            sockets.append((who.id, sock))
        with psycopg.connect(stack.db_url) as conn:  # one transaction: all ten rows arrive in the same poll
            for i in range(10):
                target = ticket if i % 2 == 0 else other_ticket
                conn.execute(
                    "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, %s)",
                    (target, users.agent.id, f"batch {i}"),
                )
        post(stack.db_url, users.agent, ticket, "end")
        post(stack.db_url, users.agent, other_ticket, "end")
        for owner_id, sock in sockets:
            mine_ticket = ticket if owner_id == users.customer.id else other_ticket
            expected = [f"batch {i}" for i in range(10) if (i % 2 == 0) == (mine_ticket == ticket)] + ["end"]
            got: list[str] = []
            while not got or got[-1] != "end":
                frame = await sock.next(lambda f: f["event"] == "postgres_changes")
                record = frame["payload"]["data"]["record"]
                assert record["ticket_id"] == mine_ticket, "a row RLS hides from this subscriber was delivered"
                got.append(record["content"])
            assert got == expected
    finally:
        for _, sock in sockets:
            await sock.close()


async def test_update_of_a_long_message_carries_its_unchanged_content(stack: StackProcess, users: Users) -> None:
    """An UPDATE that does not touch `content` (here one whose only column the server keeps as it was; a delete
    clears content since 20261129000510): a long content lives out of line (TOAST) and is not in the WAL for such
    an UPDATE, yet subscribers must get the whole row."""
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    owner = await signed_in(stack, users.customer)
    got = await listen(owner, "toast", {"event": "UPDATE", "table": "messages", "filter": f"ticket_id=eq.{ticket}"})
    long_text = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(9000))  # incompressible: stored out of line
    msg = post(stack.db_url, users.customer, ticket, long_text)
    as_user(stack.db_url, users.customer, "update public.messages set edited_at = now() where id = %s", (msg,))
    await wait_until(lambda: bool(got.changes), what="the update")
    record = got.changes[0]["data"]["record"]
    assert record["edited_at"] is None and record["deleted_at"] is None
    assert record["content"] == long_text
