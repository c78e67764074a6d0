"""Regressions of review15's database findings (migration 20261213000900), through supabase-py on the real stack:
with two-step sign-in required, a staff session below aal2 learns nothing through `ticket_viewers()` and takes
nothing with `take_ticket()`; and nobody can insert a message marked "deleted by" someone."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from postgrest.exceptions import APIError

from tests.conftest import User, create_user
from tests.stackproc import StackProcess
from tests.test_staff_mfa_admin_gap import to_aal2
from tests.test_staff_mfa_rls import client_of, desk, set_required

__all__ = ["desk"]  # the fixture, used by name below


def _refused(call: object) -> APIError:
    with pytest.raises(APIError) as got:
        call.execute()  # type: ignore[attr-defined]
    assert got.value.code == "42501", got.value
    return got.value


def test_definer_functions_refuse_staff_below_aal2(stack: StackProcess, desk: tuple[User, User, User, str]) -> None:
    _, admin, _, ticket = desk
    other = create_user(stack.db_url, "agent")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("insert into private.ticket_viewers (ticket_id, user_id) values (%s, %s)", (ticket, admin.id))
        free = conn.execute(
            "insert into public.tickets (customer_id, subject) select customer_id, 'free' from public.tickets"
            " where id = %s returning id::text",
            (ticket,),
        ).fetchone()
    assert free is not None
    set_required(stack, True)
    sb = client_of(stack, other)
    # before: the viewers of every ticket, names and roles; the unassigned ticket taken
    # (the unassigned ticket: one this agent may open, so only the two-step rule can refuse it)
    for name, args in (
        ("ticket_viewers", {}),
        ("ticket_viewers", {"ticket": free[0]}),
        ("take_ticket", {"ticket": free[0]}),
    ):
        assert "two-step" in _refused(sb.rpc(name, args)).message, name
    with psycopg.connect(stack.db_url) as conn:
        assert conn.execute("select assignee_id from public.tickets where id = %s", (free[0],)).fetchone() == (None,)
    # after the code step the same agent sees the viewers and takes the ticket
    to_aal2(sb)
    seen = sb.rpc("ticket_viewers", {}).execute().data
    assert {"ticket_id": ticket, "user_id": admin.id} in [{k: v[k] for k in ("ticket_id", "user_id")} for v in seen]
    assert sb.rpc("take_ticket", {"ticket": free[0]}).execute().data[0]["outcome"] == "taken"


def test_a_new_message_is_never_deleted_by_anyone(stack: StackProcess, desk: tuple[User, User, User, str]) -> None:
    _, admin, customer, ticket = desk
    sb = client_of(stack, customer)
    mid = str(uuid.uuid4())
    sb.table("messages").insert(
        {"id": mid, "ticket_id": ticket, "content": "hello", "deleted_by": admin.id}, returning="minimal"
    ).execute()
    with psycopg.connect(stack.db_url) as conn:
        row = conn.execute("select deleted_by, deleted_at, content from public.messages where id = %s", (mid,))
        assert row.fetchone() == (None, None, "hello")
