"""``rpc sync_changed`` (migration 20261208000300): which synced tables have rows past a client's cursors, in one
request, through the official `supabase` client on the real stack, as an attacker would try it. It names a table only
when a row past the cursor is one the caller may select (a customer learns nothing of another customer's messages nor
of an internal note, nor of the staff tables); anon may not call it; a malformed question is refused (22023) before
any table is read. ``rpc sync_status`` (migration 20261209000300) answers the same question with the snapshot's
horizon, under the same rules.
"""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError

from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_sync_counts import _as, http  # noqa: F401  (http: the fixture, shared)
from tests.test_sync_support import seed_ticket

CORE = ("profiles", "tickets", "messages", "attachments", "ticket_reads", "message_revisions")


def _newest(db_url: str, table: str) -> list[int]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            f"select change_xid, change_id from public.{table} order by 1 desc, 2 desc limit 1"
        ).fetchone()
    assert row is not None
    return [int(row[0]), int(row[1])]


def test_a_table_is_named_only_for_rows_past_the_cursor_the_caller_may_select(
    stack: StackProcess, http: httpx.Client
) -> None:
    customer, other, agent = (create_user(stack.db_url, r) for r in ("customer", "customer", "agent"))
    mine = seed_ticket(stack.db_url, customer, agent, messages=[(customer, "mine")])
    client = _as(stack, http, customer.id)
    assert set(client.rpc("sync_changed", {"cursors": {t: [0, 0] for t in CORE[:5]}}).execute().data) >= {
        "tickets",
        "messages",
    }
    caught_up = {"messages": _newest(stack.db_url, "messages"), "tickets": _newest(stack.db_url, "tickets")}
    assert client.rpc("sync_changed", {"cursors": caught_up}).execute().data == []
    seed_ticket(stack.db_url, other, agent, messages=[(other, "not yours")])  # past the cursor, not visible
    assert client.rpc("sync_changed", {"cursors": caught_up}).execute().data == []
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.messages (ticket_id, sender_id, content, is_internal) values (%s, %s, 'note', true)",
            (mine, agent.id),
        )
    assert "messages" not in client.rpc("sync_changed", {"cursors": caught_up}).execute().data
    assert _as(stack, http, agent.id).rpc("sync_changed", {"cursors": caught_up}).execute().data.count("messages") == 1
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, 'a reply')", (mine, agent.id)
        )
    assert "messages" in client.rpc("sync_changed", {"cursors": caught_up}).execute().data


def test_anon_and_malformed_questions_are_refused_and_staff_tables_say_nothing_to_customers(
    stack: StackProcess, http: httpx.Client
) -> None:
    with pytest.raises(APIError) as anon:
        _as(stack, http, None).rpc("sync_changed", {"cursors": {"messages": [0, 0]}}).execute()
    assert anon.value.code == "42501"
    customer = create_user(stack.db_url, "customer")
    client = _as(stack, http, customer.id)
    for bad in (
        [["messages", 0, 0]],  # not an object
        {"auth.users": [0, 0]},  # not a synced table
        {"pg_authid": [0, 0]},
        {"messages": [0]},  # not a cursor
        {"messages": ["0", "0"]},
        {"messages": [1.5, 0]},  # not whole (before: 22P02 from the cast)
        {"messages": [1e30, 0]},  # past bigint (before: 22003)
        {"messages": [0, -1]},
        {"messages": {"after_xid": 0}},
        {f"t{i}": [0, 0] for i in range(65)},  # too many
    ):
        with pytest.raises(APIError) as refused:
            client.rpc("sync_changed", {"cursors": bad}).execute()
        assert refused.value.code == "22023", bad
    staff = create_user(stack.db_url, "agent")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("insert into public.tags (name) values (%s)", (f"vip {uuid.uuid4().hex[:8]}",))
    staff_tables = {"cursors": {"tags": [0, 0], "customer_notes": [0, 0], "macros": [0, 0]}}
    assert "tags" in _as(stack, http, staff.id).rpc("sync_changed", staff_tables).execute().data
    assert client.rpc("sync_changed", staff_tables).execute().data == []  # a customer learns nothing of them


def test_sync_status_names_what_sync_changed_names_with_a_horizon_under_the_same_rules(
    stack: StackProcess, http: httpx.Client
) -> None:
    customer, other, agent = (create_user(stack.db_url, r) for r in ("customer", "customer", "agent"))
    seed_ticket(stack.db_url, customer, agent, messages=[(customer, "mine")])
    client = _as(stack, http, customer.id)
    caught_up = {"messages": _newest(stack.db_url, "messages"), "tickets": _newest(stack.db_url, "tickets")}
    seed_ticket(stack.db_url, other, agent, messages=[(other, "not yours")])
    answer = client.rpc("sync_status", {"cursors": caught_up}).execute().data
    assert answer["changed"] == [] and isinstance(answer["horizon"], int)
    # every transaction below the horizon had ended: the other customer's rows lie below it
    assert answer["horizon"] > _newest(stack.db_url, "messages")[0]
    assert client.rpc("sync_status", {"cursors": {"tickets": [0, 0]}}).execute().data["changed"] == ["tickets"]
    with pytest.raises(APIError) as anon:
        _as(stack, http, None).rpc("sync_status", {"cursors": {"messages": [0, 0]}}).execute()
    assert anon.value.code == "42501"
    for bad in ({"auth.users": [0, 0]}, {"messages": [1.5, 0]}, [["messages", 0, 0]]):
        with pytest.raises(APIError) as refused:
            client.rpc("sync_status", {"cursors": bad}).execute()
        assert refused.value.code == "22023", bad


def test_the_two_newest_tables_are_named_by_their_rules(stack: StackProcess, http: httpx.Client) -> None:
    """``ticket_snoozes`` (20261216000100) and ``attachment_deletions`` (20261216000200) both recreate
    ``sync_changed``; the later one must keep the earlier one's table. A snooze is named to staff only, a public
    message's tombstone to its customer as well, an internal note's to staff only."""
    customer, agent = (create_user(stack.db_url, r) for r in ("customer", "agent"))
    tid = seed_ticket(stack.db_url, customer, agent, messages=[(customer, "hello")])
    at = _newest(stack.db_url, "tickets")
    cursors = {"ticket_snoozes": at, "attachment_deletions": at}
    as_customer, as_agent = _as(stack, http, customer.id), _as(stack, http, agent.id)
    assert as_agent.rpc("sync_changed", {"cursors": cursors}).execute().data == []
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("update tickets set status = 'pending' where id = %s", (tid,))
        conn.execute(
            "insert into ticket_snoozes (ticket_id, snoozed_until) values (%s, now() + interval '1 hour')", (tid,)
        )
        conn.execute(
            "insert into attachment_deletions (id, message_id, ticket_id, is_internal) values (%s, %s, %s, true)",
            (uuid.uuid4(), uuid.uuid4(), tid),
        )
    assert sorted(as_agent.rpc("sync_changed", {"cursors": cursors}).execute().data) == [
        "attachment_deletions",
        "ticket_snoozes",
    ]
    assert as_customer.rpc("sync_changed", {"cursors": cursors}).execute().data == []  # staff's and a note's
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute(
            "insert into attachment_deletions (id, message_id, ticket_id, is_internal) values (%s, %s, %s, false)",
            (uuid.uuid4(), uuid.uuid4(), tid),
        )
    assert as_customer.rpc("sync_changed", {"cursors": cursors}).execute().data == ["attachment_deletions"]
