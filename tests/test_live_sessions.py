"""Staff rights need a live session (migration 20261213000100): an access token whose session has ended carries no
staff or admin role, though the token itself is still unexpired and correctly signed.

Attacker cases (review14b): the outsider who signed an invited address up keeps their access token when the real
invitee accepts (the acceptance ends the outsider's session, not the JWT); a signed-out session's token. Before this
change both read and wrote the desk with the account's role until the token expired (1 h). Run against the real
localbase through the official client; nothing waits for an expiry.
"""

from __future__ import annotations

import json
import uuid

import httpx
import jwt
import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_invitations import (  # noqa: F401 (clients is a fixture)
    _signed_up_by_an_outsider,
    client,
    clients,
    code_for,
    new_email,
)
from tests.test_sync_support import sql


def with_token(stack: StackProcess, made: list[Client], access_token: str) -> Client:
    """A client that sends this access token and nothing else (no refresh: what a thief holds)."""
    c = create_client(
        stack.api_url,
        stack.anon_key,
        ClientOptions(
            auto_refresh_token=False,
            headers={"Authorization": f"Bearer {access_token}"},
            httpx_client=httpx.Client(timeout=30),
        ),
    )
    made.append(c)
    return c


def sees_customer(c: Client, users: Users) -> bool:
    """Staff see every profile; a customer sees only itself and the staff."""
    return bool(c.table("profiles").select("id").eq("id", users.customer.id).execute().data)


def refused_status(c: Client) -> APIError:
    with pytest.raises(APIError) as refused:
        c.rpc("sync_status", {"cursors": {"profiles": [0, 0]}}).execute()
    return refused.value


def test_the_outsiders_access_token_loses_the_role_when_the_invitee_accepts(
    stack: StackProcess, users: Users, clients: list[Client]
) -> None:
    address = new_email()
    mallory = _signed_up_by_an_outsider(stack, users, clients, address)  # invited as an admin
    held = mallory.auth.get_session()
    assert held is not None
    owner = client(stack, clients)
    owner.auth.verify_otp({"email": address, "token": code_for(stack, address), "type": "email"})
    assert owner.rpc("accept_invitation").execute().data == "admin"
    assert sees_customer(owner, users)  # the invitee's own session has the role

    stolen = with_token(stack, clients, held.access_token)  # the outsider's unexpired token, same `sub`
    assert not sees_customer(stolen, users)
    assert stolen.table("invitations").select("email").execute().data == []
    with pytest.raises(APIError) as refused:
        stolen.table("invitations").insert({"email": new_email(), "role": "admin"}).execute()
    assert refused.value.code == "42501"
    renamed = stolen.table("profiles").update({"display_name": "mallory"}).eq("id", users.customer.id).execute()
    assert renamed.data == []  # an admin's write: no row it may touch
    assert refused_status(stolen).code == "PT401"  # the app's pull is told, not served an empty desk


def test_a_signed_out_sessions_access_token_loses_the_staff_role(
    stack: StackProcess, users: Users, clients: list[Client]
) -> None:
    for account in (users.agent, users.admin):
        c = client(stack, clients)
        c.auth.sign_in_with_password({"email": account.email, "password": account.password})
        held = c.auth.get_session()
        assert held is not None
        before = with_token(stack, clients, held.access_token)
        assert sees_customer(before, users)
        assert before.rpc("sync_status", {"cursors": {"profiles": [0, 0]}}).execute().data["horizon"] > 0
        c.auth.sign_out({"scope": "local"})
        after = with_token(stack, clients, held.access_token)
        assert not sees_customer(after, users), account.role
        assert after.table("tags").select("id").execute().data == []
        with pytest.raises(APIError) as refused:  # a staff-only write: a ticket for someone else
            after.table("tickets").insert({"customer_id": users.customer.id, "subject": "x"}).execute()
        assert refused.value.code == "42501"
        assert refused_status(after).code == "PT401"


def test_a_token_naming_no_live_session_of_its_user_has_no_staff_role(
    stack: StackProcess, users: Users, clients: list[Client]
) -> None:
    """A correctly signed token (the project's secret) whose `session_id` names no session, none at all, or another
    user's live session is no staff token; the same token naming the agent's own live session is."""
    live = stack.mint(sub=users.agent.id)
    assert sees_customer(with_token(stack, clients, live), users)
    claims = jwt.decode(live, options={"verify_signature": False})
    customers = jwt.decode(stack.mint(sub=users.customer2.id), options={"verify_signature": False})["session_id"]
    for session_id in ("not-a-uuid", str(uuid.uuid4()), customers, None):
        forged = (
            {**claims, "session_id": session_id}
            if session_id
            else {k: v for k, v in claims.items() if k != "session_id"}
        )
        token = jwt.encode(forged, stack.jwt_secret, algorithm="HS256")
        assert not sees_customer(with_token(stack, clients, token), users), session_id


def test_a_message_from_an_ended_session_is_a_customers_not_staffs(
    stack: StackProcess, users: Users, clients: list[Client]
) -> None:
    """Attacking the change (migration 20261213000110): the outsider's old token keeps a customer's rights on the
    account's own tickets, and the message trigger read the sender's role from `profiles`: a message posted there
    counted as the account's staff reply (the ticket's first response) and its mention notified an agent."""
    address = new_email()
    mallory = _signed_up_by_an_outsider(stack, users, clients, address)
    held = mallory.auth.get_session()
    assert held is not None and held.user is not None
    ticket = mallory.table("tickets").insert({"customer_id": held.user.id, "subject": "mine"}).execute().data[0]["id"]
    owner = client(stack, clients)
    owner.auth.verify_otp({"email": address, "token": code_for(stack, address), "type": "email"})
    assert owner.rpc("accept_invitation").execute().data == "admin"

    stolen = with_token(stack, clients, held.access_token)
    text = f"see @[Agent]({users.agent.id})"
    stolen.table("messages").insert({"ticket_id": ticket, "content": text}).execute()  # a customer may
    rows = sql(stack.db_url, "select first_response_at from public.tickets where id = %s", ticket)
    assert rows == [(None,)]
    assert sql(stack.db_url, "select 1 from public.mentions where ticket_id = %s", ticket) == []
    assert (
        sql(stack.db_url, "select 1 from public.notifications where ticket_id = %s and reason = 'mention'", ticket)
        == []
    )


HELPERS = (
    "select private.session_is_live()",
    "select private.is_staff()",
    "select private.is_admin()",
    "select private.user_role(auth.uid()) in ('agent', 'admin')",
)


def asks(stack: StackProcess, claims: dict[str, object]) -> list[bool]:
    """Each session helper's answer for a caller with these claims (as PostgREST sets them: role, then claims)."""
    answers = []
    with psycopg.connect(stack.db_url) as conn:
        for query in HELPERS:
            conn.execute(
                "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                (json.dumps(claims),),
            )
            row = conn.execute(query).fetchone()
            answers.append(bool(row and row[0]))
            conn.rollback()
    return answers


def test_the_session_is_found_by_its_key_among_many_and_only_in_its_canonical_spelling(
    stack: StackProcess, users: Users
) -> None:
    """Migration 20261218000100 looks the token's session up by primary key: the admin's own session is found among
    hundreds of its sessions (the lookup no longer walks them, bench realtime_rls_check), and every other spelling of
    the same UUID that `uuid_in` accepts names no session, as when the ids were compared as text."""
    sessions = [stack.mint(sub=users.admin.id) for _ in range(300)]
    claims = jwt.decode(sessions[150], options={"verify_signature": False})
    assert asks(stack, claims) == [True, True, True, True]
    own = str(claims["session_id"])
    spellings = [own.upper(), "{" + own + "}", own.replace("-", ""), " " + own, own + "\n", own[:-1]]
    for spelling in spellings:
        assert asks(stack, {**claims, "session_id": spelling}) == [False] * 4, spelling
    others = jwt.decode(stack.mint(sub=users.agent.id), options={"verify_signature": False})["session_id"]
    assert asks(stack, {**claims, "session_id": others}) == [False] * 4  # a live session, not the admin's
    sql(stack.db_url, "update auth.sessions set not_after = now() - interval '1 second' where id = %s", own)
    assert asks(stack, claims) == [False] * 4  # a time-boxed session past its end
