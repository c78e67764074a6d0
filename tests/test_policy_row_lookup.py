"""The ticket-scoped policies asked one row at a time (migration 20261203000300): same rows, as an attacker tries.

`messages_select` (and the other policies scoped to a visible ticket) now test `exists (select 1 from tickets
where id = row.ticket_id)` instead of membership in the set of every visible ticket; PostgreSQL picks per
statement between an index lookup per row (a few rows: a realtime check, a single-message read, an insert's
WITH CHECK) and the hashed set (a bulk read). Both ways must let through exactly the rows the old policy did, for
every kind of caller: checked here against an explicit matrix through the official client (single-row reads,
the attacker's way of probing other tickets) and through both plan shapes in PostgreSQL, and the single-row
shape must really be a lookup (that is what makes a realtime check cheap; it failed before the migration).

World (fresh users): customer c1 owns t_open (unassigned) and t_a2 (assigned to agent a2); customer c2 owns
t_a1 (assigned to agent a1) and t_done (closed, unassigned). Each ticket has a customer message; t_open and
t_a1 also an internal note.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from supabase import Client

from tests.conftest import User, create_user
from tests.stackproc import StackProcess, session_claims
from tests.test_rest_clients import ClientFactory, clients_fixture

uses_clients = clients_fixture
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

WHO = ("c1", "c2", "a1", "a2", "admin")


@dataclass(frozen=True)
class World:
    people: dict[str, User]
    tickets: dict[str, str]  # name -> id
    messages: dict[str, str]  # "<ticket>" or "<ticket>/note" -> id


def _expected(world: World) -> dict[str, set[str]]:
    """Who reads which message, written out: owners read their tickets' public messages, agents their own and the
    unassigned tickets' messages with the notes, admins everything."""
    m = world.messages
    public = {t: m[t] for t in world.tickets}
    return {
        "c1": {public["t_open"], public["t_a2"]},
        "c2": {public["t_a1"], public["t_done"]},
        "a1": {public["t_open"], m["t_open/note"], public["t_a1"], m["t_a1/note"], public["t_done"]},
        "a2": {public["t_open"], m["t_open/note"], public["t_a2"], public["t_done"]},
        "admin": set(m.values()),
    }


@pytest.fixture(scope="module")
def world(stack: StackProcess) -> World:
    people = {
        "c1": create_user(stack.db_url, "customer"),
        "c2": create_user(stack.db_url, "customer"),
        "a1": create_user(stack.db_url, "agent"),
        "a2": create_user(stack.db_url, "agent"),
        "admin": create_user(stack.db_url, "admin"),
    }
    owners = {"t_open": ("c1", None), "t_a2": ("c1", "a2"), "t_a1": ("c2", "a1"), "t_done": ("c2", None)}
    tickets: dict[str, str] = {}
    messages: dict[str, str] = {}
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        for name, (customer, agent) in owners.items():
            row = conn.execute(
                "insert into public.tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id::text",
                (people[customer].id, people[agent].id if agent else None, name),
            ).fetchone()
            assert row is not None
            tickets[name] = row[0]
            for key, sender, internal in ((name, customer, False), (f"{name}/note", "admin", True)):
                if internal and name not in ("t_open", "t_a1"):
                    continue
                row = conn.execute(
                    "insert into public.messages (ticket_id, sender_id, content, is_internal)"
                    " values (%s, %s, %s, %s) returning id::text",
                    (tickets[name], people[sender].id, f"row-lookup {key}", internal),
                ).fetchone()
                assert row is not None
                messages[key] = row[0]
        conn.execute("update public.tickets set status = 'closed' where id = %s", (tickets["t_done"],))
    return World(people, tickets, messages)


@pytest.fixture(scope="module")
def as_(stack: StackProcess, world: World, clients: ClientFactory) -> dict[str, Client]:
    return {who: clients(stack.mint(sub=world.people[who].id)) for who in WHO}


@pytest.fixture
def sql_as(stack: StackProcess, world: World) -> Iterator[Any]:
    """Run one statement as a caller, the way PostgREST does (role and claims local to one transaction)."""
    with psycopg.connect(stack.db_url) as conn:

        def run(who: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
            claims = json.dumps(session_claims(stack.db_url, world.people[who].id))
            with conn.transaction(force_rollback=True):
                conn.execute(
                    "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                    (claims,),
                )
                return conn.execute(query, params).fetchall()

        yield run


@pytest.mark.parametrize("who", WHO)
def test_single_message_reads_follow_the_matrix(world: World, as_: dict[str, Client], who: str) -> None:
    """Probing every message by id (the attacker's way, one row per request) shows exactly the matrix."""
    seen = set()
    for message in world.messages.values():
        rows = as_[who].table("messages").select("id").eq("id", message).execute().data
        seen |= {row["id"] for row in rows}
    assert seen == _expected(world)[who]


@pytest.mark.parametrize("who", WHO)
def test_bulk_and_single_row_plans_agree(world: World, sql_as: Any, who: str) -> None:
    """The hashed set (a read of the whole table) and the per-row lookup (by id) let through the same rows."""
    ours = list(world.messages.values())
    bulk = {r[0] for r in sql_as(who, "select id::text from public.messages") if r[0] in ours}
    single = {r[0] for m in ours for r in sql_as(who, "select id::text from public.messages where id = %s", (m,))}
    assert bulk == single == _expected(world)[who]


@pytest.mark.parametrize("who", WHO)
def test_tickets_follow_the_matrix(world: World, as_: dict[str, Client], who: str) -> None:
    """tickets_select now asks the caller's role once (a CASE instead of is_admin() and user_role()): same tickets."""
    t = world.tickets
    expected = {
        "c1": {t["t_open"], t["t_a2"]},
        "c2": {t["t_a1"], t["t_done"]},
        "a1": {t["t_open"], t["t_a1"], t["t_done"]},
        "a2": {t["t_open"], t["t_a2"], t["t_done"]},
        "admin": set(t.values()),
    }[who]
    rows = as_[who].table("tickets").select("id").in_("id", list(t.values())).execute().data
    assert {row["id"] for row in rows} == expected


def test_foreign_insert_and_read_receipt_refused(world: World, as_: dict[str, Client]) -> None:
    """The WITH CHECKs asked per row still refuse a message or a read marker on a ticket the caller cannot see."""
    for who, foreign in (("c1", "t_a1"), ("a1", "t_a2"), ("c2", "t_open")):
        with pytest.raises(Exception, match="row-level security"):
            as_[who].table("messages").insert({"ticket_id": world.tickets[foreign], "content": "x"}).execute()
        with pytest.raises(Exception, match="row-level security"):
            as_[who].table("ticket_reads").insert(
                {"ticket_id": world.tickets[foreign], "user_id": world.people[who].id}
            ).execute()
    # and on its own ticket the same caller may write: the refusal above is the policy, not a broken insert
    ok = as_["c1"].table("messages").insert({"ticket_id": world.tickets["t_open"], "content": "mine"}).execute()
    assert ok.data[0]["ticket_id"] == world.tickets["t_open"]


def test_a_single_row_check_looks_the_ticket_up(stack: StackProcess, world: World) -> None:
    """The realtime check's shape (a few rows by key) on a desk of 2,000 tickets reads the one ticket by its key
    instead of hashing every visible ticket first (the old policy's only plan: 1.3-1.8 ms per subscriber at 5,000
    visible tickets). PostgreSQL picks the shape by cost, so the desk is made big enough to matter (inside a
    transaction that is rolled back: a table of a few tickets is hashed as cheaply as it is probed)."""
    with psycopg.connect(stack.db_url) as conn, conn.transaction(force_rollback=True):
        conn.execute(
            "insert into public.tickets (customer_id, subject) select %s, 'desk ' || g from generate_series(1, 2000) g",
            (world.people["c2"].id,),
        )
        for who in ("a1", "admin"):
            claims = json.dumps(session_claims(stack.db_url, world.people[who].id))
            conn.execute(
                "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                (claims,),
            )
            row = conn.execute(
                "explain (format json) select id from public.messages where id = any(%s::uuid[])",
                (list(world.messages.values())[:1],),
            ).fetchone()
            assert row is not None
            text = json.dumps(row[0])
            assert "tickets_pkey" in text, text
            assert '"Subplan Name": "SubPlan' in text and "hashed SubPlan" not in text, text
            conn.execute("select set_config('role', 'none', true)")
