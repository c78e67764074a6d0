"""Invitations with a server-chosen role, as the app uses them (issue 17): an admin writes (email, role)
under RLS and has Auth email the address a code; the invitee signs in with the code and accepts, and
only then has the role. Attacker cases: non-admins cannot invite or read invitations, a password
session cannot accept, an account registered before the invitation cannot take it, anon cannot call it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import bcrypt
import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client
from supabase_auth.errors import AuthApiError

from tests.conftest import Users
from tests.stackproc import StackProcess

PASSWORD = "invited-Passw0rd"


def new_email() -> str:
    return f"invitee-{uuid.uuid4().hex[:10]}@test.supportchat.local"


@pytest.fixture
def clients(stack: StackProcess) -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for c in made:
        c.auth.close()


def client(stack: StackProcess, made: list[Client]) -> Client:
    c = create_client(
        stack.api_url,
        stack.anon_key,
        ClientOptions(auto_refresh_token=False, flow_type="implicit", httpx_client=httpx.Client(timeout=30)),
    )
    made.append(c)
    return c


def code_for(stack: StackProcess, address: str) -> str:
    headers = {"apikey": stack.service_role_key}
    listed = httpx.get(f"{stack.api_url}/inbox/api/v1/messages", headers=headers, timeout=30).json()["messages"]
    newest = next(m for m in listed if m["To"][0]["Address"] == address)
    text = httpx.get(f"{stack.api_url}/inbox/api/v1/message/{newest['ID']}", headers=headers, timeout=30).json()["Text"]
    found = re.search(r"code: (\d{6})", text)
    assert found, text
    return found.group(1)


def invite(stack: StackProcess, made: list[Client], users: Users, address: str, role: str) -> None:
    admin = client(stack, made)
    admin.auth.sign_in_with_password({"email": users.admin.email, "password": users.admin.password})
    admin.table("invitations").insert({"email": address, "role": role}).execute()
    client(stack, made).auth.sign_in_with_otp({"email": address, "options": {"should_create_user": True}})


def refused_acceptance(stack: StackProcess, made: list[Client], address: str) -> tuple[Client, APIError]:
    """The address's owner signs in with the emailed code and tries to accept: the client and the refusal."""
    owner = client(stack, made)
    owner.auth.verify_otp({"email": address, "token": code_for(stack, address), "type": "email"})
    with pytest.raises(APIError) as refused:
        owner.rpc("accept_invitation").execute()
    return owner, refused.value


def test_invitee_accepts_with_the_emailed_code_and_gets_the_chosen_role(
    stack: StackProcess, users: Users, clients: list[Client]
) -> None:
    address = new_email()
    invite(stack, clients, users, address, "agent")
    invitee = client(stack, clients)
    invitee.auth.verify_otp({"email": address, "token": code_for(stack, address), "type": "email"})
    assert invitee.rpc("accept_invitation").execute().data == "agent"
    invitee.auth.update_user({"password": PASSWORD})
    later = client(stack, clients)
    session = later.auth.sign_in_with_password({"email": address, "password": PASSWORD})
    assert session.user is not None
    me = later.table("profiles").select("role").eq("id", session.user.id).single().execute()
    assert me.data == {"role": "agent"}
    with pytest.raises(APIError):  # once only
        invitee.rpc("accept_invitation").execute()


def test_non_admins_cannot_invite_or_read_invitations(stack: StackProcess, users: Users, clients: list[Client]) -> None:
    for account in (users.agent, users.customer):
        c = client(stack, clients)
        c.auth.sign_in_with_password({"email": account.email, "password": account.password})
        with pytest.raises(APIError) as refused:
            c.table("invitations").insert({"email": new_email(), "role": "admin"}).execute()
        assert refused.value.code == "42501"
        assert c.table("invitations").select("*").execute().data == []
    with pytest.raises(APIError):
        client(stack, clients).table("invitations").select("*").execute()  # anon: no grant at all


def test_a_password_session_cannot_accept(stack: StackProcess, users: Users, clients: list[Client]) -> None:
    address = new_email()
    invite(stack, clients, users, address, "admin")
    invitee = client(stack, clients)
    invitee.auth.verify_otp({"email": address, "token": code_for(stack, address), "type": "email"})
    invitee.auth.update_user({"password": PASSWORD})  # set a password before accepting
    by_password = client(stack, clients)
    by_password.auth.sign_in_with_password({"email": address, "password": PASSWORD})
    with pytest.raises(APIError) as refused:
        by_password.rpc("accept_invitation").execute()
    assert refused.value.code == "42501"


def test_an_account_registered_before_the_invitation_cannot_take_it(
    stack: StackProcess, users: Users, clients: list[Client]
) -> None:
    address = new_email()
    squatter = client(stack, clients)
    squatter.auth.sign_up({"email": address, "password": "squatter-Passw0rd"})
    invite(stack, clients, users, address, "admin")
    owner, refused = refused_acceptance(stack, clients, address)
    assert refused.code == "42501" and "before it was invited" in str(refused.message)
    user = owner.auth.get_user()
    assert user is not None
    me = owner.table("profiles").select("role").eq("id", user.user.id).execute()
    assert me.data == [{"role": "customer"}]


def test_anon_cannot_call_accept(stack: StackProcess, clients: list[Client]) -> None:
    with pytest.raises(APIError) as refused:
        client(stack, clients).rpc("accept_invitation").execute()
    assert refused.value.code == "42501"  # the function exists; anon may not execute it


def test_an_account_that_switches_to_the_invited_address_cannot_take_it(
    stack: StackProcess, users: Users, clients: list[Client]
) -> None:
    """Regression (security review): with confirmations off an email change applies at once and the
    session keeps its `otp` amr entry, so an outsider signed in by a code to their own mailbox could
    move onto an invited address that had no account yet, refresh, and accept an admin invitation."""
    address = new_email()
    admin = client(stack, clients)
    admin.auth.sign_in_with_password({"email": users.admin.email, "password": users.admin.password})
    admin.table("invitations").insert({"email": address, "role": "admin"}).execute()  # no account created yet
    own = new_email()
    mallory = client(stack, clients)
    mallory.auth.sign_in_with_otp({"email": own, "options": {"should_create_user": True}})
    mallory.auth.verify_otp({"email": own, "token": code_for(stack, own), "type": "email"})
    mallory.auth.update_user({"email": address})
    session = mallory.auth.refresh_session()
    assert session.user is not None and session.user.email == address
    with pytest.raises(APIError) as refused:
        mallory.rpc("accept_invitation").execute()
    assert refused.value.code == "42501"
    me = mallory.table("profiles").select("role").eq("id", session.user.id).execute()
    assert me.data == [{"role": "customer"}]
    pending = admin.table("invitations").select("accepted_at").eq("email", address).execute()
    assert pending.data == [{"accepted_at": None}]


MALLORY = "mallory-Passw0rd"


def _signed_up_by_an_outsider(stack: StackProcess, users: Users, clients: list[Client], address: str) -> Client:
    """The admin's code request failed after the invitation row committed (Auth rolled its new user back: the
    email budget spent by anyone's /otp requests), so the invitation has no account; an outsider who knows the
    address signs it up with their own password (the account the invitation binds); the admin sends the code
    again."""
    admin = client(stack, clients)
    admin.auth.sign_in_with_password({"email": users.admin.email, "password": users.admin.password})
    admin.table("invitations").insert({"email": address, "role": "admin"}).execute()
    mallory = client(stack, clients)
    mallory.auth.sign_up({"email": address, "password": MALLORY})
    client(stack, clients).auth.sign_in_with_otp({"email": address, "options": {"should_create_user": True}})
    return mallory


def test_accepting_ends_the_sessions_of_whoever_else_held_the_account(
    stack: StackProcess, users: Users, clients: list[Client]
) -> None:
    """Regression (review14, invitation pre-hijack): the real invitee's acceptance put the role on the account
    the outsider signed up, whose password and session they kept. Now the acceptance ends the outsider's session
    (no refresh) and their password no longer signs in."""
    address = new_email()
    mallory = _signed_up_by_an_outsider(stack, users, clients, address)
    held = mallory.auth.get_session()
    assert held is not None
    owner = client(stack, clients)
    owner.auth.verify_otp({"email": address, "token": code_for(stack, address), "type": "email"})
    assert owner.rpc("accept_invitation").execute().data == "admin"
    with pytest.raises(AuthApiError):
        client(stack, clients).auth.refresh_session(held.refresh_token)
    with pytest.raises(AuthApiError):
        client(stack, clients).auth.sign_in_with_password({"email": address, "password": MALLORY})


def test_an_invitee_signed_in_elsewhere_still_accepts(stack: StackProcess, users: Users, clients: list[Client]) -> None:
    """Review14b: refusing while another session existed locked the invitee out for good when they had followed
    the email's link (a session of its own), an earlier try had stopped after its code, or the account was open on
    another device. The acceptance goes through and ends the other session."""
    address = new_email()
    invite(stack, clients, users, address, "agent")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:  # the account already open somewhere else
        hashed = bcrypt.hashpw(b"elsewhere-Passw0rd", bcrypt.gensalt(4)).decode()
        conn.execute("update auth.users set encrypted_password = %s where email = %s", (hashed, address))
    elsewhere = client(stack, clients)
    elsewhere.auth.sign_in_with_password({"email": address, "password": "elsewhere-Passw0rd"})
    earlier = elsewhere.auth.get_session()
    assert earlier is not None
    invitee = client(stack, clients)
    invitee.auth.verify_otp({"email": address, "token": code_for(stack, address), "type": "email"})
    assert invitee.rpc("accept_invitation").execute().data == "agent"
    with pytest.raises(AuthApiError):
        client(stack, clients).auth.refresh_session(earlier.refresh_token)
    invitee.auth.update_user({"password": PASSWORD})  # what the app does next: the invitee's own session stays
    assert client(stack, clients).auth.sign_in_with_password({"email": address, "password": PASSWORD}).user


def test_accepting_clears_a_password_chosen_before_the_acceptance(
    stack: StackProcess, users: Users, clients: list[Client]
) -> None:
    """The same outsider without a session (signed out; with confirmations on they never had one): the invitee
    accepts, and the outsider's password no longer signs in to the account that now has the role."""
    address = new_email()
    _signed_up_by_an_outsider(stack, users, clients, address).auth.sign_out()
    owner = client(stack, clients)
    owner.auth.verify_otp({"email": address, "token": code_for(stack, address), "type": "email"})
    assert owner.rpc("accept_invitation").execute().data == "admin"
    with pytest.raises(AuthApiError):
        client(stack, clients).auth.sign_in_with_password({"email": address, "password": MALLORY})
    owner.auth.update_user({"password": PASSWORD})  # what the app does next
    session = client(stack, clients).auth.sign_in_with_password({"email": address, "password": PASSWORD})
    assert session.user is not None
