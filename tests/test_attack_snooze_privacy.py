"""A customer cannot learn when staff snoozed their ticket (migration 20261216000100), tried as an attacker would,
through the official clients on the real stack.

Before, the time was `tickets.snoozed_until`: RLS decides rows, not columns, so the customer's own ticket carried it
through REST (`select=*`), realtime's ticket UPDATEs and the `sync_*` pages. It now lives in the staff-only
`ticket_snoozes`. Each test here fails on the schema before that migration: the setup snoozes a ticket as that schema
stored it (``_snooze``), and the customer then read the time on every path; the table's own refusals did not exist.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import Users
from tests.realtime.support import close_all, listen, signed_in, wait_until
from tests.stackproc import StackProcess
from tests.test_history_rls import As, as_, new_ticket, refused, snooze, snoozed
from tests.test_rest_clients import clients_fixture
from tests.test_sync_counts import _as, http  # noqa: F401  (http: the fixture, shared)

uses_clients = clients_fixture
uses_as = as_
pytestmark = [
    pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning"),
    pytest.mark.timeout(120),
]


@pytest.fixture
async def closing() -> AsyncIterator[None]:
    yield
    await close_all()


def _until() -> datetime:
    return (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)


def _snooze(db_url: str, ticket: str, until: datetime) -> None:
    """Snooze as the superuser, as the schema at hand stores it: the ticket pending, and the time in
    `ticket_snoozes`, or on the ticket's row where that table does not exist (the schema before 20261216000100,
    so that each test shows the leak it closes there)."""
    with psycopg.connect(db_url, autocommit=True) as conn, conn.transaction():
        conn.execute("update public.tickets set status = 'pending' where id = %s", (ticket,))
        if conn.execute("select to_regclass('public.ticket_snoozes') is null").fetchone() == (True,):
            conn.execute("update public.tickets set snoozed_until = %s where id = %s", (until, ticket))
        else:
            conn.execute(
                "insert into public.ticket_snoozes (ticket_id, snoozed_until) values (%s, %s)", [ticket, until]
            )


def _no_snooze(rows: list[Mapping[str, Any]], until: datetime) -> None:
    """No row carries the column, nor the time under another name."""
    assert rows
    for row in rows:
        assert "snoozed_until" not in row, row
        for value in row.values():
            if isinstance(value, str) and value[:4].isdigit():
                try:
                    assert datetime.fromisoformat(value.replace("Z", "+00:00")) != until, row
                except ValueError:
                    continue


def test_the_customer_s_own_ticket_row_carries_no_snooze(as_: As, users: Users, stack: StackProcess) -> None:
    ticket, until = new_ticket(as_, users), _until()
    _snooze(stack.db_url, ticket, until)
    customer = as_("customer")
    row = customer.table("tickets").select("*").eq("id", ticket).single().execute().data
    assert row["status"] == "pending"
    _no_snooze([row], until)
    # nor when asked for by name, nor through an embed of the new table (RLS shows the customer no row of it)
    refused(lambda: customer.table("tickets").select("id,snoozed_until").eq("id", ticket).execute(), "42703")
    embedded = customer.table("tickets").select("id,ticket_snoozes(*)").eq("id", ticket).single().execute().data
    assert embedded == {"id": ticket, "ticket_snoozes": None}


def test_the_customer_s_sync_pages_carry_no_snooze(as_: As, users: Users, stack: StackProcess) -> None:
    ticket, until = new_ticket(as_, users), _until()
    _snooze(stack.db_url, ticket, until)
    customer = as_("customer")
    pages = {
        "sync_tickets": customer.rpc("sync_tickets", {"max_rows": 1000}).execute().data,
        "sync_batch": customer.rpc("sync_batch", {"table_name": "tickets", "max_rows": 10000}).execute().data,
        "sync_tickets_scoped": customer.rpc("sync_tickets_scoped", {"since": "1970-01-01T00:00:00Z"}).execute().data,
    }
    for name, rows in pages.items():
        mine = [r for r in rows if r["id"] == ticket]
        assert len(mine) == 1, name
        _no_snooze(mine, until)


async def test_the_customer_s_realtime_ticket_updates_carry_no_snooze(
    stack: StackProcess, users: Users, closing: None
) -> None:
    as_customer = await signed_in(stack, users.customer)
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        ticket = str(
            conn.execute(
                "insert into public.tickets (customer_id, assignee_id, subject) values (%s, %s, 'snooze me')"
                " returning id",
                (users.customer.id, users.agent.id),
            ).fetchone()[0]  # type: ignore[index]
        )
    own = await listen(
        as_customer,
        "own-ticket",
        {"event": "*", "table": "tickets", "filter": f"id=eq.{ticket}"},
        {"event": "*", "table": "ticket_snoozes"},
        wait_system=False,
    )
    until = _until()
    _snooze(stack.db_url, ticket, until)
    with psycopg.connect(stack.db_url, autocommit=True) as conn:  # then something the customer may see changes
        conn.execute("update public.tickets set priority = 'high' where id = %s", (ticket,))
    await wait_until(
        lambda: any(r.get("priority") == "high" for r in own.records("tickets")), what="the priority's UPDATE"
    )
    _no_snooze(own.records("tickets"), until)
    assert own.records("ticket_snoozes") == []


def test_customers_neither_read_nor_write_snoozes_and_staff_do(
    as_: As, users: Users, stack: StackProcess, http: httpx.Client
) -> None:
    ticket, until = new_ticket(as_, users), _until()
    _snooze(stack.db_url, ticket, until)
    agent = as_("agent")
    assert [datetime.fromisoformat(r["snoozed_until"]) for r in snoozed(agent, ticket)] == [until]
    assert [r["ticket_id"] for r in agent.rpc("sync_ticket_snoozes", {}).execute().data].count(ticket) == 1
    assert (
        "ticket_snoozes"
        in _as(stack, http, users.agent.id).rpc("sync_changed", {"cursors": {"ticket_snoozes": [0, 0]}}).execute().data
    )
    for who in ("customer", "customer2"):
        c = as_(who)
        assert c.table("ticket_snoozes").select("*").execute().data == []
        assert c.rpc("sync_ticket_snoozes", {}).execute().data == []
        assert c.rpc("sync_count", {"table_name": "ticket_snoozes"}).execute().data == 0
        assert (
            _as(stack, http, getattr(users, who).id)
            .rpc("sync_changed", {"cursors": {"ticket_snoozes": [0, 0]}})
            .execute()
            .data
            == []
        )
        # writes: an insert or upsert is refused, an update finds no row, a delete is not granted
        refused(lambda c=c: snooze(c, ticket, None))
        refused(lambda c=c: c.table("ticket_snoozes").insert({"ticket_id": ticket, "snoozed_until": None}).execute())
        assert c.table("ticket_snoozes").update({"snoozed_until": None}).eq("ticket_id", ticket).execute().data == []
        refused(lambda c=c: c.table("ticket_snoozes").delete().eq("ticket_id", ticket).execute())
    anon = as_("anon")
    refused(lambda: anon.table("ticket_snoozes").select("*").execute())
    refused(lambda: anon.rpc("sync_ticket_snoozes", {}).execute())
    assert [datetime.fromisoformat(r["snoozed_until"]) for r in snoozed(agent, ticket)] == [until]
    # the agent unsnoozes: clearing is an update to null (pulls see it; clients never delete)
    assert snooze(agent, ticket, None)["snoozed_until"] is None
    refused(lambda: agent.table("ticket_snoozes").delete().eq("ticket_id", ticket).execute())


@pytest.mark.parametrize("until", ["infinity", "-infinity", "20000-01-01", "1969-12-31T23:59:59Z", "in 366 days"])
def test_a_snooze_outside_the_bounds_is_still_refused(as_: As, users: Users, until: str) -> None:
    ticket = new_ticket(as_, users, status="pending")
    if until == "in 366 days":
        until = (datetime.now(UTC) + timedelta(days=366)).isoformat()
    err = refused(lambda: snooze(as_("agent"), ticket, until), "22008")
    assert err.message == "a ticket is snoozed until a time at most a year from now"
    assert snoozed(as_("agent"), ticket) == []


DEFINER = """
  create function public.review20_definer_snooze(ticket uuid, until timestamptz) returns void
  language sql security definer set search_path = '' as $$
    insert into public.ticket_snoozes (ticket_id, snoozed_until) values (ticket, until)
    on conflict (ticket_id) do update set snoozed_until = excluded.snoozed_until
  $$
"""


@pytest.mark.parametrize("caller", ["customer", "agent"])
def test_a_definer_called_by_a_customer_cannot_snooze_but_clears(
    as_: As, users: Users, stack: StackProcess, caller: str
) -> None:
    """review20 L3: inside a security definer function ``current_user`` is its owner, so the guard reads the API role
    from the request's claims (as PostgREST sets them): a customer's call cannot snooze, a staff member's can, and
    either clears a snooze (tickets_clear_snooze does, for a customer's reply). The function exists only inside the
    test's transaction."""
    ticket = new_ticket(as_, users)
    person = users.customer if caller == "customer" else users.agent
    session = str(uuid.uuid4())
    stack.live_session(person.id, session)  # staff is staff with a live session (private.is_staff)
    claims = json.dumps({"role": "authenticated", "sub": person.id, "aal": "aal2", "session_id": session})
    with psycopg.connect(stack.db_url) as conn:
        conn.execute("update public.tickets set status = 'pending' where id = %s", (ticket,))
        conn.execute(DEFINER)
        conn.execute("grant execute on function public.review20_definer_snooze(uuid, timestamptz) to authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        conn.execute("set local role authenticated")
        if caller == "customer":
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only staff snooze"), conn.transaction():
                conn.execute("select public.review20_definer_snooze(%s, %s)", (ticket, _until()))
        else:
            conn.execute("select public.review20_definer_snooze(%s, %s)", (ticket, _until()))
        conn.execute("reset role")
        conn.execute("select set_config('request.jwt.claims', '', true)")  # the superuser's own snooze
        conn.execute(
            "insert into public.ticket_snoozes (ticket_id, snoozed_until) values (%s, %s)"
            " on conflict (ticket_id) do update set snoozed_until = excluded.snoozed_until",
            (ticket, _until()),
        )
        conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        conn.execute("set local role authenticated")
        conn.execute("select public.review20_definer_snooze(%s, null)", (ticket,))  # clearing is anyone's
        conn.execute("reset role")
        got = conn.execute("select snoozed_until from public.ticket_snoozes where ticket_id = %s", (ticket,)).fetchall()
        conn.rollback()
    assert got == [(None,)]
