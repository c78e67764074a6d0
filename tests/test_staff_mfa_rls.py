"""A project may require two-step sign-in of staff (migration 20261130000600, issue 17), through supabase-py on
the real stack: off by default (an agent signed in with a password alone works as before); on, a staff session
below aal2 reads, writes and takes nothing, joins no ticket channel, while customers are unaffected and an admin
can still read the setting; after a TOTP challenge the same agent's aal2 session sees its tickets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pyotp
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client

from tests.conftest import User, create_user
from tests.stackproc import StackProcess

OPEN: list[httpx.Client] = []  # closed after each test by the `desk` fixture


def client_of(stack: StackProcess, account: User) -> Client:
    http = httpx.Client(timeout=30)
    OPEN.append(http)
    c = create_client(stack.api_url, stack.anon_key, ClientOptions(auto_refresh_token=False, httpx_client=http))
    c.auth.sign_in_with_password({"email": account.email, "password": account.password})
    return c


def set_required(stack: StackProcess, on: bool) -> None:
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("update public.app_settings set staff_require_mfa = %s", (on,))


@pytest.fixture
def desk(stack: StackProcess) -> Iterator[tuple[User, User, User, str]]:
    agent, admin, customer = (create_user(stack.db_url, r) for r in ("agent", "admin", "customer"))
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into public.tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id",
            (customer.id, agent.id, f"MFA desk {uuid.uuid4()}"),
        ).fetchone()
        assert row is not None
        conn.execute(
            "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, 'hello')",
            (row[0], customer.id),
        )
    try:
        yield agent, admin, customer, str(row[0])
    finally:
        set_required(stack, False)
        while OPEN:
            OPEN.pop().close()


def test_off_by_default_a_password_session_works_as_before(
    stack: StackProcess, desk: tuple[User, User, User, str]
) -> None:
    agent, _, _, ticket = desk
    sb = client_of(stack, agent)
    assert [t["id"] for t in sb.table("tickets").select("id").eq("id", ticket).execute().data] == [ticket]
    assert sb.table("app_settings").select("staff_require_mfa").execute().data == [{"staff_require_mfa": False}]


def test_required_hides_everything_from_staff_below_aal2(
    stack: StackProcess, desk: tuple[User, User, User, str]
) -> None:
    agent, admin, customer, ticket = desk
    set_required(stack, True)
    sb = client_of(stack, agent)
    assert sb.table("tickets").select("id").eq("id", ticket).execute().data == []
    assert sb.table("messages").select("id").eq("ticket_id", ticket).execute().data == []
    with pytest.raises(APIError) as write:
        sb.table("messages").insert(
            {"id": str(uuid.uuid4()), "ticket_id": ticket, "sender_id": agent.id, "content": "at aal1"}
        ).execute()
    assert write.value.code == "42501"
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into public.tickets (customer_id, subject) values (%s, 'unassigned') returning id", (customer.id,)
        ).fetchone()
    assert row is not None
    with pytest.raises(APIError) as take:  # take_ticket is security definer: the trigger on tickets refuses it
        sb.rpc("take_ticket", {"ticket": str(row[0])}).execute()
    assert take.value.code == "42501" and "two-step sign-in" in (take.value.message or "")
    with psycopg.connect(stack.db_url) as conn:
        assert conn.execute("select assignee_id from public.tickets where id = %s", (row[0],)).fetchone() == (None,)
    assert [p["id"] for p in sb.table("profiles").select("id").eq("id", agent.id).execute().data] == [agent.id]
    # customers are not staff: unaffected
    mine = client_of(stack, customer).table("tickets").select("id").eq("id", ticket).execute().data
    assert [t["id"] for t in mine] == [ticket]
    # an admin at aal1 sees no tickets either and reads the switch (turning it off takes aal2:
    # tests/test_staff_mfa_admin_gap.py)
    boss = client_of(stack, admin)
    assert boss.table("tickets").select("id").eq("id", ticket).execute().data == []
    assert boss.table("app_settings").select("staff_require_mfa").execute().data == [{"staff_require_mfa": True}]


def test_an_aal2_session_of_the_same_agent_sees_its_tickets(
    stack: StackProcess, desk: tuple[User, User, User, str]
) -> None:
    agent, _, _, ticket = desk
    set_required(stack, True)
    sb = client_of(stack, agent)
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone"})  # the first factor: at aal1
    assert enrolled.totp is not None
    assert sb.table("tickets").select("id").eq("id", ticket).execute().data == []
    sb.auth.mfa.challenge_and_verify({"factor_id": enrolled.id, "code": pyotp.TOTP(enrolled.totp.secret).now()})
    session = sb.auth.get_session()
    assert session is not None
    sb.postgrest.auth(session.access_token)
    assert [t["id"] for t in sb.table("tickets").select("id").eq("id", ticket).execute().data] == [ticket]
    assert [m["content"] for m in sb.table("messages").select("content").eq("ticket_id", ticket).execute().data] == [
        "hello"
    ]
