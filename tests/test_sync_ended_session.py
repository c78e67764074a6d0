"""The app's own session ended on the server while its access token is still unexpired (signed out of every device
elsewhere, or an invitation accepted on another device, which ends the account's other sessions): staff rights need
a live session (migration 20261213000100), so the app must not go on pulling a desk that now looks empty. Its next
pull is refused (`sync_status` answers 401), its refresh too, and it asks its user to sign in again with the cache
untouched; a role change seen by a pull refreshes the session before the cache is rebuilt for the new role.
Real localbase, real engine.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import bcrypt
import psycopg
import pytest
from supabase import Client

from supportchat_app.account import Account, AccountError
from sync.errors import AuthError
from tests.conftest import Users, create_user
from tests.stackproc import StackProcess, live_session
from tests.test_invitations import client, clients, code_for, invite, new_email  # noqa: F401 (a fixture)
from tests.test_role_change import _role_changes
from tests.test_sync_support import EngineFactory, seed_ticket, sql

pytestmark = pytest.mark.timeout(120)


async def test_signed_out_everywhere_the_next_pull_asks_to_sign_in_and_keeps_the_desk(
    stack: StackProcess, users: Users, engines: EngineFactory, clients: list[Client]
) -> None:
    ticket = seed_ticket(stack.db_url, users.customer, None, "Unassigned", messages=[(users.customer, "hello")])
    engine = await engines.open(users.agent)
    await engine.sync_once()
    assert engine.cache.has_ticket(ticket)
    elsewhere = client(stack, clients)
    elsewhere.auth.sign_in_with_password({"email": users.agent.email, "password": users.agent.password})
    elsewhere.auth.sign_out({"scope": "global"})  # every session of the account, this engine's too

    with pytest.raises(AuthError) as refused:
        await engine.sync_once()
    assert refused.value.refused
    assert engine.cache.has_ticket(ticket)  # no prune from an answer given to an ended session
    await engine.sign_in(users.agent.email, users.agent.password)  # the same user carries on
    await engine.sync_once()
    assert engine.cache.has_ticket(ticket)


async def test_writes_queued_after_the_session_ended_elsewhere_stay_queued(
    stack: StackProcess, users: Users, engines: EngineFactory, clients: list[Client]
) -> None:
    """review15b: the push runs before the pull that notices the ended session, and with a customer's rights only
    RLS refused the agent's queued reply (marked failed), priority change and read marker (dropped, a "server
    refused" Notice). Now a refusal first asks whether the session lives: the entries stay queued, the engine asks
    to sign in, and after it they go out."""
    ticket = seed_ticket(stack.db_url, users.customer, None, "Queued past", messages=[(users.customer, "hello")])
    engine = await engines.open(users.agent)
    await engine.sync_once()
    elsewhere = client(stack, clients)
    elsewhere.auth.sign_in_with_password({"email": users.agent.email, "password": users.agent.password})
    elsewhere.auth.sign_out({"scope": "global"})
    reply = engine.commands.send_message(ticket, "On it")
    engine.commands.update_ticket(ticket, priority="high")
    engine.commands.mark_read(ticket)
    queued = {(e["kind"], e["entity_id"]) for e in engine.cache.outbox()}
    assert ("message", reply.id) in queued and len(queued) >= 3

    with pytest.raises(AuthError) as refused:
        await engine.sync_once()
    assert refused.value.refused
    left = engine.cache.outbox()
    assert {(e["kind"], e["entity_id"]) for e in left} == queued  # nothing dropped
    assert all(e["state"] != "failed" for e in left), left
    message = engine.cache.message(reply.id)
    assert message is not None and message.local_state != "failed"
    await engine.sign_in(users.agent.email, users.agent.password)
    await engine.sync_once()
    assert engine.cache.outbox() == []
    rows = sql(stack.db_url, "select priority from public.tickets where id = %s", ticket)
    assert rows == [("high",)]
    assert sql(stack.db_url, "select content from public.messages where id = %s", reply.id) == [("On it",)]


async def test_an_invitation_accepted_on_another_device_asks_this_one_to_sign_in(
    stack: StackProcess, users: Users, engines: EngineFactory, clients: list[Client]
) -> None:
    """The invitee's account is open on this device (as a customer, before the acceptance) and they accept on
    another: this engine's session is ended, and the role change its pull sees must not rebuild an agent's cache
    that the ended session would pull empty."""
    address = new_email()
    invite(stack, clients, users, address, "agent")
    hashed = bcrypt.hashpw(b"device-Passw0rd", bcrypt.gensalt(4)).decode()
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("update auth.users set encrypted_password = %s where email = %s", (hashed, address))
    engine = await engines.open()
    await engine.sign_in(address, "device-Passw0rd")
    await engine.sync_once()
    assert engine.user is not None and engine.user.role == "customer"
    invitee = client(stack, clients)
    invitee.auth.verify_otp({"email": address, "token": code_for(stack, address), "type": "email"})
    assert invitee.rpc("accept_invitation").execute().data == "agent"

    with pytest.raises(AuthError) as refused:
        await engine.sync_once()
    assert refused.value.refused
    assert _role_changes(engines, engine) == []  # no cache rebuilt for a role this session cannot use
    assert engine.cache.role == "customer"


async def test_a_role_change_refreshes_the_session_before_the_rebuild(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    customer = create_user(stack.db_url, "customer")
    engine = await engines.open(customer)
    await engine.sync_once()
    before = engine.session
    assert before is not None
    sql(stack.db_url, "update public.profiles set role = 'agent' where id = %s", customer.id)
    await engine.sync_once()
    after = engine.session
    assert [e.role for e in _role_changes(engines, engine)] == ["agent"]
    assert after is not None and after.refresh_token != before.refresh_token  # a new token of the same session


async def test_a_session_made_during_the_acceptance_is_ended_too(
    stack: StackProcess, users: Users, clients: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race (review14b, item 3): an outsider's password sign-in checked the old password before the acceptance
    cleared it and made its session after the acceptance ended the others, so it survived with the new role (and
    a live session, which staff rights now need). The app ends the account's other sessions right after accepting,
    before setting the password (whose change would end them too, but may be refused, as here)."""
    address = new_email()
    invite(stack, clients, users, address, "agent")
    account = Account(stack.api_url, stack.anon_key)
    raced: list[str] = []
    accepting = Account._rest

    @contextlib.asynccontextmanager
    async def then_a_sign_in_lands(self: Account, access_token: str) -> AsyncIterator[Any]:
        async with accepting(self, access_token) as rest:
            yield rest
        (user_id,) = sql(stack.db_url, "select id from auth.users where email = %s", address)[0]
        raced.append(str(uuid.uuid4()))
        live_session(stack.db_url, str(user_id), raced[0])  # the outsider's sign-in commits its session now

    monkeypatch.setattr(Account, "_rest", then_a_sign_in_lands)
    with pytest.raises(AccountError, match="at least 6"):
        await account.accept_invitation(address, code_for(stack, address), "short")
    assert raced and sql(stack.db_url, "select 1 from auth.sessions where id = %s", raced[0]) == []
