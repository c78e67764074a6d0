"""What a ticket's SLA due times are computed from (``private.sla_inputs``, migration
20261205000200_sla_inputs_thread_tail.sql), in the real PostgreSQL:

- on random threads (customers, agents, an admin, internal notes, deleted messages, equal timestamps, tickets
  before and after their first response) it answers exactly what the first version's two aggregates answer;
- a new message's recompute reads the tail of its thread, not every message of it (each message's insert runs it,
  so a long thread made every insert slower; realtime's insert-to-delivery latency starts with that insert);
- its statement is planned once and reused (20261205000210_sla_inputs_generic_plan.sql), not planned again for
  every message: the plans ``auto_explain`` reports for it take the ids as a parameter, never as a constant.

The threads are written with triggers off (``session_replication_role = replica``, so ``created_at`` is the
test's and nothing is recomputed) inside a transaction that is rolled back: the shared database keeps nothing.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.conftest import create_user
from tests.stackproc import StackProcess

# the first version's formula (migrations 20261129000540 and 20261204000500), as the reference answer
REFERENCE = """
  select t.id, t.created_at, g.first_response_minutes, w.since, g.next_response_minutes
  from public.tickets t
  left join public.sla_targets g on g.priority = t.priority
  cross join lateral (
    select case when t.first_response_at is null then null else (
      select min(m.created_at) from public.messages m join public.profiles p on p.id = m.sender_id
      where m.ticket_id = t.id and p.role = 'customer' and m.deleted_at is null
        and m.created_at > coalesce((
          select max(r.created_at) from public.messages r join public.profiles rp on rp.id = r.sender_id
          where r.ticket_id = t.id and not r.is_internal and rp.role in ('agent', 'admin')), '-infinity'))
    end as since
  ) w
  where t.id = any(%s::uuid[])
  order by t.id
"""

# every tuple the messages table and its indexes handed out in this transaction so far
ROWS_READ = """
  select sum(pg_stat_get_xact_tuples_returned(c.oid) + pg_stat_get_xact_tuples_fetched(c.oid))::bigint
  from pg_class c
  where c.oid = 'public.messages'::regclass
     or c.oid in (select indexrelid from pg_index where indrelid = 'public.messages'::regclass)
"""


@pytest.fixture(scope="module")
def people(stack: StackProcess) -> dict[str, list[str]]:
    return {
        "customer": [create_user(stack.db_url, "customer").id for _ in range(2)],
        "staff": [create_user(stack.db_url, "agent").id, create_user(stack.db_url, "admin").id],
    }


def _ticket(conn: psycopg.Connection, customer: str, priority: str, responded: datetime | None) -> str:
    ticket = str(uuid.uuid4())
    conn.execute(
        "insert into public.tickets (id, customer_id, subject, priority, first_response_at)"
        " values (%s, %s, 's', %s, %s)",
        (ticket, customer, priority, responded),
    )
    return ticket


def _message(
    conn: psycopg.Connection, ticket: str, sender: str, at: datetime, *, internal: bool = False, deleted: bool = False
) -> None:
    conn.execute(
        "insert into public.messages (ticket_id, sender_id, content, is_internal, created_at, deleted_at)"
        " values (%s, %s, %s, %s, %s, %s)",
        (ticket, sender, "" if deleted else "m", internal, at, at if deleted else None),  # a tombstone has no text
    )


@pytest.mark.parametrize("seed", range(6))
def test_the_answers_are_the_aggregates_on_random_threads(
    stack: StackProcess, people: dict[str, list[str]], seed: int
) -> None:
    rnd = random.Random(seed)
    base = datetime(2026, 11, 1, 9, tzinfo=UTC)
    with psycopg.connect(stack.db_url) as conn:
        conn.execute("set local session_replication_role = replica")
        tickets = []
        for _ in range(40):
            customer = rnd.choice(people["customer"])
            responded = None if rnd.random() < 0.3 else base
            ticket = _ticket(conn, customer, rnd.choice(("low", "normal", "high", "urgent")), responded)
            tickets.append(ticket)
            for _ in range(rnd.choice((0, 1, 2, 5, 12, 30))):
                # few distinct times: ties between staff replies and customer messages are common
                at = base + timedelta(minutes=rnd.randrange(0, 20))
                sender = customer if rnd.random() < 0.5 else rnd.choice(people["staff"])
                _message(conn, ticket, sender, at, internal=rnd.random() < 0.2, deleted=rnd.random() < 0.15)
        got = conn.execute("select * from private.sla_inputs(%s::uuid[]) order by id", (tickets,)).fetchall()
        want = conn.execute(REFERENCE, (tickets,)).fetchall()
        conn.rollback()
    assert len(want) == len(tickets)
    assert got == want
    assert any(row[3] is not None for row in want) and any(row[3] is None for row in want)  # both kinds were asked


# Planner settings the tail must not depend on. Which join the planner picks for a message and its sender depends on
# the tables' statistics (CI's shared database, after the whole suite, once hashed the thread against every profile:
# 357 tuples); these settings force the other joins it could pick, so the test fails for any plan that joins.
PLANNER_CHOICES = {
    "default": (),
    "no nested loops": ("enable_nestloop",),
    "merge joins only": ("enable_nestloop", "enable_hashjoin"),
    "no hash joins": ("enable_hashjoin",),
}


@pytest.mark.parametrize("planner", PLANNER_CHOICES)
def test_a_new_message_reads_the_thread_tail_not_the_thread(
    stack: StackProcess, people: dict[str, list[str]], planner: str
) -> None:
    customer, agent = people["customer"][0], people["staff"][0]
    base = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with psycopg.connect(stack.db_url) as conn:
        conn.execute("set local session_replication_role = replica")
        for setting in PLANNER_CHOICES[planner]:
            conn.execute(f"set local {setting} = off")
        ticket = _ticket(conn, customer, "normal", base)
        for i in range(300):  # a long conversation
            _message(conn, ticket, customer if i % 2 else agent, base + timedelta(seconds=i))
        _message(conn, ticket, agent, base + timedelta(seconds=300), internal=True)  # a note answers nothing
        _message(conn, ticket, customer, base + timedelta(seconds=301))  # waiting since the customer's last word
        before = conn.execute(ROWS_READ).fetchone()
        rows = conn.execute("select since from private.sla_inputs(array[%s]::uuid[])", (ticket,)).fetchall()
        after = conn.execute(ROWS_READ).fetchone()
        conn.rollback()
    assert before is not None and after is not None
    # the customer's message at 299 s follows the agent's last public reply at 298 s
    assert rows == [(base + timedelta(seconds=299),)]
    read = after[0] - before[0]
    assert read <= 20, f"{read} message tuples read for one ticket's inputs: the whole thread, not its tail"


def test_the_inputs_statement_is_planned_once_not_per_message(
    stack: StackProcess, people: dict[str, list[str]]
) -> None:
    customer = people["customer"][0]
    plans: list[str] = []
    with psycopg.connect(stack.db_url) as conn:
        conn.execute("set local session_replication_role = replica")
        tickets = [_ticket(conn, customer, "normal", None) for _ in range(3)]
        conn.execute("load 'auto_explain'")
        for setting, value in (("log_min_duration", "0"), ("log_nested_statements", "on"), ("log_format", "text")):
            conn.execute(f"set local auto_explain.{setting} = {value}")
        conn.execute("set local client_min_messages = log")
        conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
        for ticket in tickets * 3:  # past the plan cache's five custom plans, too
            conn.execute("select * from private.sla_inputs(array[%s]::uuid[])", (ticket,))
        conn.rollback()
    mine = [plan for plan in plans if "Index Scan using tickets_pkey" in plan]
    assert len(mine) == 9, plans
    for plan in mine:
        cond = re.search(r"Index Cond: \(id = ANY \((.*?)\)\)", plan)
        assert cond is not None, plan
        # a constant here means the statement was planned for this call's ids (a custom plan, made per message)
        assert cond[1] == "$1", f"planned for this call's ids: {cond[0]}"
        assert "Bitmap" not in plan and "Seq Scan" not in plan, plan
